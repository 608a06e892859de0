"""``faces-keras predict`` and ``faces-keras export``."""

from __future__ import annotations

import argparse
import sys

from faces_keras.cli.flags import ConfigFile, add_settings, settings_from
from faces_keras.errors import FacesKerasError
from faces_keras.inference.export import ExportConfig
from faces_keras.inference.predict import PredictConfig


def register(sub) -> None:
    p = sub.add_parser("predict", help="detect faces in photos and predict their labels",
                       description="Detect the faces in photos (files, folders, globs) and predict their labels "
                                   "with a run, or with an exported .onnx/.tflite model (no TensorFlow). Rows "
                                   "stream into OUT/predictions.csv; a rerun with the same --out resumes.")
    p.add_argument("run", nargs="?", help="run directory (or give --model FILE.onnx)")
    p.add_argument("photos", nargs="*", metavar="PHOTOS",
                   help="photos, folders of photos or glob patterns (cropped faces with --cropped)")
    p.add_argument("--model", metavar="FILE",
                   help="an exported .onnx or .tflite model (with its .schema.yaml, .thresholds.json and "
                        ".export.json beside it) instead of a run directory")
    add_settings(p, PredictConfig)
    p.add_argument("--quiet", action="store_true", help="print only the totals, not a line per photo")
    p.add_argument("--config", help="YAML/TOML file of predict settings")
    p.set_defaults(handler=run_predict, parser=p)

    p = sub.add_parser("export", help="export a run's model to ONNX, TFLite or a SavedModel",
                       description="Export a run's model for deployment (Keras' model.export), with its schema, "
                                   "thresholds and face settings beside it, checked against Keras on real faces.")
    p.add_argument("run", help="run directory")
    add_settings(p, ExportConfig)
    p.add_argument("--config", help="YAML/TOML file of export settings")
    p.set_defaults(handler=run_export)


def run_predict(args: argparse.Namespace) -> int:
    from faces_keras.inference.predict import predict_photos

    photos = list(args.photos)
    if args.model:
        if args.run is not None:
            photos.insert(0, args.run)  # with --model, the first positional is a photo
        source = args.model
    else:
        source = args.run
    if not source:
        raise FacesKerasError("predict: give a run directory, or --model FILE.onnx")
    if not photos:
        raise FacesKerasError("predict: no photos given: expected photos, folders or glob patterns after the run")
    config_file = ConfigFile(args.config)
    config = settings_from(PredictConfig, args, config_file)
    config_file.check_all_used("predict")
    result = predict_photos(source, photos, config)
    for line in result.lines(per_photo=not args.quiet):
        print(line)
    return result.exit_code


def run_export(args: argparse.Namespace) -> int:
    from faces_keras.inference.export import export_model

    config_file = ConfigFile(args.config)
    config = settings_from(ExportConfig, args, config_file)
    config_file.check_all_used("export")
    result = export_model(args.run, config=config)
    for line in result.lines():
        print(line)
    sys.stdout.flush()
    return 0
