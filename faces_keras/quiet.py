"""TensorFlow's start-up lines kept off stderr (``oneDNN custom operations are on``, absl's notice).

TensorFlow 2.19+ writes them from C++ while its libraries load, and
TF_CPP_MIN_LOG_LEVEL no longer stops them (tensorflow/tensorflow#100442).
``import faces_keras`` installs :class:`QuietTensorFlowImport` unless
``FACES_KERAS_VERBOSE=1``; ``faces-keras -v`` removes it. Only that one import is
silenced: Python exceptions it raises still surface. Nothing here imports
TensorFlow itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys

__all__ = ["QuietTensorFlowImport", "quiet_tensorflow_import", "stop_quieting_tensorflow"]


class _Imported(importlib.abc.Loader):
    """Hands the import system a module that is already loaded."""

    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        pass


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Import TensorFlow, when something first needs it, with file descriptor 2 closed."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        stop_quieting_tensorflow()
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                module = importlib.import_module("tensorflow")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        return importlib.util.spec_from_loader(name, _Imported(module), origin=getattr(module, "__file__", None))


def quiet_tensorflow_import() -> None:
    """Silence TensorFlow's C++ start-up lines for the coming ``import tensorflow``.

    Returns:
        None. Does nothing when TensorFlow is already imported.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not any(isinstance(finder, QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlowImport())


def stop_quieting_tensorflow() -> None:
    """Let TensorFlow's start-up lines through again (``faces-keras -v``).

    Returns:
        None.
    """
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, QuietTensorFlowImport)]
