"""Faces streamed from a memory-mapped ``images.npy``, a batch at a time.

A prepared dataset is read through :class:`FaceRows` (a split's rows, read
when indexed) and fed to Keras through :class:`FaceBatches`, a
``keras.utils.PyDataset`` that gathers one batch of uint8 faces and casts
only that batch to float32. Training memory is then the model's plus a few
batches, whatever the dataset's size; the float32 copy of every face that
``model.fit(array)`` needs (3.3 GB for CelebA at 64x64 gray) is never made.
Online augmentation stays inside the model, so a batch here is raw faces.

``benchmarks/bench_scale.py`` measures this path against the in-memory one.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

import keras

from faces_keras.data.store import release_pages


class FaceRows:
    """Some rows of a face array, read when indexed (a split of a memory-mapped dataset).

    Behaves like a read-only uint8 array for what training and prediction
    need: ``len``, ``shape``, ``dtype``, slicing and integer-array indexing
    (which read only those rows), and ``np.asarray`` (which reads them all).

    Args:
        images: every face of the dataset, uint8 ``(N, size, size, C)``,
            usually a memory map.
        rows: the row numbers of this selection, int64.
    """

    def __init__(self, images: np.ndarray, rows: np.ndarray):
        self.images = images
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.images.shape[1:])

    @property
    def dtype(self):
        return self.images.dtype

    @property
    def ndim(self) -> int:
        return self.images.ndim

    def __getitem__(self, key) -> np.ndarray:
        picked = self.rows[key]
        if np.ndim(picked) == 0:
            return np.asarray(self.images[int(picked)])
        # Sorted reads are sequential on disk; the result keeps the asked order.
        order = np.argsort(picked, kind="stable")
        out = np.empty((len(picked), *self.images.shape[1:]), dtype=self.images.dtype)
        out[order] = self.images[picked[order]]
        return out

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def take(self, keep: np.ndarray) -> "FaceRows":
        """The selection restricted to positions ``keep`` (no image is read).

        Args:
            keep: positions within this selection.

        Returns:
            A new :class:`FaceRows`.
        """
        return FaceRows(self.images, self.rows[np.asarray(keep)])


RELEASE_BYTES = 64 << 20  # mapped face bytes read between two releases of their pages


def as_float_batch(faces: np.ndarray) -> np.ndarray:
    """One batch of faces as the float32 0-255 values the models take.

    Args:
        faces: uint8 (or already float) faces.

    Returns:
        A float32 array.
    """
    return np.asarray(faces, dtype="float32")


class FaceBatches(keras.utils.PyDataset):
    """A split of faces (and its targets) as Keras batches, cast to float32 one batch at a time.

    With ``shuffle``, the order is redrawn at the start of every epoch from
    ``seed`` and the epoch number, so a resumed run sees the same batches as
    an uninterrupted one would.

    Args:
        faces: uint8 faces, a :class:`FaceRows` or an array.
        targets: what ``fit`` takes as ``y``: one array, or a dict of arrays
            with one row per face; ``None`` for prediction.
        batch_size: faces per batch.
        shuffle: draw a new order each epoch (training); ``False`` keeps the
            faces' order (validation, prediction).
        seed: seed of the shuffled orders.
        flip: mirror every face left-right (test-time augmentation).
        workers: threads that prepare batches ahead of the model (Keras's
            ``PyDataset`` workers); 1 prepares them in the training loop.
    """

    def __init__(self, faces, targets: Any = None, *, batch_size: int = 128, shuffle: bool = False,
                 seed: int = 0, flip: bool = False, workers: int = 1, **kwargs):
        super().__init__(workers=workers, use_multiprocessing=False, **kwargs)
        self.faces, self.targets = faces, targets
        self.batch_size, self.shuffle, self.seed, self.flip = int(batch_size), shuffle, int(seed), flip
        self.epoch = 0
        self._read_since_release = 0
        # Data-parallel (faces_keras.backend.use_distribution): every batch splits over the devices,
        # except a short one, put first, that a whole evaluation or prediction pass then replicates.
        self.replicas = _replicas()
        short = len(faces) % self.batch_size
        self.short_first = short if not shuffle and short % self.replicas else 0
        self.order = self._order()

    def _order(self) -> np.ndarray | None:
        if not self.shuffle:
            return None
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.faces))
        # data-parallel: the epoch's last few faces that would leave a batch the devices
        # do not divide wait for a later epoch's shuffle (fewer than the device count)
        return order[:len(order) - len(order) % self.replicas]

    def __len__(self) -> int:
        return math.ceil((len(self.faces) if self.order is None else len(self.order)) / self.batch_size)

    def __getitem__(self, index: int):
        start = index * self.batch_size
        if self.order is None and self.short_first:
            start = 0 if index == 0 else self.short_first + (index - 1) * self.batch_size
            picked = slice(start, self.short_first if index == 0 else start + self.batch_size)
        elif self.order is None:
            picked = slice(start, start + self.batch_size)
        else:
            # Sorted within the batch: reads go forward through the file, and a
            # batch's contents (not its order) is what training depends on.
            picked = np.sort(self.order[start:start + self.batch_size])
        faces = self.faces[picked]
        self._read_since_release += faces.nbytes
        if self._read_since_release >= RELEASE_BYTES:
            # The mapped pages read so far go back to the page cache: memory stays a few
            # batches' worth however many faces an epoch reads.
            release_pages(getattr(self.faces, "images", self.faces))
            self._read_since_release = 0
        x = as_float_batch(faces)
        if self.flip:
            x = x[:, :, ::-1]
        if self.targets is None:
            return (x,)
        return x, _take(self.targets, picked)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()

    def start_at_epoch(self, epoch: int) -> "FaceBatches":
        """Continue the shuffled orders from ``epoch`` (a resumed run).

        Args:
            epoch: the first epoch to train (0-based).

        Returns:
            This object.
        """
        self.epoch = int(epoch)
        self.order = self._order()
        return self


def _replicas() -> int:
    """The devices of this process a batch is split over (Keras's active distribution), 1 without one."""
    active = keras.distribution.distribution()
    if active is None:
        return 1
    return max(1, int(active.device_mesh.devices.size) // max(1, int(active.num_processes)))


def _take(targets: Any, picked) -> Any:
    if isinstance(targets, Mapping):
        return {name: np.asarray(values)[picked] for name, values in targets.items()}
    return np.asarray(targets)[picked]


__all__ = ["FaceBatches", "FaceRows", "as_float_batch"]
