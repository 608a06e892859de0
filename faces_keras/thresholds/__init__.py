"""Decision thresholds for binary labels, tuned for F1 on validation predictions.

See :mod:`faces_keras.thresholds.tune`. Multiclass labels take the arg-max and
have no threshold.
"""

from faces_keras.thresholds.tune import (
    ThresholdConfig,
    ThresholdCurve,
    ThresholdResult,
    apply_thresholds,
    describe_multiclass,
    plot_threshold_curves,
    tune_thresholds,
)

__all__ = [
    "ThresholdConfig",
    "ThresholdCurve",
    "ThresholdResult",
    "apply_thresholds",
    "describe_multiclass",
    "plot_threshold_curves",
    "tune_thresholds",
]
