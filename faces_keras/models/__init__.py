"""Model builders: presets (backbones) and schema-following heads with masked losses."""

from faces_keras.models.heads import Head, make_targets, plan_heads
from faces_keras.models.presets import PRESETS, ModelConfig, build_model, compile_model

__all__ = ["Head", "ModelConfig", "PRESETS", "build_model", "compile_model", "make_targets", "plan_heads"]
