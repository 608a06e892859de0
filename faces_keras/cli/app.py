"""``faces-keras app``: the local web app (label faces, try a model, look at runs)."""

from __future__ import annotations

import argparse

from faces_keras.app.config import AppConfig
from faces_keras.cli.flags import add_settings, settings_from


def register(sub) -> None:
    p = sub.add_parser("app", help="local web app: label faces by key, try a run on photos, look at runs",
                       description="Serve the labelling page (a folder of grid photos, face crops or a prepared "
                                   "dataset, and its labels file, saved after every key), try-a-model (upload photos, boxes, "
                                   "labels, threshold sliders) and the run pages, with a JSON API beside "
                                   "them. Listens on localhost unless --host is given.")
    add_settings(p, AppConfig)
    p.set_defaults(handler=run_app)


def run_app(args: argparse.Namespace) -> int:
    from faces_keras.app.server import serve

    config = settings_from(AppConfig, args)
    print(f"faces-keras app on http://{config.host}:{config.port}  (Ctrl+C stops it)", flush=True)
    print(serve(config, host_given="host" in vars(args)).summary())
    return 0
