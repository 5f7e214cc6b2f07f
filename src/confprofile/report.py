"""Self-contained HTML report of a run: everything is read from `metrics.json` (and `rl_log.jsonl`).

Images are matplotlib PNGs embedded as base64, so the file can be mailed or archived alone.
The report only renders; every number in it was computed by the evaluate stage.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from confprofile.files import atomic_write_text

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.supervised td{color:#777;font-style:italic}
.note{color:#555;font-size:.9rem}
img{max-width:100%}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def stage_table_html(stages: list[dict], dimensions: list[str]) -> str:
    head = ["stage", "label-free", "F1", "class-macro F1", "coverage", "ECE", "Brier", "AUROC", *dimensions]
    rows = []
    for stage in stages:
        m = stage["metrics"]
        cells = [stage["name"], "yes" if stage["label_free"] else "no (uses gold)", m["headline_f1"], m["macro_f1"],
                 m["coverage"], m["ece"], m["brier"], m["auroc"], *(m["dimensions"][d]["f1"] for d in dimensions)]
        cls = "" if stage["label_free"] else ' class="supervised"'
        rows.append(f"<tr{cls}>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f'<table id="stage-table"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def f1_bars(stages: list[dict], dimensions: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(10, 3.5))
    width = 0.8 / max(len(stages), 1)
    x = np.arange(len(dimensions))
    for i, stage in enumerate(stages):
        values = [stage["metrics"]["dimensions"][d]["f1"] or 0.0 for d in dimensions]
        ax.bar(x + i * width, values, width, label=stage["name"])
    ax.set_xticks(x + width * (len(stages) - 1) / 2, dimensions, rotation=15)
    ax.set_ylabel("F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=3)
    return _png(fig)


def reliability_diagram(stage: dict) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    points = [(b["confidence"], b["accuracy"]) for b in stage["metrics"].get("reliability", []) if b["count"]]
    if points:
        ax.plot(*zip(*points), "o-")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
    ax.set_title(f"{stage['name']}\nECE {_fmt(stage['metrics']['ece'])}", fontsize=8)
    return _png(fig)


def confusion_plot(name: str, dimension: str, confusion: dict) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(confusion["matrix"], dtype=float)
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(confusion["predicted"])), confusion["predicted"], rotation=90, fontsize=6)
    ax.set_yticks(range(len(confusion["labels"])), confusion["labels"], fontsize=6)
    ax.set(xlabel="predicted", ylabel="gold")
    ax.set_title(f"{name}: {dimension}", fontsize=8)
    return _png(fig)


def distribution_plot(dimension: str, before: dict, after: dict) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    labels = sorted(set(before) | set(after))
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(4, 2.8))
    ax.bar(x - 0.2, [before.get(lab, 0) for lab in labels], 0.4, label="plain vote")
    ax.bar(x + 0.2, [after.get(lab, 0) for lab in labels], 0.4, label="balanced")
    ax.set_xticks(x, labels, rotation=60, fontsize=6)
    ax.set_title(dimension, fontsize=8)
    ax.legend(fontsize=6)
    return _png(fig)


def rl_curves(log_rows: list[dict]) -> str:
    import matplotlib.pyplot as plt

    keys = [k for k in ("reward", "majority_ratio", "entropy", "completion_length") if any(k in r for r in log_rows)]
    if not keys:
        return "<p class='note'>No RL training log.</p>"
    fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 2.6))
    for ax, key in zip(axes if len(keys) > 1 else [axes], keys):
        points = [(r.get("step", i), r[key]) for i, r in enumerate(log_rows) if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points))
        ax.set_title(key, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
    return _png(fig)


def render_report(metrics: dict, rl_log: list[dict] | None = None) -> str:
    stages = metrics["stages"]
    dimensions = list(stages[0]["metrics"]["dimensions"]) if stages else []
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>confprofile report</title><style>{_CSS}</style></head><body>",
             "<h1>confprofile run report</h1>"]
    for line in metrics.get("notes", []):
        parts.append(f"<p class='note'>{html.escape(line)}</p>")
    parts += ["<h2>Stage by stage (same test users)</h2>", stage_table_html(stages, dimensions)]
    if stages:
        parts += ["<h2>Per-dimension F1</h2>", f1_bars(stages, dimensions)]
        parts += ["<h2>Reliability diagrams</h2><div class='grid'>", *map(reliability_diagram, stages), "</div>"]
        parts.append("<h2>Confusion matrices</h2>")
        for stage in stages:
            if stage.get("confusion", True):
                plots = [confusion_plot(stage["name"], d, stage["metrics"]["dimensions"][d]["confusion"]) for d in dimensions]
                parts += [f"<h3>{html.escape(stage['name'])}</h3><div class='grid'>", *plots, "</div>"]
    distributions = metrics.get("label_distributions") or {}
    if distributions:
        parts.append("<h2>Pseudo-label distributions before and after class balancing</h2><div class='grid'>")
        parts += [distribution_plot(d, v["before"], v["after"]) for d, v in distributions.items()]
        parts.append("</div>")
    parts += ["<h2>RL training curves</h2>", rl_curves(rl_log or [])]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    log_path = run_dir / "rl_log.jsonl"
    rl_log = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if log_path.exists() else []
    out = Path(out) if out else run_dir / "report.html"
    atomic_write_text(out, render_report(metrics, rl_log))
    return out
