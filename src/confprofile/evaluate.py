"""Metrics against gold labels, and stage-by-stage comparison tables.

Per dimension, a prediction of `unknown` (or a null label, or no prediction at all) is an abstention.
Precision = correct / answered, recall = correct / users with a gold label, F1 their harmonic mean;
class-macro F1 catches a model that only predicts the majority class; coverage = answered / gold users.
Calibration (ECE with 15 equal-width bins, the last one closed; Brier; AUROC of confidence vs
correctness) is computed over answered predictions.

Scoring rules for the edge cases:
- a prediction for a user absent from gold is answered and wrong (it counts against precision and
  calibration, never towards recall or coverage);
- a user in gold without a label for a dimension (null/`unknown` gold) is not scored on that dimension;
- a predicted label the taxonomy does not recognise is answered and wrong (column `invalid`);
- rows for dimensions outside the taxonomy are ignored; duplicate (user, dimension) rows are an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from confprofile.data import read_jsonl
from confprofile.errors import InputError
from confprofile.taxonomy import UNKNOWN, Taxonomy

ECE_BINS = 15
INVALID = "invalid"
SUMMARY_KEYS = ("headline_f1", "macro_f1", "coverage", "ece", "brier", "auroc")


# ---- pure metric functions (arrays of confidences in [0, 1] and 0/1 correctness) -------------------


def _arrays(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    conf = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    hit = np.asarray(correct, dtype=float)
    if conf.shape != hit.shape:
        raise ValueError(f"confidence and correct differ in shape: {conf.shape} vs {hit.shape}")
    return conf, hit


def _bin_index(conf: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bins [k/bins, (k+1)/bins); the last bin is closed so confidence 1.0 falls in it."""
    return np.minimum((conf * bins).astype(int), bins - 1)


def reliability_bins(confidence, correct, bins: int = ECE_BINS) -> list[dict]:
    """Per bin: edges, mean confidence, accuracy and count (None means for empty bins)."""
    conf, hit = _arrays(confidence, correct)
    index = _bin_index(conf, bins)
    counts = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=conf, minlength=bins)
    hit_sum = np.bincount(index, weights=hit, minlength=bins)
    return [{"lo": k / bins, "hi": (k + 1) / bins, "count": int(counts[k]),
             "confidence": float(conf_sum[k] / counts[k]) if counts[k] else None,
             "accuracy": float(hit_sum[k] / counts[k]) if counts[k] else None} for k in range(bins)]


def ece(confidence, correct, bins: int = ECE_BINS) -> float | None:
    """Expected calibration error: count-weighted mean |accuracy - confidence| over bins."""
    conf, hit = _arrays(confidence, correct)
    if conf.size == 0:
        return None
    index = _bin_index(conf, bins)
    gap = np.bincount(index, weights=hit, minlength=bins) - np.bincount(index, weights=conf, minlength=bins)
    return float(np.abs(gap).sum() / conf.size)


def brier(confidence, correct) -> float | None:
    """Mean squared error of confidence as a probability of being correct."""
    conf, hit = _arrays(confidence, correct)
    return float(np.mean((conf - hit) ** 2)) if conf.size else None


def auroc(confidence, correct) -> float | None:
    """P(a correct answer has higher confidence than a wrong one), ties count half; None if one class is absent."""
    conf, hit = _arrays(confidence, correct)
    positives = int(hit.sum())
    negatives = conf.size - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = pd.Series(conf).rank(method="average").to_numpy()
    return float((ranks[hit == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _safe_div(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _safe_div(2 * precision * recall, precision + recall)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


# ---- evaluation ------------------------------------------------------------------------------------


def _codes(values, categories: list[str]) -> np.ndarray:
    """Position of each value in `categories`; -1 for missing values and values outside them."""
    return pd.Categorical(values, categories=categories).codes.astype(np.int64)


def _gold_codes(gold: dict[str, dict[str, str]], users: pd.Index, dim: str, labels: list[str]):
    """Per gold user, the code of its gold label on `dim` (-1: none); rows = labels + unseen gold labels."""
    raw = pd.Series([gold[user].get(dim) for user in users], dtype=object)
    raw = raw.where(raw != UNKNOWN, None)
    extras = sorted(set(raw.dropna().unique()) - set(labels))
    rows = labels + extras
    return _codes(raw, rows), rows


def _prediction_codes(predictions: pd.DataFrame, taxonomy: Taxonomy, users: pd.Index) -> dict:
    """Per dimension: (gold-user position or -1, label code, confidence) of each prediction row.

    Label codes index the dimension's labels; -1 is an abstention (`unknown`, null), len(labels) + 1
    an invalid label (len(labels) is the confusion column of abstentions). Rows for dimensions outside the taxonomy are dropped.
    """
    missing = {"user_id", "dimension", "label"} - set(predictions.columns)
    if missing:
        raise ValueError(f"predictions lack column(s) {sorted(missing)}")
    has_conf = "confidence" in predictions.columns
    out = {}
    for dim, part in predictions.groupby("dimension", sort=False):
        if dim not in taxonomy.dimension_names:
            continue
        user_ids = part["user_id"].astype(str)
        if user_ids.duplicated().any():
            raise ValueError(f"duplicate predictions for user {user_ids[user_ids.duplicated()].iloc[0]!r}, dimension {dim!r}")
        labels = taxonomy.dimension(dim).label_names
        raw = pd.Categorical(part["label"])
        lookup = []
        for value in raw.categories:  # normalise each distinct string once
            label = taxonomy.normalize(dim, value)
            lookup.append(-1 if label == UNKNOWN else labels.index(label) if label is not None else len(labels) + 1)
        codes = np.where(raw.codes >= 0, np.asarray(lookup + [-1], dtype=np.int64)[raw.codes], -1)
        conf = pd.to_numeric(part["confidence"], errors="coerce").to_numpy(float) if has_conf else np.full(len(part), np.nan)
        out[dim] = (users.get_indexer(user_ids), codes, conf)
    return out


def _dimension_metrics(gold_code: np.ndarray, rows: list[str], labels: list[str], predicted) -> tuple[dict, tuple]:
    """Metrics of one dimension, plus its answered (confidence, correct) arrays for pooling."""
    k = len(labels)
    position, code, conf = predicted
    pred = np.full(gold_code.size, -1)
    pred_conf = np.full(gold_code.size, np.nan)
    known = position >= 0
    pred[position[known]], pred_conf[position[known]] = code[known], conf[known]
    scored = gold_code >= 0
    answered = scored & (pred >= 0)
    correct = answered & (pred == gold_code) & (gold_code < k)
    stray = ~known & (code >= 0)  # predictions for users absent from gold: answered and wrong
    n_gold, n_correct = int(scored.sum()), int(correct.sum())
    n_answered = int(answered.sum() + stray.sum())
    precision, recall = _safe_div(n_correct, n_answered), _safe_div(n_correct, n_gold)

    columns = k + 2  # labels, unknown, invalid
    column = np.where(pred[scored] >= 0, pred[scored], k)
    matrix = np.bincount(gold_code[scored] * columns + column, minlength=len(rows) * columns).reshape(len(rows), columns)
    class_f1 = []
    for j in range(k):  # sklearn-style macro F1 over labels present in gold or predictions
        support, guessed = matrix[j].sum() if j < len(rows) else 0, matrix[:, j].sum()
        if support or guessed:
            class_f1.append(_f1(_safe_div(matrix[j, j], guessed), _safe_div(matrix[j, j], support)))
    predicted_names = labels + [UNKNOWN] + ([INVALID] if matrix[:, k + 1].any() else [])

    cal_conf = np.concatenate([pred_conf[answered], conf[stray]])
    cal_hit = np.concatenate([correct[answered], np.zeros(int(stray.sum()), bool)]).astype(float)
    finite = np.isfinite(cal_conf)
    cal_conf, cal_hit = cal_conf[finite], cal_hit[finite]
    return {
        "precision": precision, "recall": recall, "f1": _f1(precision, recall) if n_gold else None,
        "macro_f1": _mean(class_f1) if n_gold else None,
        "coverage": _safe_div(int(answered.sum()), n_gold) if n_gold else None,
        "ece": ece(cal_conf, cal_hit), "brier": brier(cal_conf, cal_hit), "auroc": auroc(cal_conf, cal_hit),
        "n_gold": n_gold, "n_answered": n_answered,
        "confusion": {"labels": rows, "predicted": predicted_names,
                      "matrix": matrix[:, : len(predicted_names)].tolist()},
    }, (cal_conf, cal_hit)


def evaluate(gold: dict[str, dict[str, str]], predictions: pd.DataFrame, taxonomy: Taxonomy) -> dict:
    """Per-dimension and headline metrics of `predictions` (user_id, dimension, label, confidence)."""
    users = pd.Index(list(gold), dtype=object)
    predicted = _prediction_codes(predictions, taxonomy, users)
    nothing = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    dimensions, pooled_conf, pooled_hit = {}, [], []
    for dim in taxonomy.dimension_names:
        labels = taxonomy.dimension(dim).label_names
        gold_code, rows = _gold_codes(gold, users, dim, labels)
        dimensions[dim], (conf, hit) = _dimension_metrics(gold_code, rows, labels, predicted.get(dim, nothing))
        pooled_conf.append(conf)
        pooled_hit.append(hit)
    conf, hit = np.concatenate(pooled_conf), np.concatenate(pooled_hit)
    return {
        "headline_f1": _mean(d["f1"] for d in dimensions.values()),
        "macro_f1": _mean(d["macro_f1"] for d in dimensions.values()),
        "coverage": _mean(d["coverage"] for d in dimensions.values()),
        "ece": ece(conf, hit), "brier": brier(conf, hit), "auroc": auroc(conf, hit),
        "reliability": reliability_bins(conf, hit),
        "n_users": len(gold),
        "dimensions": dimensions,
    }


def compare(gold: dict[str, dict[str, str]], stages: dict[str, pd.DataFrame], taxonomy: Taxonomy) -> pd.DataFrame:
    """One row per stage (in the given order): headline metrics plus per-dimension F1 (`f1_<dim>`)."""
    return comparison_table({stage: evaluate(gold, predictions, taxonomy) for stage, predictions in stages.items()})


def comparison_table(metrics_by_stage: dict[str, dict]) -> pd.DataFrame:
    """The `compare` table from metrics already computed by `evaluate`."""
    rows = []
    for stage, metrics in metrics_by_stage.items():
        row = {"stage": stage, **{key: metrics[key] for key in SUMMARY_KEYS}}
        row.update({f"f1_{dim}": m["f1"] for dim, m in metrics["dimensions"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


# ---- files -----------------------------------------------------------------------------------------


def _prediction_rows(path: Path, line: int, row: dict) -> list[dict]:
    """Long rows `{user_id, dimension, label, confidence}` or wide `{user_id, labels: {dim: ...}}`."""
    if row.get("user_id") is None or isinstance(row["user_id"], bool) or not isinstance(row["user_id"], (str, int)):
        raise InputError(path, line, "user_id", "missing user_id or not a string")
    user = str(row["user_id"])
    if "labels" in row:
        if not isinstance(row["labels"], dict):
            raise InputError(path, line, "labels", "must be an object {dimension: label or {label, confidence}}")
        cells = [(dim, f"labels.{dim}.", value) for dim, value in row["labels"].items()]
    elif "dimension" in row:
        cells = [(row["dimension"], "", {k: row.get(k) for k in ("label", "confidence", "rationale", "model")})]
    else:
        raise InputError(path, line, None, "expected fields 'dimension' and 'label', or 'labels'")
    out = []
    for dim, prefix, value in cells:
        if not isinstance(dim, str):
            raise InputError(path, line, "dimension", "must be a string")
        value = value if isinstance(value, dict) else {"label": value}
        label, confidence = value.get("label"), value.get("confidence")
        if label is not None and not isinstance(label, str):
            raise InputError(path, line, prefix + "label", f"label must be a string or null, got {type(label).__name__}")
        if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, (int, float))
                                       or not 0.0 <= confidence <= 1.0):
            raise InputError(path, line, prefix + "confidence", f"confidence must be a number in [0, 1], got {confidence!r}")
        out.append({"user_id": user, "dimension": dim, "label": label,
                    "confidence": np.nan if confidence is None else float(confidence),
                    **{k: value[k] for k in ("rationale", "model") if value.get(k) is not None}})
    return out


def load_predictions(path: str | Path) -> pd.DataFrame:
    """Predictions from .parquet or .jsonl (long or wide rows) as a long DataFrame; InputError on bad files."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json", ".ndjson"}:
        records, lines = [], []
        for line, row in read_jsonl(path):
            for record in _prediction_rows(path, line, row):
                records.append(record)
                lines.append(line)
        frame = pd.DataFrame(records, columns=None if records else ["user_id", "dimension", "label", "confidence"])
    elif suffix in {".parquet", ".pq"}:
        if not path.exists():
            raise InputError(path, None, None, "file not found")
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputError(path, None, None, f"not a readable Parquet file ({exc})") from None
        missing = {"user_id", "dimension", "label"} - set(frame.columns)
        if missing:
            raise InputError(path, None, sorted(missing)[0], "missing column")
        if "confidence" not in frame:
            frame["confidence"] = np.nan
        conf = pd.to_numeric(frame["confidence"], errors="coerce")
        bad = ~conf.between(0.0, 1.0) & conf.notna()
        if bad.any():
            raise InputError(path, int(np.argmax(bad.to_numpy())) + 1, "confidence", "confidence must be in [0, 1]")
        lines = list(range(1, len(frame) + 1))
    else:
        raise InputError(path, None, None, f"unknown file type {suffix or '(none)'}; use .jsonl or .parquet")
    if frame.empty:
        raise InputError(path, None, None, "empty file: no predictions")
    frame["user_id"] = frame["user_id"].astype(str)
    duplicated = frame.duplicated(["user_id", "dimension"]).to_numpy()
    if duplicated.any():
        index = int(np.argmax(duplicated))
        raise InputError(path, lines[index], "user_id", f"second prediction for user {frame['user_id'].iloc[index]!r}, "
                         f"dimension {frame['dimension'].iloc[index]!r}")
    return frame


# ---- presentation ----------------------------------------------------------------------------------


def _cell(value, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _console():
    """A rich console; when output is piped (not a terminal) it is 120 columns wide, not rich's 80."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=120)


def print_metrics(metrics: dict, console=None, title: str = "Evaluation") -> None:
    """A rich table: one row per dimension, then the headline row."""
    from rich.table import Table

    table = Table(title=f"{title} ({metrics['n_users']} gold users)")
    for column in ("dimension", "gold", "answered", "coverage", "precision", "recall", "F1", "macro F1", "ECE", "Brier", "AUROC"):
        table.add_column(column, justify="left" if column == "dimension" else "right")
    for dim, m in metrics["dimensions"].items():
        table.add_row(dim, str(m["n_gold"]), str(m["n_answered"]), _cell(m["coverage"]), _cell(m["precision"]),
                      _cell(m["recall"]), _cell(m["f1"]), _cell(m["macro_f1"]), _cell(m["ece"]), _cell(m["brier"]),
                      _cell(m["auroc"]))
    table.add_row("[bold]mean / pooled[/bold]", "", "", _cell(metrics["coverage"]), "", "",
                  f"[bold]{_cell(metrics['headline_f1'])}[/bold]", _cell(metrics["macro_f1"]), _cell(metrics["ece"]),
                  _cell(metrics["brier"]), _cell(metrics["auroc"]))
    (console or _console()).print(table)


def print_comparison(df: pd.DataFrame, console=None, title: str = "Stage comparison") -> None:
    """A rich table of `compare` output: one row per stage."""
    from rich.table import Table

    table = Table(title=title)
    for column in df.columns:
        table.add_column(column.replace("_", " "), justify="left" if column == "stage" else "right")
    for _, row in df.iterrows():
        table.add_row(*[str(row[c]) if c == "stage" else _cell(row[c]) for c in df.columns])
    (console or _console()).print(table)



