"""Train / validation / test splits by source face, stratified on the labels.

The split is made on *source ids* before any augmentation, so every altered
twin of a face lands in the same split as the face. Rare labels (hat is 2.4%
of CelebA) must reach every split, so the split is stratified on all labels
at once with iterative stratification (Sechidis et al., 2011; the
``iterative-stratification`` package), the field's standard for multi-label
data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

from faces_keras.errors import ConfigError
from faces_keras.labels.schema import Schema
from faces_keras.settings import setting, validate

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of source faces per split; the original used two 0.2 splits (64/16/20).

    Each field is declared once with :func:`faces_keras.settings.setting`; its
    ``help`` says what it means and its range. Training gets what ``val`` and
    ``test`` leave.

    Raises:
        ConfigError: a fraction is out of range, or ``val + test`` leaves no
            training faces.
    """

    val: float = setting(0.16, at_least=0, below=1, help="validation fraction of source faces")
    test: float = setting(0.20, at_least=0, below=1, help="test fraction of source faces")
    seed: int = setting(0, help="seed of the split (and of the augmentation's random draws)")

    def __post_init__(self):
        validate(self)
        if self.val + self.test >= 1.0:
            raise ConfigError(f"val={self.val} (--val) + test={self.test} (--test) leaves no training faces")


def stratification_matrix(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """One indicator column per binary label and per class of each multiclass label.

    Args:
        frame: encoded labels, one row per face, one column per label.
        schema: the labels to stratify on; regression labels are left out.

    Returns:
        An int array ``(rows, columns)`` of 0/1; a single zero column where no
        label is binary or multiclass.
    """
    columns = []
    for label in schema.labels:
        values = frame[label.name].to_numpy()
        if label.kind == "binary":
            columns.append(values == 1)
        elif label.kind == "multiclass":
            columns.extend(values == k for k in range(label.num_classes))
    if not columns:
        return np.zeros((len(frame), 1), dtype=int)
    return np.stack(columns, axis=1).astype(int)


def _stratified_pick(indicators: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of about ``fraction`` of the rows, stratified on ``indicators``."""
    n = len(indicators)
    mask = np.zeros(n, dtype=bool)
    if fraction <= 0 or n == 0:
        return mask
    count = max(1, int(round(n * fraction)))
    if count >= n:
        mask[:] = True
        return mask
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=count, random_state=seed)
    _, picked = next(splitter.split(np.zeros(n), indicators))
    mask[picked] = True
    return mask


def assign_splits(frame: pd.DataFrame, schema: Schema, config: SplitConfig = SplitConfig(),
                  source_column: str = "source_id") -> np.ndarray:
    """The split of every row, made on unique source ids.

    Sources are split multilabel-stratified on the binary and multiclass
    labels, so every split sees each value in about the same share; all rows
    of one source (its offline variants) share its split. A split the dataset
    fixes itself (a ``given_split`` column, e.g. FER-2013's ``test`` folder)
    is kept; the rest is split into train and validation.

    Args:
        frame: one row per face with encoded labels and ``source_column``.
        schema: the labels to stratify on.
        config: the fractions and seed (16% validation, 20% test by default).
        source_column: the column naming each row's source face.

    Returns:
        An object array of ``"train"``, ``"val"`` or ``"test"``, one per row
        of ``frame``.
    """
    sources = frame.drop_duplicates(source_column)
    indicators = stratification_matrix(sources, schema)
    split_of_source = np.full(len(sources), "train", dtype=object)
    if "given_split" in sources and sources["given_split"].notna().any():
        given = sources["given_split"].fillna("train").to_numpy()
        split_of_source[given == "test"] = "test"
        trainable = np.flatnonzero(given != "test")
        val_share = config.val / (1.0 - config.test) if config.test < 1 else 0.0
        picked = _stratified_pick(indicators[trainable], val_share, config.seed)
        split_of_source[trainable[picked]] = "val"
    else:
        test = _stratified_pick(indicators, config.test, config.seed)
        split_of_source[test] = "test"
        rest = np.flatnonzero(~test)
        val_share = config.val / (1.0 - config.test)
        picked = _stratified_pick(indicators[rest], val_share, config.seed + 1)
        split_of_source[rest[picked]] = "val"
    lookup = dict(zip(sources[source_column], split_of_source))
    return frame[source_column].map(lookup).to_numpy()
