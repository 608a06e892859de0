"""The search directory: what is in it, the check that a resumed search is the same search, trial records.

::

    searches/<project>/              the search directory (outside the repository; git-ignored)
      tune_config.json               the settings that define the search (checked on resume)
      oracle.json, tuner0.json       keras-tuner's state: running the command again resumes from it
      trial_<id>/trial.json          keras-tuner's record of a trial: hyperparameters, metrics, score
      trial_<id>/faces_trial.json    ours: which worker ran it, how long, epochs actually run
      trial_<id>/checkpoint.weights.h5  its best epoch (weights + Adam state), while still needed
      summary.csv, summary.md        every trial, best first
      best.json                      the best trial's hyperparameters and ModelConfig
      best-run/                      the best configuration retrained: a normal run directory
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from faces_keras.errors import RunError
from faces_keras.io import read_json, write_json
from faces_keras.tuning.settings import SEARCH_KEYS, TuneConfig

log = logging.getLogger(__name__)

CONFIG_FILE, SUMMARY_CSV, SUMMARY_MD, BEST_JSON, BEST_RUN = (
    "tune_config.json", "summary.csv", "summary.md", "best.json", "best-run")
TRIAL_RECORD = "faces_trial.json"
CHECKPOINT = "checkpoint.weights.h5"


def prepare_search_dir(config: TuneConfig) -> str:
    """Start afresh (overwrite), or check that a resumed search is the same search.

    Only the chief or a single process calls this; it records the settings in
    ``tune_config.json``.

    Args:
        config: the search's settings.

    Returns:
        ``"new"`` or ``"resumed"``.

    Raises:
        RunError: the directory holds a search with other defining settings (``SEARCH_KEYS``).
    """
    project = config.project_dir
    if config.overwrite and project.exists():
        shutil.rmtree(project)
    saved_path = project / CONFIG_FILE
    resumed = (project / "oracle.json").is_file()
    if saved_path.is_file():
        saved = read_json(saved_path).get("search", {})
        wanted = config.search_settings()
        differ = {k: (saved.get(k), wanted[k]) for k in SEARCH_KEYS if saved.get(k) != wanted[k]}
        if differ:
            details = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differ.items())
            raise RunError(f"{project} holds a different search ({details}); pass --overwrite to replace it "
                           "or choose another --project")
    elif resumed:
        log.warning("%s has keras-tuner state but no %s: resuming it as is", project, CONFIG_FILE)
    project.mkdir(parents=True, exist_ok=True)
    write_json(saved_path, {"search": config.search_settings(), "last_run": config.to_dict()})
    return "resumed" if resumed else "new"


def trial_runs(trial_dir: Path) -> list[dict[str, Any]]:
    """The attempts ``faces_trial.json`` records for one trial, oldest first (none: ``[]``)."""
    path = trial_dir / TRIAL_RECORD
    return read_json(path).get("runs", []) if path.is_file() else []


def append_trial_record(trial_dir: Path, record: dict[str, Any]) -> None:
    """Add one attempt to ``faces_trial.json`` (a retried trial has several)."""
    write_json(trial_dir / TRIAL_RECORD, {"runs": [*trial_runs(trial_dir), record]})
