"""Hyperband search over a model family: spaces (hypermodels) and their execution (search).

Import :mod:`faces_keras.tuning.search` or :mod:`faces_keras.tuning.hypermodels`
directly; this package imports neither, so ``faces_keras.tuning`` stays light.
"""
