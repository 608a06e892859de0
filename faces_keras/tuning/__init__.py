"""Hyperband search over a model family.

==================  ==========================================================================
``settings``        :class:`TuneConfig` (every setting, declared once) and ``hyperband_plan``
``hypermodels``     the search spaces and the keras-tuner HyperModels that build them
``oracle``          the oracles: atomic state files, the chief's watch over workers, the heartbeat
``tuner``           :class:`FacesHyperband`, the objective callback, keras-tuner's environment
``searchdir``       the search directory's files and the check of a resumed search
``summary``         every trial, best first: ``summary.csv`` and ``summary.md`` (Keras-free)
``retrain``         the best configuration retrained into ``best-run/``
``search``          :func:`tune`: run or resume a search, summarise it, retrain the best
==================  ==========================================================================

The names below are imported on first use (PEP 562), so ``from faces_keras.tuning
import TuneConfig`` or ``load_trials`` imports neither Keras nor keras-tuner.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TuneConfig": "settings", "hyperband_plan": "settings", "role_from_environment": "settings",
    "OBJECTIVES": "settings", "SPACE_NAMES": "settings",
    "TrialRow": "summary", "load_trials": "summary", "summary_frame": "summary", "write_summary": "summary",
    "prepare_search_dir": "searchdir",
    "retrain_best": "retrain",
    "SearchResult": "search", "tune": "search", "run_search": "search",
    "FacesHyperband": "tuner", "ObjectiveMetrics": "tuner", "mean_tuned_f1": "tuner",
    "AtomicHyperbandOracle": "oracle", "WatchedHyperbandOracle": "oracle", "Heartbeat": "oracle",
    "SPACES": "hypermodels", "describe_space": "hypermodels", "hypermodel_for": "hypermodels",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
