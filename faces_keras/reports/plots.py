"""Training-history plots: loss, precision, recall (and the rest), train against validation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_history(history: pd.DataFrame, path: str | Path) -> None:
    """One panel per metric the history holds, train and validation curves in each.

    The original project drew loss, precision and recall this way; multi-head
    runs get one panel per head and metric.
    """
    # A bare Figure on the Agg canvas: no pyplot state, so a notebook's backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from faces_keras.io import atomic_path

    metrics = [c for c in history.columns
               if c not in ("epoch", "learning_rate", "lr") and not c.startswith("val_")
               and f"val_{c}" in history.columns]
    order = sorted(metrics, key=lambda m: (not m.endswith("loss"), m))
    cols = min(3, max(1, len(order)))
    rows = (len(order) + cols - 1) // cols or 1
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    epochs = history["epoch"] + 1 if "epoch" in history else range(1, len(history) + 1)
    for ax, metric in zip(axes.flat, order):
        ax.plot(epochs, history[metric], marker="o", label="train")
        ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set_title(metric.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(order):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
