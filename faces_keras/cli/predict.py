"""``faces-keras predict``.

INTERIM (the lead's stop-gap): the inference helper owns this file and replaces
it with the typed PredictConfig / predict_photos version (and ``export``).
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("predict", help="detect faces in photos and predict their labels")
    p.add_argument("run", help="run directory")
    p.add_argument("photos", nargs="+", help="photos (or cropped faces with --cropped)")
    p.add_argument("--out", default="predictions", help="output folder (default predictions/)")
    p.add_argument("--cropped", action="store_true", help="photos are already cropped faces")
    p.add_argument("--detector", default="haar", help="haar (default) or mtcnn")
    p.set_defaults(handler=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from faces_keras.inference.predict import predict_command

    return predict_command(args)
