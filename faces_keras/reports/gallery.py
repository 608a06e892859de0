"""The gallery as a matplotlib figure: faces in a grid, one text line per label in green or red.

For notebooks and papers; the HTML report shows the same faces. The figure is
a bare matplotlib Figure (no display needed; saving uses Agg). At most ``max_faces`` faces
are drawn, the first ones of the sample in split order, since a figure of
thousands of axes takes minutes and is unreadable anyway.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faces_keras.io import atomic_path
from faces_keras.reports.results import DEFAULT_PER_CLASS, RIGHT, WRONG, ReportData

COLOURS = {RIGHT: "#1a7f37", WRONG: "#cf222e"}
NEUTRAL = "#444444"
MAX_FACES = 120
CELL_INCHES = 1.9  # width of one face column
LINE_INCHES = 0.17  # height of one label line under a face


def plot_gallery(data: ReportData, positions: np.ndarray | None = None, *,
                 per_class: int = DEFAULT_PER_CLASS, seed: int = 0, columns: int = 8,
                 max_faces: int = MAX_FACES):
    """A Figure of the sampled faces (``positions`` overrides the sampling).

    Under each face: its id, then ``label: truth > prediction p`` per label, in
    green when right, red when wrong and grey when there is nothing to judge
    (regression, missing truth).
    """
    # A bare Figure draws with Agg when saved and leaves a notebook's backend alone.
    from matplotlib.figure import Figure

    if positions is None:
        positions = data.sample(per_class, seed)
    positions = np.asarray(positions, dtype=int)
    total = len(positions)
    positions = positions[:max_faces]
    columns = max(1, min(columns, len(positions) or 1))
    rows = max(1, -(-len(positions) // columns))
    text_inches = LINE_INCHES * (len(data.labels) + 1.6)
    cell_height = CELL_INCHES * 0.72 + text_inches
    figure = Figure(figsize=(CELL_INCHES * columns, cell_height * rows + 0.6))
    title = f"{data.name}: {data.sampling_note(per_class, total)}"
    if total > len(positions):
        title += f" (first {len(positions)} drawn)"
    figure.suptitle(title, fontsize=9)
    top = 1 - 0.6 / figure.get_figheight()
    image_share = (CELL_INCHES * 0.72) / cell_height
    for k, position in enumerate(positions):
        row, col = divmod(k, columns)
        cell_top = top - row * (top / rows)
        height = top / rows
        axes = figure.add_axes((col / columns + 0.1 / columns, cell_top - height * image_share,
                                0.8 / columns, height * image_share * 0.95))
        _draw_face(axes, data, int(position), LINE_INCHES / (CELL_INCHES * 0.72 * 0.95))
    if not len(positions):
        figure.text(0.5, 0.5, "no faces to show", ha="center", va="center")
    return figure


def _draw_face(axes, data: ReportData, position: int, line_step: float) -> None:
    """The face, then its id and one line per label below it (``line_step`` in axes heights)."""
    image = data.image(position)
    if image is not None:
        gray = image.shape[-1] == 1
        axes.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None,
                    vmin=0, vmax=255, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.text(0.5, -0.04, data.face_id(position), transform=axes.transAxes, ha="center", va="top",
              fontsize=7, color=NEUTRAL)
    for line, cell in enumerate(data.cells(position), start=1):
        prob = "" if cell.probability is None else f" {cell.probability:.2f}"
        axes.text(0.5, -0.04 - line_step * line, f"{cell.label}: {cell.truth} > {cell.prediction}{prob}",
                  transform=axes.transAxes, ha="center", va="top", fontsize=7,
                  color=COLOURS.get(cell.status, NEUTRAL),
                  fontweight="bold" if cell.status == WRONG else "normal")


def save_gallery(data: ReportData, path: str | Path, positions: np.ndarray | None = None, *,
                 per_class: int = DEFAULT_PER_CLASS, seed: int = 0, columns: int = 8,
                 dpi: int = 100) -> Path:
    """Write :func:`plot_gallery` as a PNG (atomically); return its path."""
    figure = plot_gallery(data, positions, per_class=per_class, seed=seed, columns=columns)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")
    return path


__all__ = ["plot_gallery", "save_gallery"]
