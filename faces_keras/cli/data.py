"""``faces-keras prepare`` and ``faces-keras dataset show|merge``."""

from __future__ import annotations

import argparse

from faces_keras.cli.flags import ConfigFile, add_settings, option, settings_from
from faces_keras.data.prepare import PrepareConfig
from faces_keras.errors import FacesKerasError


def register(sub) -> None:
    p = sub.add_parser("prepare", help="crop, label, split and augment faces into a dataset folder",
                       description="Cut or detect faces, read their labels, split by source face, augment "
                                   "the training split, and write a prepared dataset folder.")
    p.add_argument("out", nargs="?", help="dataset folder to write (or `out:` in --config)")
    p.add_argument("--schema", help="schema name in datasets/ or a YAML file (e.g. grids, celeba, utkface, fer2013)")
    p.add_argument("--labels", dest="labels_source",
                   help="labels file or folder (CSV, list_attr_celeba.txt, image folder)")
    p.add_argument("--photos", help="grid photos folder (grid schemas; default: the labels file's folder)")
    add_settings(p, PrepareConfig)
    p.add_argument("--strict", action="store_true", default=None,
                   help="fail on malformed entries a dataset is known to have")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing dataset folder")
    p.add_argument("--config", help="YAML/TOML file of settings")
    p.set_defaults(handler=run_prepare)

    p = sub.add_parser("dataset", help="look at or merge prepared datasets")
    actions = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    p.set_defaults(parser=p)
    q = actions.add_parser("show", help="label balance per split and sample faces (writes PNGs)")
    q.add_argument("path", help="prepared dataset folder")
    q.add_argument("--out", help="folder for the figures (default: <dataset>/show)")
    q.set_defaults(handler=run_show)
    q = actions.add_parser("merge", help="merge prepared datasets; labels a part lacks are masked, not guessed")
    q.add_argument("out", help="merged dataset folder to write")
    q.add_argument("datasets", nargs="+", help="prepared dataset folders (same face size and channels)")
    q.add_argument("--names", help="comma-separated part names used to prefix ids (default: folder names)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing merged folder")
    q.set_defaults(handler=run_merge)


def run_prepare(args: argparse.Namespace) -> int:
    from faces_keras.data.prepare import prepare_dataset
    from faces_keras.data.store import Dataset
    from faces_keras.labels import load_schema

    config_file = ConfigFile(args.config)
    out = option(args, config_file, "out")
    schema = option(args, config_file, "schema")
    labels = option(args, config_file, "labels_source", aliases=("labels",))
    photos = option(args, config_file, "photos")
    strict = bool(option(args, config_file, "strict", False))
    overwrite = bool(option(args, config_file, "overwrite", False))
    config = settings_from(PrepareConfig, args, config_file)
    config_file.check_all_used("prepare")
    if not out or not schema or not labels:
        raise FacesKerasError("prepare needs OUT, --schema and --labels (see `faces-keras prepare --help`)")
    path = prepare_dataset(load_schema(schema), labels, out, photos=photos, config=config,
                           overwrite=overwrite, strict=strict)
    dataset = Dataset.load(path)
    counts = dataset.faces["split"].value_counts().to_dict()
    dropped = dataset.manifest.get("dropped", [])
    detection = dataset.manifest.get("detection")
    if detection:
        print(f"faces found: exactly one in {detection['one_face']} of {detection['images']} images, "
              f"none in {detection['no_face']}, several in {detection['several']} "
              "(detections.csv; annotated examples in boxes/)")
    print(f"prepared {len(dataset.faces)} faces ({dataset.manifest['sources']} sources) into {path}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items())
          + (f"; {len(dropped)} left out (see manifest.json)" if dropped else ""))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from faces_keras.data.present import show_dataset

    paths = show_dataset(args.path, args.out)
    summary = next((p for p in paths if p.name == "summary.txt"), None)
    if summary is not None:
        print(summary.read_text().rstrip())
    for path in paths:
        print(path)
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from faces_keras.data.combine import combine_datasets
    from faces_keras.data.store import Dataset

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    out = combine_datasets(args.datasets, args.out, names=names, overwrite=args.overwrite)
    merged = Dataset.load(out)
    parts = ", ".join(f"{part['name']} {part['count']}" for part in merged.manifest["parts"])
    print(f"merged {len(merged.faces)} faces into {out} ({parts})")
    for label in merged.schema.labels:
        values = merged.faces[label.name]
        labelled = int(values.notna().sum()) if label.kind == "regression" else int((values >= 0).sum())
        print(f"  {label.name:<12} {label.kind:<11} labelled on {labelled} of {len(values)} faces")
    return 0
