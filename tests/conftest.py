"""Shared fixtures: the real data in ../shared/data and small prepared datasets built from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
# The real faces: ../shared/data beside the checkout, or wherever FACES_KERAS_DATA points.
DATA = Path(os.environ.get("FACES_KERAS_DATA") or ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real data; tests that need it skip, with the reason, when it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"the shared real data is not at {DATA} (set FACES_KERAS_DATA to its folder)")
    return DATA


@pytest.fixture(scope="session")
def grids_dataset(tmp_path_factory, data_dir) -> Path:
    """The 458 real grid faces, prepared (64x64 gray, 64/16/20 split, no augmentation)."""
    from faces_keras.data.prepare import prepare_dataset
    from faces_keras.labels import load_schema

    out = tmp_path_factory.mktemp("prepared") / "grids"
    return prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", out)


def tiny_model(**overrides):
    """A model config small enough for one-epoch tests."""
    from faces_keras.models.presets import ModelConfig

    settings = dict(filters=8, blocks=2, augmentation=None)
    settings.update(overrides)
    return ModelConfig(**settings)
