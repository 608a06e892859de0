"""A search's summary: every trial as a :class:`TrialRow`, best first, in ``summary.csv`` and ``summary.md``.

Keras-free: a search directory can be read (and summarised again) without
Keras or keras-tuner, from the JSON files keras-tuner and the search write.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from faces_keras.io import atomic_write_text, read_json
from faces_keras.tables import to_markdown
from faces_keras.tuning.settings import TuneConfig, hyperband_plan
from faces_keras.tuning.searchdir import SUMMARY_CSV, SUMMARY_MD, trial_runs


@dataclass
class TrialRow:
    """One trial as the summary shows it.

    Args:
        trial_id: keras-tuner's trial id.
        status: its status (``COMPLETED``, ``RUNNING``, ``FAILED``...).
        score: its objective value, or ``None`` before it has one.
        hyperparameters: name to value, ``tuner/...`` values left out.
        epochs_from: the epoch it started at (its parent's budget; 0 for a
            new trial).
        epochs_to: its Hyperband epoch budget.
        epochs_run: epochs actually trained (fewer when early stopping ended
            it), or ``None`` if unknown.
        best_epoch: the 1-based epoch of its best objective value, or ``None``.
        seconds: its training time, or ``None``.
        worker: the process that ran it, or ``None``.
        attempts: how many times it was started.
        continues: the trial it continued from, or ``None``.
        bracket: its Hyperband bracket, or ``None``.
        round: its round within the bracket, or ``None``.
        rss_mb: the resident memory (MB) of the process that ran it, just
            after it (its last attempt), or ``None`` if unknown.
    """

    trial_id: str
    status: str
    score: float | None
    hyperparameters: dict[str, Any]
    epochs_from: int  # the epoch it started at (its parent's budget; 0 for a new trial)
    epochs_to: int  # its Hyperband budget
    epochs_run: int | None  # epochs actually trained (fewer when early stopping ended it)
    best_epoch: int | None  # 1-based epoch of its best objective value
    seconds: float | None
    worker: str | None
    attempts: int
    continues: str | None  # the trial it continued from
    bracket: int | None
    round: int | None
    rss_mb: float | None = None  # the running process's RSS just after the trial

    def as_dict(self) -> dict[str, Any]:
        """The row as one flat mapping: its fields, then the hyperparameters.

        Returns:
            Field and hyperparameter name to value.
        """
        out = {k: v for k, v in asdict(self).items() if k != "hyperparameters"}
        return {**out, **self.hyperparameters}


def declared_order(project_dir: str | Path) -> list[str]:
    """The search space's hyperparameter names in the order the space declares them.

    Read from ``oracle.json``, which the single process or the chief writes
    from the space it declared.

    Args:
        project_dir: the search directory.

    Returns:
        The names; empty when there is no oracle.json yet.
    """
    path = Path(project_dir) / "oracle.json"
    if not path.is_file():
        return []
    space = read_json(path).get("hyperparameters", {}).get("space", [])
    return [str(p["config"]["name"]) for p in space if isinstance(p, dict) and "name" in p.get("config", {})]


def load_trials(project_dir: str | Path, direction: str = "min") -> list[TrialRow]:
    """Every trial of a search directory, best first (completed by score, then the rest by id).

    Args:
        project_dir: the search directory.
        direction: ``min`` or ``max``: whether a lower or a higher score is better.

    Returns:
        One :class:`TrialRow` per ``trial_*/trial.json``, hyperparameters in the
        order the space declares them (:func:`declared_order`; trials that went
        through gRPC come back grouped by type).
    """
    order = declared_order(project_dir)
    rows = []
    for path in sorted(Path(project_dir).glob("trial_*/trial.json")):
        state = read_json(path)
        values = dict(state.get("hyperparameters", {}).get("values", {}))
        values = dict(sorted(values.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
        runs = trial_runs(path.parent)
        last = runs[-1] if runs else {}
        start = int(values.get("tuner/initial_epoch", 0))
        best_step = state.get("best_step")
        rows.append(TrialRow(
            trial_id=str(state["trial_id"]), status=str(state.get("status")),
            score=None if state.get("score") is None else float(state["score"]),
            hyperparameters={k: v for k, v in values.items() if not k.startswith("tuner/")},
            epochs_from=start, epochs_to=int(values.get("tuner/epochs", 0)),
            epochs_run=last.get("epochs_run"),
            best_epoch=None if best_step is None or state.get("score") is None else start + int(best_step) + 1,
            seconds=last.get("seconds"), worker=last.get("worker"), attempts=len(runs),
            continues=values.get("tuner/trial_id"), bracket=values.get("tuner/bracket"),
            round=values.get("tuner/round"), rss_mb=last.get("rss_mb")))
    done = [r for r in rows if r.status == "COMPLETED" and r.score is not None and not math.isnan(r.score)]
    done.sort(key=lambda r: r.score, reverse=direction == "max")
    return done + [r for r in rows if r not in done]


def summary_frame(rows: list[TrialRow]) -> pd.DataFrame:
    """The trials as a table: a ``rank`` column, the :class:`TrialRow` fields, then the hyperparameters.

    Args:
        rows: the trials, best first (:func:`load_trials`).

    Returns:
        One row per trial, ranked from 1 in the order given; an empty frame
        without columns for no trials.
    """
    frame = pd.DataFrame([r.as_dict() for r in rows])
    if not frame.empty:
        frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame


def write_summary(config: TuneConfig, rows: list[TrialRow], *, space_lines: list[str] | None = None,
                  device: dict | None = None, run_dir: Path | None = None,
                  seconds: float | None = None) -> tuple[Path, Path]:
    """Write ``summary.csv`` and ``summary.md`` into the search directory, best trial first.

    Args:
        config: the search's settings.
        rows: its trials, from :func:`load_trials`.
        space_lines: the search space, one line per hyperparameter
            (:func:`faces_keras.tuning.hypermodels.describe_space`); None leaves it out.
        device: what the search ran on (``backend.describe_device()``).
        run_dir: where the best configuration was retrained, if it was.
        seconds: how long this run of the search took.

    Returns:
        The paths of ``summary.csv`` and ``summary.md``.
    """
    project = config.project_dir
    frame = summary_frame(rows)
    csv_path, md_path = project / SUMMARY_CSV, project / SUMMARY_MD
    atomic_write_text(csv_path, frame.to_csv(index=False))
    plan = hyperband_plan(config.max_epochs, config.factor, config.hyperband_iterations)
    completed = sum(r.status == "COMPLETED" for r in rows)
    lines = [f"# Hyperband search `{config.project}`", "",
             f"- dataset: `{config.dataset}`; labels: {', '.join(config.labels) or 'all'}",
             f"- space: {config.space}; objective: {config.objective} ({config.direction})",
             f"- Hyperband: max_epochs {config.max_epochs}, factor {config.factor}, "
             f"iterations {config.hyperband_iterations}: plan {plan['trials']} trials, "
             f"at most {plan['epochs']} epochs",
             f"- trials: {len(rows)} ({completed} completed); trial time "
             f"{sum(r.seconds or 0 for r in rows):.0f} s" + (f"; this run {seconds:.0f} s" if seconds else "")]
    if device:
        lines.append(f"- device: {device.get('device')} ({device.get('backend')} backend, "
                     f"{', '.join(device.get('accelerators') or []) or 'no accelerator'})")
    if run_dir is not None:
        lines.append(f"- best configuration retrained into `{run_dir}`")
    if space_lines:
        lines += ["", "Search space:", "", *[f"- {line}" for line in space_lines]]
    lines += ["", to_markdown(frame, decimals=None, missing="").rstrip() if not frame.empty else "(no trials yet)", ""]
    atomic_write_text(md_path, "\n".join(lines))
    return csv_path, md_path
