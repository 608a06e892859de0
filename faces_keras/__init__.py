"""faces-keras: a Keras modelling suite for recognising facial attributes.

The public API, importable from ``faces_keras``::

    import faces_keras as fk

    schema = fk.load_schema("grids")
    data = fk.prepare_dataset(schema, "photos/faces-labels.csv", "prepared/grids")
    run = fk.train(fk.TrainConfig(dataset=str(data), epochs=10), "runs/grids")
    fk.Run(run.path).metrics()

The package reads as the pipeline: :mod:`faces_keras.labels` (schemas) and
:mod:`faces_keras.data` (prepare, augment, split, store) →
:mod:`faces_keras.models` → :mod:`faces_keras.training` and
:mod:`faces_keras.tuning` → :mod:`faces_keras.thresholds` →
:mod:`faces_keras.reports` and :mod:`faces_keras.inference`. Names load on
first use, so ``import faces_keras`` imports neither Keras nor TensorFlow; Keras
runs on whichever backend ``KERAS_BACKEND`` names (tensorflow by default).
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if os.environ.get("FACES_KERAS_VERBOSE", "") in ("", "0"):
    from faces_keras.quiet import quiet_tensorflow_import

    quiet_tensorflow_import()  # TensorFlow's C++ start-up lines, which TF_CPP_MIN_LOG_LEVEL no longer stops

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    # labels and data
    "tune_allocator": "faces_keras.allocator",
    "current_allocator": "faces_keras.allocator",
    "Schema": "faces_keras.labels.schema",
    "load_schema": "faces_keras.labels.schema",
    "Dataset": "faces_keras.data.store",
    "PrepareConfig": "faces_keras.data.prepare",
    "SplitConfig": "faces_keras.data.split",
    "prepare_dataset": "faces_keras.data.prepare",
    "combine_datasets": "faces_keras.data.combine",
    "show_dataset": "faces_keras.data.present",
    "load_labels": "faces_keras.labels.sources",
    "Head": "faces_keras.labels.heads",
    "plan_heads": "faces_keras.labels.heads",
    # data: faces from photos
    "read_image": "faces_keras.data.images",
    "read_image_bgr": "faces_keras.data.detect",
    "list_grid_photos": "faces_keras.data.grids",
    "layout_from_name": "faces_keras.data.grids",
    "cut_grids": "faces_keras.data.grids",
    "make_detector": "faces_keras.data.detect",
    "detect_and_crop": "faces_keras.data.detect",
    "draw_boxes": "faces_keras.data.detect",
    # data: augmentation
    "ORIGINAL_COMBINATIONS": "faces_keras.data.augment",
    "AugmentationConfig": "faces_keras.data.augment",
    "online_augmentation": "faces_keras.data.augment",
    "operation_examples": "faces_keras.data.present",
    # data: looking at a dataset (figures are matplotlib Figures, shown with display())
    "dataset_summary": "faces_keras.data.present",
    "balance_table": "faces_keras.data.present",
    "balance_markdown": "faces_keras.data.present",
    "plot_balance": "faces_keras.data.present",
    "plot_samples": "faces_keras.data.present",
    "plot_augmentations": "faces_keras.data.present",
    "face_caption": "faces_keras.data.present",
    "new_figure": "faces_keras.data.present",
    "show_face": "faces_keras.data.present",
    "save_figure": "faces_keras.data.present",
    # models and training
    "ModelConfig": "faces_keras.models.config",
    "TrainConfig": "faces_keras.training.config",
    "train": "faces_keras.training.train",
    "resume": "faces_keras.training.train",
    "build_model": "faces_keras.models.presets",
    "compare": "faces_keras.training.compare",
    "plan_runs": "faces_keras.training.compare",
    "plot_comparison": "faces_keras.training.compare",
    "ensemble_runs": "faces_keras.training.ensemble",
    # thresholds
    "ThresholdConfig": "faces_keras.thresholds.tune",
    "tune_thresholds": "faces_keras.thresholds.tune",
    "ThresholdResult": "faces_keras.thresholds.tune",
    "apply_thresholds": "faces_keras.thresholds.tune",
    "plot_threshold_curves": "faces_keras.thresholds.tune",
    "before_after_table": "faces_keras.reports.metrics",
    # runs
    "Run": "faces_keras.run",
    "RunDir": "faces_keras.rundir",
    "QuickstartConfig": "faces_keras.demo",
    "quickstart": "faces_keras.demo",
    # errors
    "FacesKerasError": "faces_keras.errors",
    "ConfigError": "faces_keras.errors",
}
_OPTIONAL = {  # names whose modules are newer; listed when present
    "TuneConfig": "faces_keras.tuning",
    "tune": "faces_keras.tuning",
    "describe_space": "faces_keras.tuning",
    "hyperband_plan": "faces_keras.tuning",
    "summary_frame": "faces_keras.tuning",
    "ReportConfig": "faces_keras.reports",
    "write_report": "faces_keras.reports",
    "PredictConfig": "faces_keras.inference.predict",
    "predict_photos": "faces_keras.inference.predict",
    "Predictor": "faces_keras.inference.predict",
    "export_model": "faces_keras.inference.export",
    "EvaluateConfig": "faces_keras.inference.evaluate",
    "evaluate_run_on": "faces_keras.inference.evaluate",
    "EmbedConfig": "faces_keras.inference.embed",
    "embed_run": "faces_keras.inference.embed",
    "ExportConfig": "faces_keras.inference.export",
    "write_set_report": "faces_keras.reports",
}


def _present(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


_PUBLIC.update({name: module for name, module in _OPTIONAL.items() if _present(module)})
__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'faces_keras' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__
