"""Self-contained HTML report of a run, with or without gold.

It opens with the label-free checks (`checks.json`, computed here from the run's files by
`checks.run_checks`): label distributions, confidence histograms, teacher agreement and reliability,
the share of users kept, student-vs-pseudo-label agreement and the stage-2 curves. With gold it adds
the evaluate stage's `metrics.json`: the stage table, F1 by stage with error bars, reliability
diagrams and confusion matrices. Images are matplotlib PNGs embedded as base64, so the file can be
mailed or archived alone; tables fit a 1,400-pixel-wide page (the page records its widest table in
`data-widest-table` once laid out).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from confprofile.checks import CONFIDENCE_BINS, write_checks
from confprofile.files import atomic_write_text

_WIDEST_TABLE = ("<script>addEventListener('load',()=>{document.body.dataset.widestTable="
                 "Math.max(0,...[...document.querySelectorAll('table')].map(t=>t.getBoundingClientRect().right))})</script>")

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1360px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.8rem}
th,td{border:1px solid #ccc;padding:.25rem .45rem;text-align:right}
th{white-space:normal;max-width:9rem}
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


def table_html(head: list[str], rows: list[list], table_id: str = "", row_classes: list[str] | None = None) -> str:
    """An HTML table; `row_classes` (one CSS class or "" per row) style rows such as the supervised one."""
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    classes = row_classes or [""] * len(rows)
    body = "".join((f'<tr class="{cls}">' if cls else "<tr>") + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>"
                   for row, cls in zip(rows, classes))
    attr = f' id="{table_id}"' if table_id else ""
    return f"<table{attr}><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def stage_table_html(stages: list[dict], dimensions: list[str]) -> str:
    head = ["stage", "label-free", "F1", "class-macro F1", "coverage", "ECE", "Brier", "AUROC", *dimensions]
    rows = [[s["name"], "yes" if s["label_free"] else "no (uses gold)", s["metrics"]["headline_f1"], s["metrics"]["macro_f1"],
             s["metrics"]["coverage"], s["metrics"]["ece"], s["metrics"]["brier"], s["metrics"]["auroc"],
             *(s["metrics"]["dimensions"][d]["f1"] for d in dimensions)] for s in stages]
    return table_html(head, rows, "stage-table", ["" if s["label_free"] else "supervised" for s in stages])


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


def distribution_plot(dimension: str, series: dict[str, dict]) -> str:
    """Label shares per series (e.g. plain vote, balanced, final profiles) of one dimension."""
    import matplotlib.pyplot as plt
    import numpy as np

    labels = sorted({lab for counts in series.values() for lab in counts})
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(4, 2.8))
    for i, (name, counts) in enumerate(series.items()):
        total = sum(counts.values()) or 1
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [counts.get(lab, 0) / total for lab in labels], width, label=name)
    ax.set_ylabel("share", fontsize=7)
    ax.set_xticks(x, labels, rotation=60, fontsize=6)
    ax.set_title(dimension, fontsize=8)
    ax.legend(fontsize=6)
    return _png(fig)


def rl_curves(log_rows: list[dict]) -> str:
    import matplotlib.pyplot as plt

    wanted = ("reward", "majority_ratio", "entropy", "agreement", "groups", "dropped_no_signal", "dropped_low_agreement",
              "label_drift", "completion_length")
    keys = [k for name in wanted for k in (name, f"rl/{name}") if any(k in r for r in log_rows)]  # TRL logs `rl/` names
    if not keys:
        return "<p class='note'>No stage-2 training log.</p>"
    fig, axes = plt.subplots(1, len(keys), figsize=(min(2.6 * len(keys), 15), 2.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        points = [(r.get("step", i), r[key]) for i, r in enumerate(log_rows) if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points))
        ax.set_title(key, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
    return _png(fig)


def f1_by_stage(stages: list[dict]) -> str:
    """Headline F1 per stage with +-1 standard error (binomial approximation over the scored answers)."""
    import matplotlib.pyplot as plt
    import numpy as np

    names = [s["name"] for s in stages]
    f1 = np.array([s["metrics"]["headline_f1"] or 0.0 for s in stages])
    n = np.array([max(sum(d.get("n_gold", 0) or 0 for d in s["metrics"]["dimensions"].values()), 1) for s in stages])
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.bar(range(len(names)), f1, yerr=np.sqrt(f1 * (1 - f1) / n), capsize=3,
           color=["#999" if not s["label_free"] else "#3a7" for s in stages])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="F1", ylim=(0, 1))
    return _png(fig)


def histogram_plot(dimension: str, entry: dict) -> str:
    import matplotlib.pyplot as plt

    centres = (CONFIDENCE_BINS[:-1] + CONFIDENCE_BINS[1:]) / 2
    fig, ax = plt.subplots(figsize=(3.4, 2.4))
    ax.bar(centres - 0.02, entry["confidence_histogram"], 0.04, label="profiles")
    ax.bar(centres + 0.02, entry["pseudo_confidence_histogram"], 0.04, label="pseudo-labels")
    ax.set(xlim=(0, 1), xlabel="confidence")
    ax.set_title(f"{dimension}: mean {entry['mean_confidence']:.2f}", fontsize=8)
    ax.legend(fontsize=6)
    return _png(fig)


def label_free_sections(checks: dict, rl_log: list[dict]) -> list[str]:
    """The report's first half: what can be checked without gold."""
    profiles, aggregate = checks.get("profiles", {}), checks.get("aggregate", {})
    parts = ["<h2 id='label-free'>Label-free checks</h2>"]
    if profiles:
        parts.append(f"<p class='note'>{checks['profiled_users']} users profiled by the "
                     f"{html.escape(str(checks.get('profile_stage', '')).replace('_', ' '))}.</p>")
        rows = [[dim, e["labelled_users"], aggregate.get(dim, {}).get("kept"), e["student_agrees_with_pseudo_label"],
                 e["mean_confidence"]] for dim, e in profiles.items()]
        parts.append(table_html(["dimension", "users the teachers labelled", "share of pseudo-labels kept",
                                 "student agrees with pseudo-label", "mean profile confidence"], rows, "profile-checks"))
    if aggregate or profiles:
        parts.append("<h3>Label distributions: plain vote, after class balance, final profiles</h3><div class='grid'>")
        for dim in dict.fromkeys([*aggregate, *profiles]):
            series = {"plain vote": aggregate.get(dim, {}).get("before", {}), "balanced": aggregate.get(dim, {}).get("after", {}),
                      "profiles": profiles.get(dim, {}).get("labels", {})}
            parts.append(distribution_plot(dim, {k: v for k, v in series.items() if v}))
        parts.append("</div>")
    if profiles:
        parts += ["<h3>Confidence histograms</h3><div class='grid'>", *(histogram_plot(d, e) for d, e in profiles.items()), "</div>"]
    if any(entry.get("teacher_skills") for entry in aggregate.values()):
        parts += ["<h3>What the teachers know (estimated without gold)</h3>",
                  "<p class='note'>Independent skill: the largest agreement beyond chance (kappa) between two teachers of "
                  "different groups. Where it is near 0 no teacher is confirmed by an independent one and the dimension is "
                  "flagged. Estimated accuracy: the posterior mass the aggregate puts on a teacher's labels.</p>",
                  table_html(["dimension", "flag", "independent skill", "teacher groups", "estimated teacher accuracy", "fallback"],
                             [[dim, "teachers know nothing" if e.get("knows_nothing") else "", e.get("independent_skill"),
                               "; ".join(" + ".join(g) for g in e.get("teacher_groups") or []),
                               ", ".join(f"{s['teacher']} {s['accuracy']:.2f}" for s in e.get("teacher_skills") or []),
                               e.get("fallback") or ""] for dim, e in aggregate.items()], "teacher-knowledge")]
    if checks.get("teacher_reliability"):
        rows = [[r["teacher"], r["dimension"], r["answered"], r["agreement_with_others"], r["agreement_with_pseudo_labels"]]
                for r in checks["teacher_reliability"]]
        parts += ["<h3>Teacher reliability (estimated without gold)</h3>",
                  "<p class='note'>Agreement with the other teachers' majority is a leave-one-out estimate its own votes "
                  "cannot inflate; agreement with the pseudo-labels is biased upward (it voted in them).</p>",
                  table_html(["teacher", "dimension", "answers", "agrees with other teachers", "agrees with pseudo-labels"],
                             rows, "teacher-reliability")]
    if checks.get("teacher_agreement"):
        parts.append("<h3>Teacher x teacher agreement</h3><div class='grid'>")
        for dim, entry in checks["teacher_agreement"].items():
            rows = [[a, *row] for a, row in zip(entry["teachers"], entry["matrix"])]
            parts.append(f"<div><b>{html.escape(dim)}</b>{table_html(['', *entry['teachers']], rows)}</div>")
        parts.append("</div>")
    parts += ["<h3>Stage-2 curves</h3>", rl_curves(rl_log)]
    return parts


def gold_sections(metrics: dict) -> list[str]:
    """The report's second half, when the run had held-out users with gold."""
    stages = metrics["stages"]
    dimensions = list(stages[0]["metrics"]["dimensions"]) if stages else []
    parts = ["<h2 id='with-gold'>Measured against gold (held-out users)</h2>"]
    parts += [f"<p class='note'>{html.escape(line)}</p>" for line in metrics.get("notes", [])]
    parts += ["<h3>Stage by stage (same test users)</h3>", stage_table_html(stages, dimensions)]
    if stages:
        parts += ["<h3>F1 by stage (+-1 SE)</h3>", f1_by_stage(stages)]
        parts += ["<h3>Per-dimension F1</h3>", f1_bars(stages, dimensions)]
        parts += ["<h3>Reliability diagrams</h3><div class='grid'>", *map(reliability_diagram, stages), "</div>"]
        parts.append("<h3>Confusion matrices</h3>")
        for stage in stages:
            if stage.get("confusion", True):
                plots = [confusion_plot(stage["name"], d, stage["metrics"]["dimensions"][d]["confusion"]) for d in dimensions]
                parts += [f"<h4>{html.escape(stage['name'])}</h4><div class='grid'>", *plots, "</div>"]
    return parts


def render_report(checks: dict, metrics: dict | None = None, rl_log: list[dict] | None = None) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>confprofile report</title><style>{_CSS}</style></head><body>",
             "<h1>confprofile run report</h1>", *label_free_sections(checks, rl_log or [])]
    if metrics is not None:
        parts += gold_sections(metrics)
    else:
        parts.append("<p class='note'>No held-out users with gold: the evaluation sections are left out (give data.gold to add them).</p>")
    parts += [_WIDEST_TABLE, "</body></html>"]
    return "\n".join(parts)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Recompute `checks.json` from the run's files and render it, with `metrics.json` when it exists."""
    run_dir = Path(run_dir)
    checks = json.loads(write_checks(run_dir).read_text(encoding="utf-8"))
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else None
    log_path = run_dir / "rl_log.jsonl"
    rl_log = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if log_path.exists() else []
    out = Path(out) if out else run_dir / "report.html"
    atomic_write_text(out, render_report(checks, metrics, rl_log))
    return out
