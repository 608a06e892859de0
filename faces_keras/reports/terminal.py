"""The terminal report: one row per sampled face, the prediction in green (right) or red (wrong).

Colour is ANSI escape codes, used only when the stream is a terminal, the
``NO_COLOR`` environment variable is unset (https://no-color.org) and
``TERM`` is not ``dumb``; ``color=True``/``False`` overrides all of that.
Without colour the text holds no escape code at all, so files and pipes get
plain text (right and wrong can be read from the CSV then).
"""

from __future__ import annotations

import os
import sys
from typing import Sequence, TextIO

from faces_keras.reports.results import DEFAULT_PER_CLASS, RIGHT, WRONG, Cell, ReportData

GREEN, RED, BOLD, RESET = "\033[32m", "\033[31m", "\033[1m", "\033[0m"
COLOURS = {RIGHT: GREEN, WRONG: RED}
GAP = "  "


def use_color(stream: TextIO, color: bool | None = None) -> bool:
    """Whether to colour output to ``stream``: ``color`` if given, else the stream and environment decide."""
    if color is not None:
        return bool(color)
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def prediction_text(cell: Cell) -> str:
    """The prediction with its probability: ``M 0.83`` (binary: P(positive))."""
    if cell.probability is None:
        return cell.prediction
    return f"{cell.prediction} {cell.probability:.2f}"


def format_terminal_report(rows: Sequence[tuple[str, Sequence[Cell]]], color: bool,
                           header: Sequence[str] = ()) -> str:
    """The table: face id, then per label its true value and the prediction.

    ``rows`` holds (face id, cells) pairs with one :class:`Cell` per label, in
    the same label order on every row. Columns are padded on the plain text,
    so escape codes never shift them.
    """
    if not rows:
        return "\n".join([*header, "(no faces to show)"]) + "\n"
    labels = [cell.label for cell in rows[0][1]]
    table = [["face", *[part for name in labels for part in (name, "")]],
             ["", *["true", "predicted"] * len(labels)]]
    statuses: list[list[str]] = [[""] * len(table[0])] * 2
    for face_id, cells in rows:
        table.append([face_id, *[part for cell in cells for part in (cell.truth, prediction_text(cell))]])
        statuses.append(["", *[part for cell in cells for part in ("", cell.status)]])
    widths = [max(len(row[j]) for row in table) for j in range(len(table[0]))]
    lines = list(header)
    for i, (row, status) in enumerate(zip(table, statuses)):
        parts = []
        for text, width, state in zip(row, widths, status):
            padding = " " * (width - len(text))
            if color and text and i < 2:
                text = f"{BOLD}{text}{RESET}"
            elif color and text and state in COLOURS:
                text = f"{COLOURS[state]}{text}{RESET}"
            parts.append(text + padding)
        lines.append(GAP.join(parts).rstrip(" "))
    return "\n".join(lines) + "\n"


def report_header(data: ReportData, shown: int, per_class: int, color: bool) -> list[str]:
    """What the table shows and how right and wrong are judged; warnings first."""
    warn = (lambda text: f"{RED}{BOLD}{text}{RESET}") if color else (lambda text: text)
    lines = [warn(f"WARNING: {message}") for message in data.warnings]
    lines.append(f"{data.source or data.name}: {data.sampling_note(per_class, shown)}")
    lines.append(data.threshold_note())
    legend = "green: right, red: wrong" if color else "colour off: right/wrong per face in the CSV"
    lines.append(f"probability: P(positive) for binary labels, P(predicted class) for "
                 f"multiclass; {legend}")
    lines.append("")
    return lines


def report_summary(data: ReportData, positions) -> list[str]:
    """Right out of labelled, per label, over the shown faces and over the whole split."""
    lines = [""]
    for r in data.labels:
        if r.kind == "regression":
            labelled = r.labelled
            if labelled.any():
                error = abs(r.predicted[labelled] - r.truth[labelled]).mean()
                lines.append(f"{r.name}: mean absolute error {error:.2f} over {int(labelled.sum())} faces")
            continue
        shown = f"{int(r.right[positions].sum())}/{int(r.labelled[positions].sum())}"
        whole = f"{int(r.right.sum())}/{int(r.labelled.sum())}"
        lines.append(f"{r.name}: right {shown} shown, {whole} in the {data.split} split")
    return lines


def analysis_summary(groups=None, calibration=None) -> list[str]:
    """The calibration errors and the flagged per-group gaps, when the caller computed them.

    ``groups`` is a :class:`faces_keras.reports.groups.GroupReport`, ``calibration``
    a mapping label -> :class:`faces_keras.reports.calibration.ReliabilityCurve`.
    """
    lines = []
    if calibration:
        errors = ", ".join(f"{name} {curve.ece:.3f}" for name, curve in calibration.items())
        lines.append(f"expected calibration error: {errors}")
    if groups is not None:
        lines.extend(groups.summary_lines())
    return ([""] + lines) if lines else []


def render_report(data: ReportData, per_class: int = DEFAULT_PER_CLASS, seed: int = 0,
                  color: bool = False, groups=None, calibration=None) -> str:
    """The whole terminal report as a string.

    Args:
        data: the report's data.
        per_class: faces of each class of each label (0: all).
        seed: the sampling seed.
        color: ANSI colours (green right, red wrong) or plain text.
        groups: the per-group metrics to summarise (their flagged gaps), if computed.
        calibration: label -> reliability curve, to list the calibration errors, if computed.

    Returns:
        The text, ending in a newline.
    """
    positions = data.sample(per_class, seed)
    rows = [(data.face_id(p), data.cells(p)) for p in positions]
    text = format_terminal_report(rows, color, report_header(data, len(positions), per_class, color))
    lines = report_summary(data, positions) + analysis_summary(groups, calibration)
    return text + "\n".join(lines) + "\n"


def print_report(data: ReportData, per_class: int = DEFAULT_PER_CLASS, seed: int = 0,
                 stream: TextIO | None = None, color: bool | None = None) -> None:
    """Print :func:`render_report` to ``stream``; ``color=None`` decides from the stream (see module)."""
    stream = sys.stdout if stream is None else stream
    stream.write(render_report(data, per_class, seed, use_color(stream, color)))
    stream.flush()


__all__ = ["format_terminal_report", "print_report", "render_report", "analysis_summary", "use_color",
           "GREEN", "RED"]
