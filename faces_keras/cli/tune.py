"""``faces-keras tune``: a resumable Hyperband search (:func:`faces_keras.tuning.search.tune`)."""

from __future__ import annotations

import argparse
from typing import Any

from faces_keras.cli.flags import ConfigFile, add_settings, option, settings_from
from faces_keras.errors import FacesKerasError
from faces_keras.tuning.settings import TuneConfig, role_from_environment


def register(sub) -> None:
    p = sub.add_parser("tune", help="Hyperband search over a model family (resumes unless --overwrite)",
                       description="Search a model family's hyperparameters with keras-tuner's Hyperband "
                                   "(resumable; one chief and several workers for a distributed search), "
                                   "summarise every trial and retrain the best configuration.")
    p.add_argument("dataset", nargs="?", help="prepared dataset folder (or `dataset:` in --config)")
    add_settings(p, TuneConfig, exclude=("dataset",))
    p.add_argument("--config", help="YAML/TOML file of settings")
    p.set_defaults(handler=run_tune)


def tune_config(args: argparse.Namespace, config_file: ConfigFile | None = None) -> TuneConfig:
    """The search's settings: flags, then ``--config``, then the declared defaults.

    With neither ``--chief`` nor ``--worker``, keras-tuner's own environment
    variables (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT)
    choose the role, so launch scripts written for keras-tuner work unchanged.
    """
    config_file = config_file or ConfigFile(getattr(args, "config", None))
    dataset = option(args, config_file, "dataset", "")
    if not dataset:
        raise FacesKerasError("tune needs a prepared DATASET folder (argument or `dataset:` in --config)")
    config = settings_from(TuneConfig, args, config_file, dataset=str(dataset))
    config_file.check_all_used("tune")
    return role_from_environment(config)


def run_tune(args: argparse.Namespace) -> int:
    from faces_keras.tuning.search import tune

    print_search_summary(tune(tune_config(args)))
    return 0


def print_search_summary(result) -> None:
    """What a search did and where everything is (a worker: only the trials it ran)."""
    if result.role == "worker":
        print(f"worker {result.worker_id} done: ran trial(s) {', '.join(result.trials_run) or 'none'} "
              f"in {result.seconds:.0f} s; results in {result.project_dir}")
        return
    print(f"search ({result.status}): {result.project_dir}  [{result.device.get('device')}, "
          f"{result.device.get('backend')} backend]")
    print(f"trials: {len(result.trials)} ({len(result.completed)} completed); this run {result.seconds:.0f} s")
    if result.best is not None:
        values = ", ".join(f"{k}={_short(v)}" for k, v in result.best.hyperparameters.items())
        print(f"best trial {result.best.trial_id}: {result.objective} {result.best.score:.4f}  ({values})")
    print(f"summary: {result.summary_csv}\n         {result.summary_md}")
    if result.best_json is not None:
        print(f"best configuration: {result.best_json}")
    if result.run_dir is not None:
        print(f"retrained run: {result.run_dir}  (metrics.md, report.html)")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
