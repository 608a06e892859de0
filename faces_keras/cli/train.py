"""``faces-keras train``, ``thresholds`` and ``compare``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from faces_keras.cli.flags import ConfigFile, add_settings, option, settings_from
from faces_keras.cli.summary import print_run_summary
from faces_keras.errors import FacesKerasError
from faces_keras.thresholds.tune import ThresholdConfig
from faces_keras.training.config import LEGACY_THRESHOLD_KEYS, TrainConfig


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on a prepared dataset into a run directory",
                       description="Train a model on a prepared dataset's train split, keep the best epoch "
                                   "by validation, tune thresholds on validation and score test once.")
    p.add_argument("dataset", nargs="?", help="prepared dataset folder (or `dataset:` in --config)")
    p.add_argument("--out", help="run directory (default runs/<dataset>-<preset>)")
    add_settings(p, TrainConfig, exclude=("dataset",))  # with the model's and the thresholds' settings
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing run directory")
    p.add_argument("--config", help="YAML/TOML file of settings, or a run's config.yaml to repeat that run")
    p.set_defaults(handler=run_train)

    p = sub.add_parser("thresholds", help="tune per-label thresholds on validation; before/after table",
                       description="Tune each binary label's threshold on the run's validation predictions "
                                   "and rewrite thresholds.json, metrics and the report.")
    p.add_argument("run", help="run directory")
    add_settings(p, ThresholdConfig)
    p.add_argument("--repredict", action="store_true",
                   help="predict val and test again first (after model.keras was replaced)")
    p.set_defaults(handler=run_thresholds)

    p = sub.add_parser("ensemble", help="average runs' predictions; thresholds on validation, test once",
                       description="Average the val/test predictions of two or more runs trained on the same "
                                   "prepared dataset (other seeds, other presets), tune thresholds on the "
                                   "averaged validation predictions and score test once. OUT gets "
                                   "predictions.npz, thresholds.json and metrics.json/.csv/.md; it has no model "
                                   "of its own.")
    p.add_argument("runs", nargs="+", help="run directories (two or more, same dataset and schema)")
    p.add_argument("--out", required=True, help="the ensemble folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    add_settings(p, ThresholdConfig)
    p.set_defaults(handler=run_ensemble)

    p = sub.add_parser("compare", help="per-label models against one all-label model on one split",
                       description="Train one model per binary label and one for all of them, on one "
                                   "dataset and split, and tabulate their test scores.")
    p.add_argument("dataset", help="prepared dataset folder")
    p.add_argument("--out", default="runs/compare", help="comparison folder (default runs/compare)")
    p.add_argument("--presets", default="default",
                   help="comma-separated families: default, original, residual, sequential (default: default)")
    add_settings(p, TrainConfig, exclude=("dataset", "preset", "init_from", "freeze_epochs", "finetune_lr_factor"))
    p.set_defaults(handler=run_compare)


def _train_config(args: argparse.Namespace, config_file: ConfigFile) -> TrainConfig:
    values = config_file.values
    values.pop("environment", None)  # a run's config.yaml records it; not a setting
    values.pop("backbone", None)  # likewise: where an --init-from backbone came from
    for old in LEGACY_THRESHOLD_KEYS:  # older runs' config.yaml
        if old in values:
            values.setdefault("thresholds", {})[LEGACY_THRESHOLD_KEYS[old]] = values.pop(old)
    dataset = option(args, config_file, "dataset", "")
    return settings_from(TrainConfig, args, config_file, dataset=str(dataset))


def run_train(args: argparse.Namespace) -> int:
    from faces_keras.training.train import resume, train

    if args.resume:
        print_run_summary(resume(args.resume))
        return 0
    config_file = ConfigFile(args.config)
    repeating = isinstance(config_file.values.get("model"), dict)  # a run's config.yaml
    out = option(args, config_file, "out")
    overwrite = bool(option(args, config_file, "overwrite", False))
    config = _train_config(args, config_file)
    config_file.check_all_used("train")
    if not config.dataset:
        raise FacesKerasError("train needs a prepared DATASET folder (or --resume RUN_DIR)")
    if repeating and not out:
        raise FacesKerasError("repeating a run from its config.yaml needs --out (a new run directory)")
    out = out or f"runs/{Path(config.dataset).name}-{config.model.preset}"
    print_run_summary(train(config, out, overwrite=overwrite))
    return 0


def run_thresholds(args: argparse.Namespace) -> int:
    from faces_keras.rundir import RunDir
    from faces_keras.training.evaluate import tune_run_thresholds

    run = RunDir(args.run)
    if args.repredict:
        from faces_keras.training.train import repredict

        repredict(run.path)
    tune_run_thresholds(run, settings_from(ThresholdConfig, args))
    print((run / "metrics.md").read_text() if (run / "metrics.md").is_file() else "no binary labels: "
          "multi-class heads take the arg-max and need no threshold")
    print(f"thresholds: {run / 'thresholds.json'}")
    return 0


def run_ensemble(args: argparse.Namespace) -> int:
    from faces_keras.training.ensemble import ensemble_runs

    from faces_keras.rundir import RunDir

    ensemble_runs(args.runs, args.out, thresholds=settings_from(ThresholdConfig, args), overwrite=args.overwrite)
    print_run_summary(RunDir(args.out))
    print(f"an ensemble of {len(args.runs)} runs (metrics.json lists them)")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from faces_keras.training.compare import compare

    train = settings_from(TrainConfig, args, dataset=str(args.dataset))
    given_model = {name.split(".", 1)[1] for name in vars(args) if name.startswith("model.")}
    overrides = {name: getattr(train.model, name) for name in given_model}
    compare(args.dataset, args.out, args.presets, labels=train.labels or None, model_overrides=overrides,
            train=replace(train, labels=()))
    out = Path(args.out)
    print((out / "compare.md").read_text())
    print(f"table: {out / 'compare.csv'}\nchart: {out / 'compare.png'}")
    return 0
