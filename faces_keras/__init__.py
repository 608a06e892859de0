"""faces-keras: a Keras modelling suite for recognising facial attributes.

The package reads as the pipeline: :mod:`faces_keras.labels` (schemas) and
:mod:`faces_keras.data` (prepare, augment, split, store) →
:mod:`faces_keras.models` → :mod:`faces_keras.training` and
:mod:`faces_keras.tuning` → :mod:`faces_keras.thresholds` →
:mod:`faces_keras.reports` and :mod:`faces_keras.inference`.
Nothing here imports TensorFlow; Keras runs on whichever backend
``KERAS_BACKEND`` names (tensorflow by default).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
