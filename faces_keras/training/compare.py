"""``faces-keras compare``: one model per binary label against one model for all of them.

The original project trained a CNN per label and a bigger CNN for all labels
at once, and asked which does better. Here both kinds train on ONE prepared
dataset and its one split (so every model sees the same faces), each into
its own run directory under ``--out``::

    <out>/<family>-per-label-<label>/   one per binary label
    <out>/<family>-all-label/           every compared label at once
    <out>/compare.csv, compare.md       one row per (label, model): test scores
    <out>/compare.png                   F1 at the tuned threshold, per label

``family`` is ``default`` (the suite's preset for both kinds), ``original``
(the source project's ``original-per-label`` / ``original-all-label``) or
``residual``. Scores are on TEST, with thresholds tuned on validation, read
from each run's ``metrics.csv``. A run whose ``metrics.json`` exists is
reused, one with checkpoints is resumed, so an interrupted comparison picks
up where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from faces_keras.data.store import Dataset
from faces_keras.errors import DatasetError, FacesKerasError, RunError
from faces_keras.io import atomic_write_text, read_json
from faces_keras.models.presets import ModelConfig
from faces_keras.rundir import CHECKPOINTS, LAST, METRICS_CSV, METRICS_JSON, STATE, RunDir
from faces_keras.training.train import TrainConfig

log = logging.getLogger(__name__)

KINDS = ("per-label", "all-label")
# Which preset each family uses for each kind of model.
FAMILIES: dict[str, dict[str, str]] = {
    "default": {"per-label": "default", "all-label": "default"},
    "residual": {"per-label": "residual", "all-label": "residual"},
    "sequential": {"per-label": "sequential", "all-label": "sequential"},
    "original": {"per-label": "original-per-label", "all-label": "original-all-label"},
}
SCORES = ("precision@0.5", "recall@0.5", "f1@0.5", "precision@tuned", "recall@tuned", "f1@tuned",
          "accuracy@0.5", "accuracy@tuned")
COLUMNS = ("label", "model", "family", "kind", "preset", "n", "prevalence", "tuned_threshold", *SCORES,
           "parameters", "train_seconds", "run")


def preset_for(family: str, kind: str) -> str:
    """The model preset of one family and kind: ``("original", "all-label")`` -> ``original-all-label``.

    Args:
        family: ``default``, ``residual``, ``sequential`` or ``original``.
        kind: ``per-label`` or ``all-label``.

    Returns:
        The :class:`ModelConfig` preset name.

    Raises:
        FacesKerasError: the family or the kind is unknown.
    """
    if family not in FAMILIES:
        raise FacesKerasError(f"unknown preset family {family!r}; expected one of {', '.join(FAMILIES)}")
    if kind not in KINDS:
        raise FacesKerasError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    return FAMILIES[family][kind]


def parse_families(spec: str | Sequence[str]) -> list[str]:
    """``"default,original"`` (or a list) -> ``["default", "original"]``, checked, without repeats.

    Args:
        spec: comma-separated family names, or a sequence of them.

    Returns:
        The families, in the order given, blanks and repeats dropped.

    Raises:
        FacesKerasError: no family is given, or one is unknown.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    families = list(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not families:
        raise FacesKerasError("no preset family to compare; give e.g. --presets default,original")
    for family in families:
        preset_for(family, KINDS[0])
    return families


def run_name(family: str, kind: str, label: str | None = None) -> str:
    """The run directory's name of one model: ``<family>-<kind>[-<label>]``.

    Args:
        family: the preset family.
        kind: ``per-label`` or ``all-label``.
        label: per-label models: the label; ignored for ``all-label``.

    Returns:
        The name, e.g. ``default-per-label-smile`` or ``original-all-label``.
    """
    return f"{family}-{kind}" + (f"-{label}" if kind == "per-label" else "")


def compared_labels(dataset: Dataset, labels: Sequence[str] | None = None) -> list[str]:
    """The binary labels to compare: ``labels`` (checked) or every binary label of the dataset.

    Args:
        dataset: the loaded dataset.
        labels: label names, or ``None``/empty for every binary label.

    Returns:
        The label names.

    Raises:
        DatasetError: the schema has no binary label, or a name is not one of
            its binary labels.
    """
    binary = [label.name for label in dataset.schema.binary_labels]
    if not labels:
        if not binary:
            raise DatasetError(f"{dataset.path}: schema {dataset.schema.name!r} has no binary label to "
                               "compare per-label and all-label models on")
        return binary
    wrong = [name for name in labels if name not in binary]
    if wrong:
        raise DatasetError(f"{dataset.path}: {wrong} are not binary labels of schema "
                           f"{dataset.schema.name!r}; its binary labels are {binary}")
    return list(labels)


def plan_runs(families: Sequence[str], labels: Sequence[str], base: TrainConfig,
              model_overrides: Mapping[str, Any] | None = None) -> dict[str, TrainConfig]:
    """Run name -> training settings: per family, one run per label and one for all of them.

    Args:
        families: the preset families (``default``, ``original``...).
        labels: the binary labels compared.
        base: the training settings every run starts from; each run changes
            only ``labels`` and ``model``.
        model_overrides: :class:`ModelConfig` settings for every run (e.g.
            ``filters=8``); the preset always comes from the family. ``None``
            (the default) keeps the presets' own settings.

    Returns:
        An ordered mapping of run name (:func:`run_name`) to
        :class:`TrainConfig`, per family the per-label runs first.

    Raises:
        FacesKerasError: a family is unknown.
        ConfigError: ``model_overrides`` holds an unknown or out-of-range
            setting.
    """
    runs: dict[str, TrainConfig] = {}
    for family in families:
        for kind in KINDS:
            model = ModelConfig(**{**dict(model_overrides or {}), "preset": preset_for(family, kind)})
            if kind == "per-label":
                for label in labels:
                    runs[run_name(family, kind, label)] = replace(base, labels=(label,), model=model)
            else:
                runs[run_name(family, kind)] = replace(base, labels=tuple(labels), model=model)
    return runs


def _differences(run: RunDir, config: TrainConfig) -> list[str]:
    """Settings in which an existing run differs from the one asked for (``verbose`` aside)."""
    stored = run.read_config()
    wanted = config.to_dict()
    differ = [key for key, value in wanted.items()
              if key not in ("dataset", "verbose") and stored.get(key) != value]
    if Path(stored.get("dataset", "")).resolve() != Path(config.dataset).resolve():
        differ.append("dataset")
    elif (run.path / "manifest.json").is_file() and (Path(config.dataset) / "manifest.json").is_file():
        # the same folder re-prepared with other faces is another dataset
        from faces_keras.io import read_json

        if read_json(run.path / "manifest.json").get("images_sha256") != \
                read_json(Path(config.dataset) / "manifest.json").get("images_sha256"):
            differ.append("dataset contents")
    return differ


def ensure_run(config: TrainConfig, run_dir: Path) -> RunDir:
    """A finished run for ``config`` in ``run_dir``: reused, resumed or trained.

    A finished run (``metrics.json``) trained with other settings is an error,
    not silently mixed into the table: choose another ``--out`` or remove it.
    A started but unfinished run with other settings is trained again from
    scratch.

    Args:
        config: the run's training settings.
        run_dir: its run directory.

    Returns:
        The finished :class:`RunDir`.

    Raises:
        RunError: ``run_dir`` holds a finished run trained with other settings
            (they are named).
    """
    from faces_keras.training.train import resume, train

    run = RunDir(run_dir)
    started = (run / "config.yaml").is_file()
    if started:
        differ = _differences(run, config)
        if differ and (run / METRICS_JSON).is_file():
            raise RunError(f"{run.path} was trained with other settings ({', '.join(sorted(differ))}); "
                           "remove it or compare into another --out")
        if not differ and (run / METRICS_JSON).is_file():
            log.info("reusing %s", run.path)
            return run
        if not differ and (run.path / CHECKPOINTS / STATE).is_file() and (run.path / CHECKPOINTS / LAST).is_file():
            log.info("resuming %s", run.path)
            return resume(run.path)
    log.info("training %s", run.path)
    return train(config, run.path, overwrite=True)


def run_rows(run: RunDir, labels: Sequence[str]) -> pd.DataFrame:
    """The test rows of ``labels`` in a run's before/after table, with its size and training time.

    Args:
        run: a finished run.
        labels: the labels whose rows to keep.

    Returns:
        The rows of ``metrics.csv`` for the test split, with ``parameters``,
        ``train_seconds`` and ``run`` (the folder's name) added.

    Raises:
        RunError: the run lacks ``metrics.csv`` or ``metrics.json``, or has no
            test row for a label.
    """
    run.require(METRICS_CSV, METRICS_JSON)
    table = pd.read_csv(run / METRICS_CSV)
    table = table[(table["split"] == "test") & table["label"].isin(labels)]
    missing = [name for name in labels if name not in set(table["label"])]
    if missing:
        raise RunError(f"{run / METRICS_CSV}: no test row for label(s) {missing}")
    metrics = read_json(run / METRICS_JSON)
    return table.assign(parameters=metrics.get("parameters"), train_seconds=metrics.get("train_seconds"),
                        run=run.path.name)


def compare_table(runs: Mapping[str, RunDir], families: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """One row per (label, model): test scores at 0.5 and at the validation-tuned threshold.

    Args:
        runs: run name (:func:`run_name`) to finished run, for every planned run.
        families: the families compared.
        labels: the labels compared, in the table's order.

    Returns:
        A DataFrame with the columns of :data:`COLUMNS`, sorted by label.

    Raises:
        RunError: a run lacks its metrics or a label's test row.
    """
    parts = []
    for family in families:
        for kind in KINDS:
            if kind == "per-label":
                rows = pd.concat([run_rows(runs[run_name(family, kind, label)], [label]) for label in labels])
            else:
                rows = run_rows(runs[run_name(family, kind)], labels)
            parts.append(rows.assign(model=f"{family} {kind}", family=family, kind=kind,
                                     preset=preset_for(family, kind)))
    table = pd.concat(parts, ignore_index=True)
    order = {name: i for i, name in enumerate(labels)}
    table = table.sort_values("label", key=lambda s: s.map(order), kind="stable")
    return table[list(COLUMNS)].reset_index(drop=True)


def plot_comparison(table: pd.DataFrame, metric: str = "f1@tuned"):
    """Grouped bars: ``metric`` per label, one bar per model.

    Args:
        table: the comparison table (:func:`compare`, or ``compare.csv``).
        metric: the score column to plot, in [0, 1] (``f1@tuned`` by default:
            F1 on test at the threshold tuned on validation).

    Returns:
        A :class:`matplotlib.figure.Figure` (not registered with pyplot); a
        missing score is drawn as 0.
    """
    import numpy as np

    from faces_keras.data.present import new_figure

    labels = list(dict.fromkeys(table["label"]))
    models = list(dict.fromkeys(table["model"]))
    figure = new_figure(min(24.0, max(5.0, 0.45 * len(labels) * len(models) + 2)), 3.8)
    ax = figure.subplots()
    width = 0.8 / len(models)
    x = np.arange(len(labels))
    for i, model in enumerate(models):
        scores = table[table["model"] == model].set_index("label")[metric].reindex(labels)
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, scores.fillna(0).to_numpy(), width, label=model)
        if len(labels) * len(models) <= 30:
            ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30 if len(labels) > 6 else 0, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"{metric.replace('@', ' at ')} (test)")
    ax.set_title("per-label models against one all-label model (thresholds tuned on validation)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def comparison_markdown(table: pd.DataFrame, dataset: str | Path) -> str:
    """The comparison table as Markdown, after a sentence saying what it shows.

    Args:
        table: the comparison table.
        dataset: the dataset compared on, named in the sentence.

    Returns:
        The Markdown text.
    """
    from faces_keras.tables import to_markdown

    shown = table.drop(columns=["family", "kind", "run"])
    return (f"Per-label against all-label models on {dataset}: test split, thresholds tuned on "
            "validation; parameters and training time of the model that predicts the label.\n\n"
            + to_markdown(shown))


def compare(dataset: str | Path, out: str | Path, presets: str | Sequence[str] = ("default",), *,
            labels: Sequence[str] | None = None, model_overrides: Mapping[str, Any] | None = None,
            train: TrainConfig | None = None, **train_settings: Any) -> pd.DataFrame:
    """Train (or reuse) every run of the comparison and write ``compare.csv/.md/.png`` into ``out``.

    Args:
        dataset: the prepared dataset every model trains on (one split for all).
        out: the comparison folder; each run is a run directory inside it.
        presets: families (``default``, ``original``, ``residual``, ``sequential``).
        labels: the binary labels to compare (default: all of the dataset's).
        model_overrides: ModelConfig settings for every run (e.g. ``filters=8``
            for a quick look); the preset always comes from the family.
        train: the training settings of every run (default: TrainConfig's).
        **train_settings: single TrainConfig settings changed on top of ``train``
            (``epochs=5``, ``patience=3``, ...).

    Returns:
        The comparison table (also in compare.csv).

    Raises:
        FacesKerasError: a preset family is unknown.
        DatasetError: ``dataset`` is not a prepared dataset, or a label is not
            one of its binary labels.
        RunError: a run directory under ``out`` holds a finished run trained
            with other settings.
        ConfigError: a training or model setting is unknown or out of range.
    """
    from faces_keras.data.present import save_figure

    families = parse_families(presets)
    data = Dataset.load(dataset, verify=False)
    names = compared_labels(data, labels)
    base = replace(train or TrainConfig(), dataset=str(dataset), **train_settings)
    out = Path(out)
    planned = plan_runs(families, names, base, model_overrides)
    runs = {}
    for i, (name, config) in enumerate(planned.items(), start=1):
        log.info("[%d/%d] %s", i, len(planned), name)
        runs[name] = ensure_run(config, out / name)
    table = compare_table(runs, families, names)
    atomic_write_text(out / "compare.csv", table.to_csv(index=False))
    atomic_write_text(out / "compare.md", comparison_markdown(table, dataset))
    save_figure(plot_comparison(table), out / "compare.png")
    return table


__all__ = ["FAMILIES", "KINDS", "compare", "compare_table", "compared_labels",
           "ensure_run", "parse_families", "plan_runs", "plot_comparison", "preset_for", "run_name"]
