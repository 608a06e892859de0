"""Model builders: presets (backbones) and schema-following heads with masked losses.

The submodules that build models import Keras; :mod:`faces_keras.models.config`
(the architecture settings) does not, and importing this package imports neither.
"""
