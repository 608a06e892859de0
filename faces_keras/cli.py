"""``faces-keras``: the command line, thin over the library.

Each subcommand parses its flags (optionally a YAML/TOML config file whose keys
are the long flag names), calls one library function, and prints where its
output went. Bad input prints one clear line and exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from faces_keras import __version__
from faces_keras.errors import ConfigError, FacesKerasError
from faces_keras.tuning.arguments import add_tune_arguments

log = logging.getLogger("faces_keras")
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(func):
        COMMANDS[name] = func
        return func
    return register


# -- config files -----------------------------------------------------------------------

def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or TOML file of settings; keys are long flag names (dashes or underscores).

    A file that does not parse raises :class:`ConfigError` naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}); expected YAML or TOML settings") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {_one_line(exc)}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or _one_line(exc)
            raise ConfigError(f"{where}: not valid YAML: {problem}"
                              + (f" (column {mark.column + 1})" if mark is not None else "")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds a mapping of setting to value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string"}


def _type_name(kind) -> str:
    return _TYPE_NAMES.get(kind, getattr(kind, "__name__", str(kind)))


def _convert_value(action: argparse.Action, value: Any, where: str) -> Any:
    """A config file's value for one flag, converted and checked as argparse would check it."""
    if value is None:
        return None
    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not a switch; expected true or false")
        return value
    if isinstance(action, argparse._AppendAction):
        if isinstance(value, dict):  # HEAD: WEIGHT mappings, read by the command
            return value
        items = value if isinstance(value, list) else [value]
        return [_convert_scalar(action, item, where) for item in items]
    if isinstance(value, (list, dict)):
        raise ConfigError(f"{where}: {value!r} is a {'list' if isinstance(value, list) else 'mapping'}; "
                          f"expected {_type_name(action.type or str)}")
    return _convert_scalar(action, value, where)


def _convert_scalar(action: argparse.Action, value: Any, where: str) -> Any:
    kind = action.type or str
    expected = _type_name(kind)
    if isinstance(value, (list, dict)) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}: {value!r} is not {expected}; expected {expected}")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{where}: {value!r} is not an integer; expected an integer")
    try:
        converted = kind(value) if isinstance(value, str) or kind in (int, float) else kind(str(value))
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        raise ConfigError(f"{where}: {value!r} is not {expected}; expected {expected}") from None
    if action.choices is not None and converted not in action.choices:
        raise ConfigError(f"{where}: {converted!r} is not a choice; expected one of {list(action.choices)}")
    return converted


def _check_run_config(path: str, settings: dict[str, Any]) -> None:
    """A run's config.yaml against the field types of TrainConfig (and ModelConfig under `model`)."""
    from dataclasses import fields

    from faces_keras.models.presets import ModelConfig
    from faces_keras.training.train import TrainConfig

    def check(cls, values: dict[str, Any], prefix: str) -> None:
        for f in fields(cls):
            if f.name not in values or values[f.name] is None:
                continue
            value, hint = values[f.name], str(f.type).replace(" ", "")
            base = hint.split("|")[0]
            where = f"{path}: {prefix}{f.name}"
            if base == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{where}: {value!r} is not an integer; expected an integer")
            if base == "float" and isinstance(value, str):
                try:  # YAML 1.1 reads 1e-3 (no dot) as a string: take it as the number it is
                    values[f.name] = value = float(value)
                except ValueError:
                    pass
            if base == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"{where}: {value!r} is not a number; expected a number")
            if base == "bool" and not isinstance(value, bool):
                raise ConfigError(f"{where}: {value!r} is not a switch; expected true or false")
            if base == "str" and not isinstance(value, str):
                raise ConfigError(f"{where}: {value!r} is not a string; expected a string")

    check(TrainConfig, settings, "")
    if isinstance(settings.get("model"), dict):
        check(ModelConfig, settings["model"], "model.")


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for action in parser._subparsers._group_actions:  # argparse keeps subparsers here
        sub = action.choices.get(command)
        if sub is not None:
            return sub
    return None


def _positionals(parser: argparse.ArgumentParser, command: str) -> set[str]:
    sub = _subparser(parser, command)
    return set() if sub is None else {a.dest for a in sub._actions if not a.option_strings}


def _flag_dests(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """Long flag name (underscored, no dashes) -> the setting it fills, e.g. labels -> labels_source."""
    sub = _subparser(parser, command)
    out: dict[str, str] = {}
    for action in sub._actions if sub is not None else ():
        for flag in action.option_strings:
            if flag.startswith("--"):
                out[flag[2:].replace("-", "_")] = action.dest
    return out


def apply_config_file(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]) -> None:
    """Values from --config fill every flag the command line did not give.

    A file's keys are the long flag names (``labels``, ``head-weight``) or the
    settings they fill (``labels_source``, ``head_weights``).
    """
    if not getattr(args, "config", None):
        return
    dests = _flag_dests(parser, args.command)
    given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in argv if a.startswith("--")}
    given = {dests.get(name, name) for name in given}
    # positionals typed on the command line win over the file too
    given |= {name for name in _positionals(parser, args.command) if getattr(args, name, None) is not None}
    known = vars(args)
    settings = read_config_file(args.config)
    if args.command == "train" and isinstance(settings.get("model"), dict):
        _check_run_config(args.config, settings)
        args.run_config = settings  # a run directory's config.yaml: repeat that run as it was
        return
    sub = _subparser(parser, args.command)
    actions = {a.dest: a for a in (sub._actions if sub is not None else ())}
    for name, value in settings.items():
        key = dests.get(name, name)
        if key not in known:
            raise ConfigError(f"{args.config}: unknown setting {key!r} for `{args.command}`")
        if key in actions:
            value = _convert_value(actions[key], value, f"{args.config}: {name}")
        if key not in given:
            setattr(args, key, value)


# -- parser ---------------------------------------------------------------------------------

def _add_prepare_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", help="schema name in datasets/ or a YAML file (e.g. grids, celeba, utkface, fer2013)")
    p.add_argument("--labels", dest="labels_source", help="labels file or folder (CSV, list_attr_celeba.txt, image folder)")
    p.add_argument("--photos", help="grid photos folder (grid schemas; default: the labels file's folder)")
    p.add_argument("--size", type=int, default=64, help="face size in pixels (square; default 64)")
    p.add_argument("--color", action="store_true", help="keep RGB colour (default: grayscale)")
    p.add_argument("--images", choices=["grid", "files", "detect", "embedded"], help="how faces are obtained (default: the schema's)")
    p.add_argument("--detector", default="haar", help="face detector for --images detect: haar (OpenCV, default) or mtcnn (pip install faces-keras[mtcnn])")
    p.add_argument("--detect-max-side", type=int, help="shrink photos to this longest side before detecting (speed)")
    p.add_argument("--margin", type=float, default=0.2, help="margin around a detected face, fraction of its box")
    p.add_argument("--augment", default="", help="offline augmentation of the training split, e.g. "
                   "identity,zoom,blur,zoom+blur (the original's four) or 'original'")
    p.add_argument("--val", type=float, default=0.16, help="validation fraction of source faces (default 0.16)")
    p.add_argument("--test", type=float, default=0.20, help="test fraction of source faces (default 0.20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use only the first N labelled faces")
    p.add_argument("--cols", type=int, help="grid layout: columns (instead of the file name)")
    p.add_argument("--rows", type=int, help="grid layout: rows")
    p.add_argument("--cell", type=int, help="grid layout: cell size in pixels")
    p.add_argument("--strict", action="store_true", help="fail on malformed entries a dataset is known to have")


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", help="default (a small ResNet), residual, sequential, original-per-label, original-all-label")
    p.add_argument("--label", action="append", dest="label_names", help="train on this label only (repeatable)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--filters", type=int,
                   help="filters of the stem, doubled per stage/block (default 16; sequential 24)")
    p.add_argument("--blocks", type=int, help="default/residual: stages (4); sequential: stem + conv blocks (3)")
    p.add_argument("--convs-per-block", type=int, help="sequential preset: 3x3 convolutions per block (2)")
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--no-augmentation", action="store_true", help="no online augmentation layers")
    p.add_argument("--class-weights", choices=["none", "balanced"], default="none")
    p.add_argument("--head-weight", action="append", dest="head_weights", metavar="HEAD=WEIGHT",
                   help="how much a head's loss counts (default 1), e.g. age=0.5 (repeatable)")
    p.add_argument("--patience", type=int, default=5, help="early stopping patience (epochs)")
    p.add_argument("--max-train", type=int, help="use at most N training faces")
    p.add_argument("--mixed-precision", action="store_true", help="float16/bfloat16 compute on a GPU")
    p.add_argument("--tensorboard", action="store_true")
    p.add_argument("--confusion-per-epoch", action="store_true",
                   help="log the validation confusion matrix of each multi-class label every epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", choices=["plateau", "cosine"], default="plateau",
                   help="learning rate: plateau (halve when validation stalls; default) or cosine "
                        "(warm-up, then cosine decay to 0 at the last epoch)")
    p.add_argument("--warmup-epochs", type=int, default=0, help="cosine schedule: epochs of linear warm-up")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="binary and multi-class losses (e.g. 0.1)")
    p.add_argument("--ema", dest="ema_momentum", type=float, nargs="?", const=0.99, default=None,
                   metavar="MOMENTUM", help="keep an exponential moving average of the weights (momentum "
                   "0.99 unless given) and validate, checkpoint and keep the average")
    p.add_argument("--init-from", metavar="RUN_OR_MODEL",
                   help="start the backbone from another run directory (its architecture too) or a local .keras "
                        "file; the heads are built fresh for this dataset")
    p.add_argument("--freeze-epochs", type=int, default=0,
                   help="with --init-from: train only the heads for this many epochs, then everything")
    p.add_argument("--finetune-lr-factor", type=float, default=0.1,
                   help="after the frozen epochs, the learning rate times this (default 0.1)")
    p.add_argument("--tta-flip", action="store_true",
                   help="predict each face and its mirror image and average (val, test, reports)")
    _add_objective_flags(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faces-keras", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"faces-keras {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("quickstart", help="the whole pipeline on generated (or given) grid photos")
    p.add_argument("--photos", help="grid photos folder (default: synthetic faces the package draws)")
    p.add_argument("--labels", help="labels CSV for --photos")
    p.add_argument("--schema", help="schema for --labels (default: grids when --photos is given)")
    p.add_argument("--out", default="runs/quickstart", help="run directory (default runs/quickstart)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--faces", type=int, default=1200, help="synthetic faces to draw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config")

    p = sub.add_parser("prepare", help="crop, label, split and augment faces into a dataset folder")
    p.add_argument("out", help="dataset folder to write")
    _add_prepare_flags(p)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--config", help="YAML/TOML file of settings")

    p = sub.add_parser("dataset", help="look at a prepared dataset")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    q = dsub.add_parser("show", help="label balance per split and sample faces (writes PNGs)")
    q.add_argument("path")
    q.add_argument("--out", help="folder for the figures (default: <dataset>/show)")
    q = dsub.add_parser("merge", help="merge prepared datasets; labels a part lacks are masked, not guessed")
    q.add_argument("out", help="merged dataset folder to write")
    q.add_argument("datasets", nargs="+", help="prepared dataset folders (same face size and channels)")
    q.add_argument("--names", help="comma-separated part names used to prefix ids (default: folder names)")
    q.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("train", help="train a model on a prepared dataset into a run directory")
    p.add_argument("dataset", nargs="?", help="prepared dataset folder")
    p.add_argument("--out", help="run directory (default runs/<dataset>-<preset>)")
    _add_train_flags(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--config")

    p = sub.add_parser("thresholds", help="tune per-label thresholds on validation; before/after table")
    p.add_argument("run")
    p.add_argument("--method", choices=["grid", "exact"], default="grid")
    p.add_argument("--mode", choices=["per-label", "shared"], default="per-label")
    p.add_argument("--start", type=float, default=0.05)
    p.add_argument("--stop", type=float, default=0.95)
    p.add_argument("--step", type=float, default=0.05)
    _add_objective_flags(p)
    p.add_argument("--repredict", action="store_true",
                   help="predict val and test again first (after model.keras was replaced)")

    p = sub.add_parser("report", help="green/red prediction report of a run (terminal, HTML, PNG, CSV)")
    p.add_argument("run")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--per-class", type=int, default=5, help="faces of each class of each label (0: all)")
    p.add_argument("--no-color", action="store_true")
    p.add_argument("--out", help="folder for report files (default: the run directory)")

    p = sub.add_parser("predict", help="detect faces in photos and predict their labels")
    p.add_argument("run")
    p.add_argument("photos", nargs="+")
    p.add_argument("--out", default="predictions")
    p.add_argument("--cropped", action="store_true", help="photos are already cropped faces")
    p.add_argument("--detector", default="haar", help="haar (default) or mtcnn")

    p = sub.add_parser("compare", help="per-label models against one all-label model on one split")
    p.add_argument("dataset")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--presets", default="default", help="comma-separated families: default, original, residual, sequential")
    p.add_argument("--label", action="append", dest="label_names", help="compare only this binary label (repeatable)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-train", type=int)
    p.add_argument("--patience", type=int, default=5,
                   help="early stopping patience (epochs) of every run; the original presets overfit after 3-5 epochs")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("tune", help="Hyperband search over a model family (resumes unless --overwrite)")
    add_tune_arguments(p)
    return parser


# -- commands --------------------------------------------------------------------------------

@command("prepare")
def cmd_prepare(args: argparse.Namespace) -> int:
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.data.split import SplitConfig
    from faces_keras.labels import load_schema

    if not args.schema or not args.labels_source:
        raise FacesKerasError("prepare needs --schema and --labels (see `faces-keras prepare --help`)")
    augment = args.augment
    if augment == "original":
        from faces_keras.data.augment import ORIGINAL_COMBINATIONS

        augment = ",".join(ORIGINAL_COMBINATIONS)
    config = PrepareConfig(
        size=args.size, gray=not args.color, images=args.images, detector=args.detector, margin=args.margin,
        detect_max_side=args.detect_max_side,
        augment=tuple(a for a in augment.split(",") if a), limit=args.limit,
        split=SplitConfig(val=args.val, test=args.test, seed=args.seed),
        cols=args.cols, rows=args.rows, cell=args.cell,
    )
    out = prepare_dataset(load_schema(args.schema), args.labels_source, args.out, photos=args.photos,
                          config=config, overwrite=args.overwrite, strict=args.strict)
    from faces_keras.data.store import Dataset

    dataset = Dataset.load(out)
    counts = dataset.faces["split"].value_counts().to_dict()
    dropped = dataset.manifest.get("dropped", [])
    print(f"prepared {len(dataset.faces)} faces ({dataset.manifest['sources']} sources) into {out}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items())
          + (f"; {len(dropped)} left out (see manifest.json)" if dropped else ""))
    return 0


@command("dataset")
def cmd_dataset(args: argparse.Namespace) -> int:
    if args.dataset_command == "merge":
        from faces_keras.data.combine import merge_command

        return merge_command(args)
    if args.dataset_command != "show":
        raise FacesKerasError("usage: faces-keras dataset show DATASET | dataset merge OUT DS1 DS2 ...")
    from faces_keras.data.present import show_dataset

    for path in show_dataset(args.path, args.out):
        print(path)
    return 0


def _pairs(items, flag: str, example: str, convert=str) -> dict:
    """``NAME=VALUE`` items of a repeatable flag (or a mapping from a config file) as a dict."""
    if isinstance(items, dict):  # from a config file
        items = [f"{k}={v}" for k, v in items.items()]
    pairs = {}
    for item in items or ():
        name, _, value = str(item).partition("=")
        try:
            if not name.strip() or not value.strip():
                raise ValueError
            pairs[name.strip()] = convert(value.strip())
        except ValueError:
            raise FacesKerasError(f"{flag} {item!r}: expected {example}") from None
    return pairs


def _head_weights(items) -> dict[str, float]:
    return _pairs(items, "--head-weight", "HEAD=WEIGHT, e.g. age=0.5", float)


def _label_objectives(items) -> dict[str, str]:
    return _pairs(items, "--label-objective", "LABEL=OBJECTIVE, e.g. sex=balanced_accuracy")


def _add_objective_flags(p: argparse.ArgumentParser) -> None:
    from faces_keras.thresholds.tune import OBJECTIVES

    p.add_argument("--objective", dest="threshold_objective", choices=OBJECTIVES, default="f1",
                   help="what each binary label's threshold maximises on validation (default f1: "
                        "F1 of the positive class)")
    p.add_argument("--label-objective", action="append", dest="threshold_label_objectives", metavar="LABEL=OBJECTIVE",
                   help="another objective for one label, e.g. sex=balanced_accuracy (repeatable)")


def _train_config(args: argparse.Namespace, dataset: str):
    from faces_keras.models.presets import ModelConfig
    from faces_keras.training.train import TrainConfig

    model = ModelConfig(preset=args.preset, filters=args.filters, blocks=args.blocks,
                        convs_per_block=args.convs_per_block, dropout=args.dropout,
                        learning_rate=args.learning_rate,
                        augmentation=None if args.no_augmentation else {})
    return TrainConfig(dataset=str(dataset), labels=tuple(args.label_names or ()), model=model,
                       epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                       patience=args.patience, class_weights=args.class_weights, max_train=args.max_train,
                       head_weights=_head_weights(args.head_weights),
                       mixed_precision=args.mixed_precision, tensorboard=args.tensorboard,
                       confusion_per_epoch=args.confusion_per_epoch,
                       schedule=args.schedule, warmup_epochs=args.warmup_epochs,
                       label_smoothing=args.label_smoothing, ema_momentum=args.ema_momentum,
                       tta_flip=args.tta_flip, init_from=args.init_from, freeze_epochs=args.freeze_epochs,
                       finetune_lr_factor=args.finetune_lr_factor, threshold_objective=args.threshold_objective,
                       threshold_label_objectives=_label_objectives(args.threshold_label_objectives))


@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    from faces_keras.training.train import resume, train

    if args.resume:
        run = resume(args.resume)
    elif getattr(args, "run_config", None):
        from faces_keras.training.train import TrainConfig

        config = TrainConfig.from_dict(args.run_config)
        if args.dataset:
            config = replace(config, dataset=str(args.dataset))
        if not args.out:
            raise FacesKerasError("repeating a run from its config.yaml needs --out (a new run directory)")
        run = train(config, args.out, overwrite=args.overwrite)
    else:
        if not args.dataset:
            raise FacesKerasError("train needs a prepared DATASET folder (or --resume RUN_DIR)")
        out = args.out or f"runs/{Path(args.dataset).name}-{args.preset}"
        run = train(_train_config(args, args.dataset), out, overwrite=args.overwrite)
    _print_run_summary(run)
    return 0


@command("thresholds")
def cmd_thresholds(args: argparse.Namespace) -> int:
    from faces_keras.training.evaluate import evaluate_run
    from faces_keras.rundir import RunDir

    run = RunDir(args.run)
    if args.repredict:
        from faces_keras.training.train import repredict

        repredict(run.path)
    evaluate_run(run, method=args.method, mode=args.mode, start=args.start, stop=args.stop, step=args.step,
                 objective=args.threshold_objective, label_objectives=_label_objectives(args.threshold_label_objectives))
    print((run / "metrics.md").read_text() if (run / "metrics.md").is_file() else "no binary labels: "
          "multi-class heads take the arg-max and need no threshold")
    print(f"thresholds: {run / 'thresholds.json'}")
    return 0


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from faces_keras.reports.report import report_command

    return report_command(args)


@command("predict")
def cmd_predict(args: argparse.Namespace) -> int:
    from faces_keras.inference.predict import predict_command

    return predict_command(args)


@command("compare")
def cmd_compare(args: argparse.Namespace) -> int:
    from faces_keras.training.compare import compare_command

    return compare_command(args)


@command("tune")
def cmd_tune(args: argparse.Namespace) -> int:
    from faces_keras.tuning.search import tune_command

    return tune_command(args)


@command("quickstart")
def cmd_quickstart(args: argparse.Namespace) -> int:
    from faces_keras.quickstart import quickstart

    run = quickstart(photos=args.photos, labels=args.labels, schema=args.schema, out=args.out,
                     epochs=args.epochs, faces=args.faces, seed=args.seed)
    _print_run_summary(run)
    return 0


def _print_run_summary(run) -> None:
    from faces_keras.io import read_json

    metrics = read_json(run / "metrics.json")
    for head, result in metrics["heads"].items():
        if result["kind"] == "binary":
            print(f"{'label':<12}{'threshold':>10}{'precision':>10}{'recall':>8}{'F1':>7}   (test)")
            for row in result["test"]:
                print(f"{row['label']:<12}{row['threshold']:>10.2f}{row['precision']:>10.3f}"
                      f"{row['recall']:>8.3f}{row['f1']:>7.3f}")
        elif result["kind"] == "multiclass":
            print(f"{head}: test accuracy {result['test']['accuracy']:.3f}, macro F1 {result['test']['macro_f1']:.3f}")
        else:
            print(f"{head}: test MAE {result['test']['mae']:.2f}")
    report = run / "report.html"
    print(f"run directory: {run.path}")
    if report.is_file():
        print(f"report: {report}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    logging.getLogger("faces_keras").setLevel(logging.INFO)
    if not args.command:
        parser.print_help()
        return 2
    try:
        apply_config_file(parser, args, argv)
        return COMMANDS[args.command](args) or 0
    except FacesKerasError as exc:
        print(f"faces-keras {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileExistsError) as exc:
        print(f"faces-keras {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"faces-keras {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.exit(main())
