"""Importers of public datasets and tables into users.jsonl + gold.jsonl + taxonomy.yaml (the data stage's `import` verb)."""
