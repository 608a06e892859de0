"""``quickstart``: the whole pipeline in one command (``faces-keras quickstart``, ``make demo``).

With no arguments it draws synthetic grid photos (known labels, the original
project's layout and CSV format), so it runs anywhere with no data; with
``--photos`` and ``--labels`` it runs the same steps on real grid photos.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from faces_keras.data.prepare import PrepareConfig, prepare_dataset
from faces_keras.data.split import SplitConfig
from faces_keras.errors import ConfigError
from faces_keras.labels import load_schema
from faces_keras.models.config import ModelConfig
from faces_keras.rundir import RunDir
from faces_keras.settings import setting, validate
from faces_keras.training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickstartConfig:
    """The quickstart's settings: where its photos come from, and how long it trains.

    Each field is declared once with :func:`faces_keras.settings.setting`; its
    ``help`` says what it means, its default and its range.

    Raises:
        ConfigError: a field is out of range, or ``photos`` is given without
            ``labels``.
    """

    photos: str | None = setting(None, help="grid photos folder (default: synthetic faces the package draws)")
    labels: str | None = setting(None, help="labels CSV for --photos")
    schema: str | None = setting(None, help="schema for --labels (default: grids when --photos is given)")
    epochs: int = setting(8, at_least=1, help="training epochs")
    faces: int = setting(1200, at_least=60, help="synthetic faces to draw")
    seed: int = setting(0, help="seed of the drawing, the split and the training")

    def __post_init__(self):
        validate(self)
        if self.photos and not self.labels:
            raise ConfigError("--photos needs --labels (the grid photos' labels CSV)")


def quickstart(out: str | Path = "runs/quickstart", config: QuickstartConfig | None = None) -> RunDir:
    """Draw (or read) grid photos, prepare them, train the default model, tune thresholds, report.

    Args:
        out: the run directory, replaced if it exists; the photos and dataset
            go beside it in ``<out>-data``.
        config: where the photos come from and how long to train; ``None``
            (the default) draws 1,200 synthetic faces and trains 8 epochs.

    Returns:
        The finished run directory.

    Raises:
        SchemaError: ``config.schema`` names no schema.
        LabelsError: the labels CSV cannot be read against the schema.
        ImageError: a grid photo is missing, unreadable or does not fit its
            layout.
        FolderLockedError: another process is writing the run or the dataset.
    """
    from faces_keras.training.train import train

    config = config or QuickstartConfig()
    out_path = Path(out)
    data_dir = out_path.parent / f"{out_path.name}-data"
    photos, labels, schema = config.photos, config.labels, config.schema
    if photos is None:
        from faces_keras.data.synthetic import make_synthetic_grids

        log.info("[1/4] drawing %d synthetic faces into grid photos in %s", config.faces, data_dir / "photos")
        grids = make_synthetic_grids(data_dir / "photos", n_faces=config.faces, seed=config.seed)
        photos, labels, schema = str(data_dir / "photos"), str(grids.labels_csv), schema or "original"
    else:
        schema = schema or "grids"
        log.info("[1/4] using grid photos in %s with labels %s", photos, labels)
    log.info("[2/4] cutting, splitting by source face (64/16/20) and augmenting the training split")
    dataset = prepare_dataset(load_schema(schema), labels, data_dir / "dataset", photos=photos,
                              config=PrepareConfig(augment=("identity", "flip"), split=SplitConfig(seed=config.seed)),
                              overwrite=True)
    log.info("[3/4] training the default all-label model for up to %d epochs", config.epochs)
    train_config = TrainConfig(dataset=str(dataset), model=ModelConfig(), epochs=config.epochs, seed=config.seed)
    run = train(train_config, out_path, overwrite=True)
    log.info("[4/4] thresholds tuned on validation; test evaluated once; report written")
    return run
