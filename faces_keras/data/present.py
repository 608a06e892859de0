"""``faces-keras dataset show``: look at a prepared dataset before training on it.

What the original project's "Dataset - presentation" notebook showed, as files:

``balance.png`` / ``balance.csv`` / ``balance.md``
    counts of each value of each label, per split, before offline augmentation
    (the original faces, ``augmentation == "identity"``) and after (every row);
    regression labels get histograms in the figure and known/missing counts in
    the tables.
``samples.png``
    a few faces of each value of each binary and multiclass label, from the
    training originals, each titled with all its labels.
``augmentations.png``
    one source face beside each of its offline variants; a dataset prepared
    without offline augmentation shows instead what each offline operation of
    :mod:`faces_keras.data.augment` would do to a few of its faces.
``summary.txt``
    faces, sources, per-split counts, image size, faces left out at preparation.

The ``plot_*`` helpers return :class:`matplotlib.figure.Figure` objects built
without pyplot, so notebooks can display them without their global figure
state changing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from faces_keras.data.store import Dataset
from faces_keras.errors import DatasetError
from faces_keras.io import atomic_path, atomic_write_text
from faces_keras.labels.schema import Label, Schema

SPLIT_ORDER = ("train", "val", "test")
STAGES = ("before", "after")
# The offline operations shown when a dataset has no augmented faces, with
# parameters that make each effect visible (brightness_contrast's defaults
# leave the image unchanged).
DEMO_OPERATIONS: dict[str, dict[str, Any]] = {
    "flip": {},
    "rotate": {},
    "narrow": {},
    "widen": {},
    "zoom": {},
    "blur": {},
    "brightness_contrast": {"brightness": 0.15, "contrast": 1.4},
}


# -- tables ---------------------------------------------------------------------------

def _as_dataset(dataset: Dataset | str | Path) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else Dataset.load(dataset)


def split_names(faces: pd.DataFrame) -> list[str]:
    """The splits present, train/val/test first, any other after in order of appearance.

    Args:
        faces: a faces table with a ``split`` column.

    Returns:
        The split names.
    """
    present = list(dict.fromkeys(faces["split"].astype(str)))
    return [s for s in SPLIT_ORDER if s in present] + [s for s in present if s not in SPLIT_ORDER]


def _value_counts(values: pd.Series, label: Label) -> dict[str, int]:
    if label.kind == "regression":
        missing = int(values.isna().sum())
        return {"known": int(len(values) - missing), "missing": missing}
    counts = {name: int((values == k).sum()) for k, name in enumerate(label.value_names())}
    counts["missing"] = int((values < 0).sum())
    return counts


def balance_table(dataset: Dataset | str | Path) -> pd.DataFrame:
    """Counts of each label value per split: one row per (label, value, split).

    ``before`` counts the original faces (``augmentation == "identity"``),
    ``after`` every face, offline augmented ones included. A ``missing`` row
    appears for a label only where some face lacks it.

    Args:
        dataset: a loaded :class:`Dataset`, or the path of a prepared dataset
            folder (loaded and checked).

    Returns:
        A DataFrame with columns ``label``, ``kind``, ``value``, ``split``,
        ``before`` and ``after`` (face counts); regression labels count
        ``known`` and ``missing`` faces instead of values.

    Raises:
        DatasetError: ``dataset`` is a path that is not a whole prepared dataset.
    """
    dataset = _as_dataset(dataset)
    faces = dataset.faces
    originals = faces["augmentation"] == "identity"
    rows = []
    for label in dataset.schema.labels:
        for split in split_names(faces):
            in_split = faces["split"] == split
            before = _value_counts(faces.loc[in_split & originals, label.name], label)
            after = _value_counts(faces.loc[in_split, label.name], label)
            for value in before:
                rows.append({"label": label.name, "kind": label.kind, "value": value, "split": split,
                             "before": before[value], "after": after[value]})
    table = pd.DataFrame(rows, columns=["label", "kind", "value", "split", "before", "after"])
    missing_total = table[table["value"] == "missing"].groupby("label")["after"].sum()
    unused = missing_total[missing_total == 0].index
    return table[~((table["value"] == "missing") & table["label"].isin(unused))].reset_index(drop=True)


def balance_markdown(table: pd.DataFrame) -> str:
    """The balance table with one column per split and stage (``train before``, ``train after``...).

    Args:
        table: the frame :func:`balance_table` returns.

    Returns:
        A Markdown paragraph naming the table, then the table: one row per
        (label, value), one column per split and stage.
    """
    from faces_keras.tables import to_markdown

    wide = table.pivot_table(index=["label", "value"], columns="split", values=list(STAGES),
                             aggfunc="sum", sort=False)
    splits = list(dict.fromkeys(table["split"]))
    columns = [(stage, split) for split in splits for stage in STAGES]
    wide = wide.reindex(columns=columns).fillna(0).astype(int)
    wide.columns = [f"{split} {stage}" for stage, split in columns]
    wide = wide.reset_index()
    order = {name: i for i, name in enumerate(dict.fromkeys(table["label"]))}
    wide = wide.sort_values("label", key=lambda s: s.map(order), kind="stable")
    return ("Faces per label value and split, before and after offline augmentation.\n\n"
            + to_markdown(wide))


def dataset_summary(dataset: Dataset | str | Path) -> str:
    """A few lines: faces, sources, per-split counts, image size, faces left out.

    Args:
        dataset: a loaded :class:`Dataset`, or the path of a prepared dataset
            folder.

    Returns:
        The summary as newline-separated text (no trailing newline): the
        schema, image size and channels, labels, offline augmentations, faces
        and sources per split, the range of each regression label, and the
        faces left out at preparation (the first five named).

    Raises:
        DatasetError: ``dataset`` is a path that is not a whole prepared dataset.
    """
    dataset = _as_dataset(dataset)
    faces = dataset.faces
    size, channels = dataset.images.shape[1], dataset.images.shape[3]
    augmentations = [name for name in dict.fromkeys(faces["augmentation"]) if name != "identity"]
    lines = [
        f"dataset {dataset.path} (schema {dataset.schema.name}): {len(faces)} faces from "
        f"{faces['source_id'].nunique()} source faces",
        f"images: {size}x{size}, {channels} channel(s) ({'gray' if channels == 1 else 'colour'})",
        "labels: " + ", ".join(f"{label.name} ({label.kind})" for label in dataset.schema.labels),
        "offline augmentation: " + (", ".join(augmentations) if augmentations else "none"),
    ]
    for split in split_names(faces):
        part = faces[faces["split"] == split]
        originals = int((part["augmentation"] == "identity").sum())
        lines.append(f"  {split:<6} {len(part):>7} faces  {originals:>7} originals  "
                     f"{part['source_id'].nunique():>7} sources")
    for label in dataset.schema.labels:
        if label.kind == "regression":
            values = faces.loc[faces["augmentation"] == "identity", label.name].dropna()
            if len(values):
                lines.append(f"{label.name}: {values.min():g} to {values.max():g}, mean {values.mean():.1f}, "
                             f"median {values.median():g}")
    dropped = dataset.manifest.get("dropped") or []
    lines.append(f"left out at preparation: {len(dropped)} face(s)"
                 + (": " + "; ".join(f"{d.get('id')}: {d.get('reason')}" for d in dropped[:5])
                    + (" ..." if len(dropped) > 5 else "") if dropped else ""))
    return "\n".join(lines)


# -- figures --------------------------------------------------------------------------

def new_figure(width: float, height: float) -> Figure:
    """A figure drawn by Agg, independent of pyplot's current figure.

    Args:
        width: the figure's width in inches.
        height: the figure's height in inches.

    Returns:
        A :class:`matplotlib.figure.Figure` with an Agg canvas attached, not
        registered with pyplot.
    """
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``figure`` as a PNG atomically.

    Args:
        figure: the matplotlib figure to save.
        path: the PNG file to write; its folder must exist. Written to a
            temporary file first, then renamed, so no half-written PNG is left.
        dpi: dots per inch (100 by default: a 5-inch-wide figure is 500 pixels).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def show_face(ax, image: np.ndarray, title: str | None = None, fontsize: float = 7) -> None:
    """Draw one uint8 face (H, W, 1|3) on ``ax``, gray faces in gray, no ticks.

    Args:
        ax: the matplotlib Axes to draw on.
        image: a uint8 array of shape ``(H, W, 1)`` (drawn in gray, 0-255)
            or ``(H, W, 3)`` (RGB).
        title: the Axes title; ``None`` or ``""`` leaves it untitled.
        fontsize: the title's font size in points.
    """
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


def plot_balance(dataset: Dataset | str | Path, table: pd.DataFrame | None = None) -> Figure:
    """One row per label; columns before and after offline augmentation.

    Binary and multiclass labels: bars of each value, splits side by side.
    Regression labels: a histogram per split. A dataset without augmented
    faces gets one column, since before and after are the same.

    Args:
        dataset: a loaded :class:`Dataset`, or the path of a prepared dataset
            folder.
        table: the dataset's :func:`balance_table`, when already computed;
            ``None`` (the default) computes it.

    Returns:
        A :class:`matplotlib.figure.Figure` (not registered with pyplot).

    Raises:
        DatasetError: ``dataset`` is a path that is not a whole prepared dataset.
    """
    dataset = _as_dataset(dataset)
    table = balance_table(dataset) if table is None else table
    augmented = bool((dataset.faces["augmentation"] != "identity").any())
    stages = STAGES if augmented else ("after",)
    labels = dataset.schema.labels
    figure = new_figure(5.2 * len(stages), 2.6 * len(labels) + 0.4)
    axes = figure.subplots(len(labels), len(stages), squeeze=False)
    splits = split_names(dataset.faces)
    for row, label in enumerate(labels):
        for col, stage in enumerate(stages):
            ax = axes[row, col]
            if label.kind == "regression":
                _histogram(ax, dataset.faces, label, splits, originals_only=stage == "before")
            else:
                _grouped_bars(ax, table[table["label"] == label.name], splits, stage)
            heading = {"before": "original faces", "after": "with offline augmentation"}[stage]
            ax.set_title(f"{label.name}: {heading if augmented else 'faces'}", fontsize=9)
    figure.tight_layout()
    return figure


def _grouped_bars(ax, rows: pd.DataFrame, splits: Sequence[str], stage: str) -> None:
    values = list(dict.fromkeys(rows["value"]))
    width = 0.8 / max(1, len(splits))
    x = np.arange(len(values))
    for i, split in enumerate(splits):
        part = rows[rows["split"] == split].set_index("value")
        counts = [int(part.loc[v, stage]) if v in part.index else 0 for v in values]
        bars = ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts, width, label=split)
        if len(values) * len(splits) <= 24:
            ax.bar_label(bars, fontsize=6)
    ax.set_xticks(x)
    ax.set_xticklabels(values, fontsize=7, rotation=30 if len(values) > 5 else 0)
    ax.set_ylabel("faces", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)


def _histogram(ax, faces: pd.DataFrame, label: Label, splits: Sequence[str], originals_only: bool) -> None:
    rows = faces[faces["augmentation"] == "identity"] if originals_only else faces
    known = rows[label.name].dropna()
    bins = np.histogram_bin_edges(known, bins=20) if len(known) else 10
    for split in splits:
        values = rows.loc[rows["split"] == split, label.name].dropna()
        if len(values):
            ax.hist(values, bins=bins, histtype="step", linewidth=1.5, label=split)
    ax.set_xlabel(label.name, fontsize=8)
    ax.set_ylabel("faces", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)


def _blank(ax) -> None:
    """An empty cell that still shows its y label (the row's name)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def face_caption(row: Mapping[str, Any], schema: Schema) -> str:
    """A short line naming every label of one face: ``M glasses smile`` or ``white 20-29 age 25``.

    Binary labels without their own value names show their name when
    positive; those with names (sex: F/M) show the value name. Missing values
    show ``label ?``.

    Args:
        row: one face's encoded labels, keyed by label name (a row of
            ``Dataset.faces``): class indices, negative for missing, or a
            float (NaN for missing) for a regression label.
        schema: the schema that names the labels and their values.

    Returns:
        The caption; ``"-"`` where no label has anything to show.
    """
    parts = []
    for label in schema.labels:
        value = row[label.name]
        if label.kind == "regression":
            parts.append(f"{label.name} ?" if pd.isna(value) else f"{label.name} {float(value):g}")
            continue
        value = int(value)
        if value < 0:
            parts.append(f"{label.name} ?")
        elif label.kind == "binary" and not label.names:
            if value == 1:
                parts.append(label.name)
        else:
            parts.append(label.value_names()[value])
    return " ".join(parts) or "-"


def _sample_pool(dataset: Dataset) -> pd.DataFrame:
    """Training originals, or every original where the dataset has no training split."""
    originals = dataset.faces[dataset.faces["augmentation"] == "identity"]
    train = originals[originals["split"] == "train"]
    return train if len(train) else originals


def plot_samples(dataset: Dataset | str | Path, per_value: int = 6, labels: Sequence[str] | None = None,
                 seed: int = 0) -> Figure:
    """``per_value`` faces of each value of each binary and multiclass label, one row per value.

    Faces are drawn at random (``seed``) from the training originals; each is
    titled with all its labels (:func:`face_caption`). A value with fewer
    faces leaves its row short.

    Args:
        dataset: a loaded :class:`Dataset`, or the path of a prepared dataset
            folder.
        per_value: faces shown per label value (columns of the figure).
        labels: the names of the labels to show; ``None`` (the default) shows
            every binary and multiclass label. Regression labels are skipped.
        seed: the random seed that picks the faces.

    Returns:
        A :class:`matplotlib.figure.Figure` (not registered with pyplot); each
        row's label says the value and how many faces have it.

    Raises:
        DatasetError: none of the chosen labels is binary or multiclass, or
            ``dataset`` is a path that is not a whole prepared dataset.
        UnknownLabelError: a name in ``labels`` is not in the schema.
    """
    dataset = _as_dataset(dataset)
    chosen = [dataset.schema[name] for name in labels] if labels else list(dataset.schema.labels)
    chosen = [label for label in chosen if label.kind != "regression"]
    if not chosen:
        raise DatasetError(f"{dataset.path}: no binary or multiclass label to show samples of")
    pool = _sample_pool(dataset)
    rng = np.random.default_rng(seed)
    rows = [(label, k, name) for label in chosen for k, name in enumerate(label.value_names())]
    figure = new_figure(1.25 * per_value + 1.2, 1.45 * len(rows) + 0.3)
    axes = figure.subplots(len(rows), per_value, squeeze=False)
    for r, (label, k, name) in enumerate(rows):
        matches = pool[pool[label.name] == k]
        picked = matches.iloc[np.sort(rng.permutation(len(matches))[:per_value])]
        for c in range(per_value):
            if c < len(picked):
                face = picked.iloc[c]
                show_face(axes[r, c], dataset.images[int(face["index"])],
                          face_caption(face, dataset.schema), fontsize=6)
            else:
                _blank(axes[r, c])
        axes[r, 0].set_ylabel(f"{label.name}\n= {name}\n({len(matches)})", fontsize=8)
    figure.tight_layout()
    return figure


def augmentation_examples(dataset: Dataset, faces: int = 4, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """The dataset's offline combinations and ``faces`` sources that have them all.

    Args:
        dataset: a loaded :class:`Dataset`.
        faces: how many source faces to pick (fewer where fewer training
            sources have every combination).
        seed: the random seed that picks the sources.

    Returns:
        A pair: the combination names (``identity`` first) and an array
        ``(faces, len(combinations), H, W, C)`` of each source's variants; no
        combinations (``[]``) where the dataset holds no augmented face.
    """
    # Only the training split is augmented; val and test originals would never be complete.
    table = dataset.faces[dataset.faces["split"] == "train"]
    combos = list(dict.fromkeys(table["augmentation"]))
    if set(combos) <= {"identity"}:
        return [], np.empty((0,), dtype=np.uint8)
    combos = sorted(combos, key=lambda name: name != "identity")  # the original first, else as prepared
    per_source = table.groupby("source_id")["augmentation"].nunique()
    complete = per_source[per_source == len(combos)].index.to_numpy()
    if not len(complete):
        return [], np.empty((0,), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    sources = complete[np.sort(rng.permutation(len(complete))[:faces])]
    lookup = table.drop_duplicates(["source_id", "augmentation"]).set_index(["source_id", "augmentation"])
    index = np.array([[int(lookup.loc[(s, c), "index"]) for c in combos] for s in sources])
    return combos, dataset.images[index]


def operation_examples(images: np.ndarray, operations: Mapping[str, Mapping[str, Any]] | None = None
                       ) -> tuple[list[str], np.ndarray]:
    """Each offline operation applied to each face.

    Args:
        images: uint8 faces, ``(N, H, W, C)``.
        operations: operation name (a key of
            :data:`faces_keras.data.augment.OPERATIONS`) to its keyword
            parameters; ``None`` (the default) uses :data:`DEMO_OPERATIONS`,
            whose parameters make each effect visible.

    Returns:
        A pair: the names (``identity`` first, then the operations in order)
        and the images, ``(N, 1 + len(operations), H, W, C)``.
    """
    from faces_keras.data.augment import OPERATIONS

    operations = DEMO_OPERATIONS if operations is None else operations
    names = ["identity", *operations]
    grid = np.stack([np.stack([image] + [OPERATIONS[name](image, **dict(params))
                                         for name, params in operations.items()])
                     for image in images])
    return names, grid


def plot_augmentations(dataset: Dataset | str | Path, faces: int = 4, seed: int = 0) -> Figure:
    """One row per source face, one column per variant.

    With offline augmentation in the dataset: its own combinations of
    training faces. Without: what each operation in :data:`DEMO_OPERATIONS`
    does to ``faces`` originals, so the choice of ``--augment`` is informed.

    Args:
        dataset: a loaded :class:`Dataset`, or the path of a prepared dataset
            folder.
        faces: source faces shown (rows).
        seed: the random seed that picks them.

    Returns:
        A :class:`matplotlib.figure.Figure` (not registered with pyplot), its
        title saying which of the two it shows.

    Raises:
        DatasetError: ``dataset`` is a path that is not a whole prepared dataset.
    """
    dataset = _as_dataset(dataset)
    names, grid = augmentation_examples(dataset, faces, seed)
    heading = "offline augmentation in this dataset"
    if not names:
        pool = _sample_pool(dataset)
        rng = np.random.default_rng(seed)
        picked = pool.iloc[np.sort(rng.permutation(len(pool))[:faces])]
        names, grid = operation_examples(dataset.images[picked["index"].to_numpy()])
        heading = "no offline augmentation in this dataset: what each operation does"
    rows, cols = grid.shape[:2]
    figure = new_figure(1.35 * cols + 0.2, 1.4 * rows + 0.6)
    axes = figure.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            show_face(axes[r, c], grid[r, c], names[c].replace("_", " ") if r == 0 else None)
    figure.suptitle(heading, fontsize=9)
    figure.tight_layout()
    return figure


# -- the command ----------------------------------------------------------------------

def show_dataset(path: str | Path, out: str | Path | None = None, *, per_value: int = 6,
                 seed: int = 0) -> list[Path]:
    """Write the balance tables and figures, the samples, the augmentations and a summary.

    Args:
        path: a prepared dataset folder.
        out: where the files go (default ``<dataset>/show``); created if
            missing, files in it overwritten.
        per_value: sample faces per label value.
        seed: which faces are sampled.

    Returns:
        The paths written (``balance.csv``, ``balance.md``, ``balance.png``,
        ``augmentations.png``, ``samples.png`` unless every label is a
        regression, ``summary.txt``); ``summary.txt`` holds the text summary.

    Raises:
        DatasetError: ``path`` is not a whole prepared dataset.
    """
    dataset = Dataset.load(path)
    out = Path(out) if out else dataset.path / "show"
    out.mkdir(parents=True, exist_ok=True)
    table = balance_table(dataset)
    written = []
    atomic_write_text(out / "balance.csv", table.to_csv(index=False))
    atomic_write_text(out / "balance.md", balance_markdown(table))
    written += [out / "balance.csv", out / "balance.md"]
    figures = {"balance.png": lambda: plot_balance(dataset, table),
               "augmentations.png": lambda: plot_augmentations(dataset, seed=seed)}
    if any(label.kind != "regression" for label in dataset.schema.labels):
        figures["samples.png"] = lambda: plot_samples(dataset, per_value=per_value, seed=seed)
    for name, draw in figures.items():
        written.append(save_figure(draw(), out / name))
    summary = dataset_summary(dataset)
    atomic_write_text(out / "summary.txt", summary + "\n")
    written.append(out / "summary.txt")
    return written


__all__ = ["balance_table", "balance_markdown", "dataset_summary", "plot_balance", "plot_samples",
           "plot_augmentations", "augmentation_examples", "operation_examples", "face_caption",
           "new_figure", "save_figure", "show_face", "show_dataset", "DEMO_OPERATIONS"]
