"""Stage 1b: teacher answers -> pseudo-labels (voting, Dawid-Skene, calibration, class balance).

Names load on first use (PEP 562), so that `confprofile --help` does not import numpy and pandas.
"""

from importlib import import_module

_EXPORTS = {
    "AGGREGATORS": "base", "Aggregator": "base", "Encoded": "base", "encode": "base",
    "MajorityVote": "voting", "WeightedVote": "voting", "DawidSkene": "dawid_skene",
    "CALIBRATORS": "calibration", "ClassBalance": "calibration", "ConfidenceCalibration": "calibration",
    "LabelPriorCorrection": "calibration",
    "aggregate": "pseudo_labels", "run_aggregation": "pseudo_labels", "teacher_predictions": "pseudo_labels",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'confprofile.aggregate' has no attribute {name!r}")
    import_module("confprofile.aggregate.pseudo_labels")  # registers every aggregator and calibrator
    return getattr(import_module(f"confprofile.aggregate.{_EXPORTS[name]}"), name)
