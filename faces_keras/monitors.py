"""Which way each monitored quantity improves: the one place early stopping, checkpoints and searches ask."""

from __future__ import annotations

__all__ = ["direction", "GROWING"]

# Substrings of Keras's logged names (val_labels_auc, val_mean_f1, val_age_mae, ...)
# whose quantities grow as the model improves; every other quantity (losses,
# MAE, MSE) shrinks.
GROWING = ("auc", "accuracy", "precision", "recall", "f1")


def direction(name: str) -> str:
    """``"max"`` for a quantity that grows as the model improves, else ``"min"``.

    Args:
        name: a logged quantity, e.g. ``val_loss``, ``val_labels_auc``, ``val_mean_f1``.

    Returns:
        ``"max"`` where the name holds auc, accuracy, precision, recall or f1; else ``"min"``.
    """
    return "max" if any(part in name for part in GROWING) else "min"
