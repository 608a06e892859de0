"""The web app (``faces-keras app``): label faces by hand, try a trained model on photos, look at runs.

Needs the ``app`` extra (``pip install faces-keras[app]``: FastAPI, uvicorn,
python-multipart). :class:`AppConfig` imports without them; the server and the
labelling store load on first use. See docs/app.md.
"""

from faces_keras.app.config import AppConfig

_LAZY = {"ServeResult": "server", "create_app": "server", "serve": "server", "predictions_csv": "server",
         "LabelStore": "store"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"faces_keras.app.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'faces_keras.app' has no attribute {name!r}")


__all__ = ["AppConfig", "LabelStore", "ServeResult", "create_app", "serve"]
