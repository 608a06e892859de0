"""The ``tune`` command's flags, in a module that imports no Keras so ``faces-keras --help`` stays fast.

Shared by :mod:`faces_keras.cli` and ``python -m faces_keras.tuning.search``.
"""

from __future__ import annotations

import argparse

OBJECTIVE_NAMES = ("val_auc", "val_loss", "val_mean_f1")


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag of ``faces-keras tune``."""
    p.add_argument("dataset", nargs="?", help="prepared dataset folder (or `dataset:` in --config)")
    p.add_argument("--space", default="default", help="default (the small ResNet), residual, sequential or original")
    p.add_argument("--out", default="searches", help="folder of search directories (default searches/)")
    p.add_argument("--config", help="YAML/TOML file of settings")
    p.add_argument("--labels", help="comma-separated labels to tune for (default: all)")
    p.add_argument("--objective", choices=list(OBJECTIVE_NAMES), default="val_loss")
    p.add_argument("--max-epochs", type=int, default=20, help="Hyperband's largest epoch budget for a trial")
    p.add_argument("--factor", type=int, default=3, help="Hyperband's reduction factor")
    p.add_argument("--iterations", type=int, default=1, help="Hyperband iterations")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-train", type=int, help="use at most N training faces")
    p.add_argument("--patience", type=int, default=3, help="early stopping patience inside a trial")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--project", help="search directory name under --out (default: from dataset, labels, space)")
    p.add_argument("--overwrite", action="store_true", help="start the search afresh")
    p.add_argument("--retrain-epochs", type=int, help="epochs to retrain the best trial (default max-epochs; 0: skip)")
    p.add_argument("--mixed-precision", action="store_true", help="float16/bfloat16 compute on a GPU")
    p.add_argument("--no-augmentation", action="store_true", help="no online augmentation layers")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep every trial's checkpoint")
    p.add_argument("--chief", action="store_true", help="distributed: serve the oracle (runs no trials)")
    p.add_argument("--worker", metavar="ID", help="distributed: run trials as worker ID (e.g. tuner0)")
    p.add_argument("--oracle-ip", default="127.0.0.1", help="distributed: the chief's address")
    p.add_argument("--oracle-port", type=int, help="distributed: the chief's port")
    p.add_argument("--worker-timeout", type=float, metavar="SECONDS",
                   help="distributed: the chief gives up a worker silent for this long and hands its trial to "
                        "another; workers report several times per timeout (default: TuneConfig.worker_timeout)")
