"""Label shares the user knows (a census, platform analytics, a survey), read and checked against the taxonomy.

Weak teachers spread their errors over every label, so the label prior that aggregation estimates from
their answers is flatter than the truth (blogs age group: .33 / .34 / .34 estimated for .42 / .44 / .14),
and labels made to follow it trade accuracy for balance. Shares known from outside the answers replace
that estimate in `class_balance` (which labels) and `group_confidence` (how sure). They are counts over
a population, not anybody's label, so aggregation stays label-free.
"""

from __future__ import annotations

from pathlib import Path

from confprofile.errors import InputError
from confprofile.files import read_yaml
from confprofile.taxonomy import Taxonomy

LabelShares = dict[str, dict[str, float]]  # dimension -> label -> share (each dimension sums to 1)


def load_label_shares(source: str | Path | dict, taxonomy: Taxonomy) -> LabelShares:
    """{dimension: {label: share}} from a YAML path or an inline mapping, each dimension normalised to sum 1.

    A named dimension needs a share for every one of its labels (0 forbids a label); dimensions not named
    keep the prior estimated from the answers. Labels are normalised like answers ("Male" -> male).
    InputError names the file and the field (`label_shares.<dimension>.<label>`)."""
    where = Path(source) if isinstance(source, (str, Path)) else None  # None: an inline mapping from a config
    raw = read_yaml(where) if where else source
    if not isinstance(raw, dict) or not raw:
        raise InputError(where, None, "label_shares", "expected a mapping {dimension: {label: share}}")
    shares: LabelShares = {}
    for dim, given in raw.items():
        field = f"label_shares.{dim}"
        if dim not in taxonomy.dimension_names:
            raise InputError(where, None, field, f"{dim!r} is not a dimension of {taxonomy.name!r}")
        if not isinstance(given, dict):
            raise InputError(where, None, field, "expected a mapping {label: share}")
        values: dict[str, float] = {}
        for label, share in given.items():
            name = taxonomy.normalize(dim, label)
            if name is None or name not in taxonomy.dimension(dim).label_names:
                hint = " (quote labels that YAML reads as numbers: \"13_17\")" if isinstance(label, (int, float)) else ""
                raise InputError(where, None, f"{field}.{label}", f"{label!r} is not a label of {dim}{hint}")
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not share >= 0:
                raise InputError(where, None, f"{field}.{label}", f"a share is a number >= 0, not {share!r}")
            values[name] = values.get(name, 0.0) + float(share)
        missing = [label for label in taxonomy.dimension(dim).label_names if label not in values]
        if missing:
            raise InputError(where, None, field, f"no share for {missing}: give every label of {dim} a share (0 forbids one)")
        total = sum(values.values())
        if total <= 0:
            raise InputError(where, None, field, "the shares sum to 0")
        shares[dim] = {label: values[label] / total for label in taxonomy.dimension(dim).label_names}
    return shares
