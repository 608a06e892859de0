"""``faces-keras quickstart``: the whole pipeline in one command.

With no arguments it draws synthetic grid photos (known labels, the original
project's layout and CSV format), so it runs anywhere with no data; with
``--photos`` and ``--labels`` it runs the same steps on real grid photos.
"""

from __future__ import annotations

import logging
from pathlib import Path

from faces_keras.data.prepare import PrepareConfig, prepare_dataset
from faces_keras.labels import load_schema
from faces_keras.models.presets import ModelConfig
from faces_keras.rundir import RunDir
from faces_keras.training.train import TrainConfig, train

log = logging.getLogger(__name__)


def quickstart(photos: str | None = None, labels: str | None = None, schema: str | None = None,
               out: str = "runs/quickstart", epochs: int = 8, faces: int = 1200, seed: int = 0) -> RunDir:
    out_path = Path(out)
    data_dir = out_path.parent / f"{out_path.name}-data"
    if photos is None:
        from faces_keras.data.synthetic import make_synthetic_grids

        print(f"[1/4] drawing {faces} synthetic faces into grid photos in {data_dir / 'photos'}")
        grids = make_synthetic_grids(data_dir / "photos", n_faces=faces, seed=seed)
        photos, labels, schema = str(data_dir / "photos"), str(grids.labels_csv), schema or "original"
    else:
        if labels is None:
            raise ValueError("--photos needs --labels (the grid photos' labels CSV)")
        schema = schema or "grids"
        print(f"[1/4] using grid photos in {photos} with labels {labels}")
    print("[2/4] cutting, splitting by source face (64/16/20) and augmenting the training split")
    dataset = prepare_dataset(load_schema(schema), labels, data_dir / "dataset", photos=photos,
                              config=PrepareConfig(augment=("identity", "flip"), split=_split(seed)),
                              overwrite=True)
    print(f"[3/4] training the default all-label model for up to {epochs} epochs")
    config = TrainConfig(dataset=str(dataset), model=ModelConfig(), epochs=epochs, seed=seed, verbose=2)
    run = train(config, out_path, overwrite=True)
    print("[4/4] thresholds tuned on validation; test evaluated once; report written")
    return run


def _split(seed: int):
    from faces_keras.data.split import SplitConfig

    return SplitConfig(seed=seed)
