"""Every setting of a training run (no Keras here: the command line offers them without importing it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from faces_keras.errors import ConfigError
from faces_keras.models.config import ModelConfig
from faces_keras.settings import setting, validate
from faces_keras.thresholds.tune import ThresholdConfig

SCHEDULES = ("plateau", "cosine")
# the losses faces_keras.models.losses builds (kept here too: no Keras in this module)
LOSSES = ("crossentropy", "focal", "logit_adjusted")
# config.yaml of runs made before the threshold settings were one nested ThresholdConfig
LEGACY_THRESHOLD_KEYS = {"threshold_method": "method", "threshold_mode": "mode",
                          "threshold_objective": "objective", "threshold_label_objectives": "label_objectives"}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; recorded in the run's config.yaml.

    Each field's default, constraint and help are declared here once (with
    :func:`faces_keras.settings.setting`); the ``train`` command's flags are
    generated from them.

    Raises:
        ConfigError: a field is out of range, or settings contradict each
            other (warm-up or frozen epochs not fewer than ``epochs``, warm-up
            without the cosine schedule, frozen epochs without ``init_from``,
            a ``monitor`` that is not a validation quantity, a class-balanced
            ``loss`` with ``class_weights``).
    """

    dataset: str = setting("", cli=False, help="prepared dataset folder")
    labels: tuple[str, ...] = setting((), flag="--label", metavar="LABEL",
                                      help="train on this label only (repeatable; default: all the schema's labels)")
    model: ModelConfig = setting(default_factory=ModelConfig, cli=False, help="the architecture")
    epochs: int = setting(20, at_least=1, help="epochs (early stopping may end sooner)")
    batch_size: int = setting(64, at_least=1, help="faces per training step")
    seed: int = setting(0, help="seed of weights, shuffling and augmentation")
    monitor: str = setting("val_loss", help="the validation quantity early stopping and checkpoints follow")
    patience: int = setting(5, at_least=1, help="early stopping patience (epochs); the best weights are kept")
    reduce_lr_patience: int = setting(2, at_least=1, help="plateau schedule: halve the learning rate after "
                                                          "this many flat epochs")
    schedule: str = setting("plateau", choices=SCHEDULES,
                            help="learning rate: plateau (halve when validation stalls) or cosine "
                                 "(warm-up, then cosine decay to 0 at the last epoch)")
    warmup_epochs: int = setting(0, at_least=0, help="cosine schedule: epochs of linear warm-up")
    label_smoothing: float = setting(0.0, at_least=0, below=1, help="binary and multi-class losses (e.g. 0.1)")
    ema_momentum: float | None = setting(None, above=0, below=1, flag="--ema", const=0.99, metavar="MOMENTUM",
                                         help="keep an exponential moving average of the weights (momentum 0.99 "
                                              "unless given) and validate, checkpoint and keep the average")
    tta_flip: bool = setting(False, help="predict each face and its mirror image and average (val, test, reports)")
    init_from: str | None = setting(None, metavar="RUN_MODEL_OR_PRESET",
                                    help="start the backbone from another run directory (its architecture too), "
                                         "a local .keras file, or a local keras-hub preset directory "
                                         "(Backbone.save_to_preset; needs keras-hub); the heads are built "
                                         "fresh for this dataset")
    freeze_epochs: int = setting(0, at_least=0, help="with --init-from: train only the heads for this many "
                                                     "epochs, then everything")
    finetune_lr_factor: float = setting(0.1, above=0, at_most=1,
                                        help="after the frozen epochs, the learning rate times this")
    class_weights: str = setting("none", choices=("none", "balanced"),
                                 help="balanced: weigh rare classes up in the losses")
    loss: str = setting("crossentropy", choices=LOSSES,
                        help="binary and multi-class heads: crossentropy, focal (Keras's focal loss, "
                             "alpha balanced from the training split's class rates) or logit_adjusted "
                             "(Menon et al. 2021: logits shifted by tau*log(prior) in the loss)")
    logit_tau: float = setting(1.0, at_least=0, help="logit_adjusted loss: the tau of tau*log(prior)")
    head_weights: dict[str, float] = setting(default_factory=dict, at_least=0, flag="--head-weight",
                                             metavar="HEAD=WEIGHT",
                                             help="how much a head's loss counts (default 1), e.g. age=0.5 "
                                                  "(repeatable)")
    tensorboard: bool = setting(False, help="write TensorBoard logs into the run directory")
    confusion_per_epoch: bool = setting(False, help="log the validation confusion matrix of each multi-class "
                                                    "label every epoch")
    mixed_precision: bool = setting(False, help="float16/bfloat16 compute on a GPU")
    distribute: bool = setting(False, help="data-parallel: split each batch over every device the jax backend "
                                           "sees (KERAS_BACKEND=jax; --batch-size a multiple of the device "
                                           "count); docs/gpu.md")
    max_train: int | None = setting(None, at_least=1, help="use at most N training faces (quick runs)")
    thresholds: ThresholdConfig = setting(default_factory=ThresholdConfig, cli=False,
                                          help="how thresholds are tuned on validation after training")
    verbose: int = setting(2, choices=(0, 1, 2), cli=False, help="Keras's fit verbosity")

    def __post_init__(self):
        validate(self)
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs} (--warmup-epochs): expected fewer than "
                              f"epochs={self.epochs}")
        if self.warmup_epochs and self.schedule != "cosine":
            raise ConfigError("warmup_epochs (--warmup-epochs): only the cosine schedule warms up "
                              "(--schedule cosine)")
        if self.freeze_epochs >= self.epochs:
            raise ConfigError(f"freeze_epochs={self.freeze_epochs} (--freeze-epochs): expected fewer than "
                              f"epochs={self.epochs}")
        if self.freeze_epochs and not self.init_from:
            raise ConfigError("freeze_epochs (--freeze-epochs): only a backbone from --init-from can be frozen")
        if self.loss != "crossentropy" and self.class_weights != "none":
            raise ConfigError(f"loss={self.loss!r} (--loss) balances the classes itself: expected "
                              "class_weights='none' (drop --class-weights balanced)")
        if not self.monitor.startswith("val_"):
            raise ConfigError(f"monitor={self.monitor!r}: monitor a validation quantity (val_...)")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a YAML-friendly dict, nested model and threshold settings included.

        Returns:
            Field name to value, as config.yaml records it.
        """
        out = asdict(self)
        out["labels"] = list(self.labels)
        out["model"] = self.model.to_dict()
        out["thresholds"] = {**asdict(self.thresholds), "label_objectives": dict(self.thresholds.label_objectives)}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "TrainConfig":
        """A TrainConfig from a run's config.yaml (older runs' flat threshold keys accepted).

        Args:
            data: the mapping config.yaml holds; ``environment`` and
                ``backbone`` (records, not settings) are ignored.
            where: what to name in messages (the file it came from).

        Returns:
            The :class:`TrainConfig`.

        Raises:
            ConfigError: an unknown key (named with ``where``) or a bad value.
        """
        data = {k: v for k, v in data.items() if k not in ("environment", "backbone")}  # recorded, not settings
        thresholds = dict(data.pop("thresholds", None) or {})
        for old, new in LEGACY_THRESHOLD_KEYS.items():
            if old in data:
                thresholds[new] = data.pop(old)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"{where}: unknown training setting(s) {sorted(unknown)}")
        data["labels"] = tuple(data.get("labels") or ())
        data["model"] = ModelConfig.from_dict(data.get("model") or {})
        data["thresholds"] = ThresholdConfig(**thresholds)
        return cls(**data)
