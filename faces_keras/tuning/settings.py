"""What a search is: :class:`TuneConfig`, every setting declared once, and Hyperband's plan.

Imports neither Keras nor keras-tuner: the command line generates the ``tune``
flags from these declarations, and a summary can be read, without either.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from faces_keras.errors import ConfigError
from faces_keras.settings import setting, validate
from faces_keras.training.config import TrainConfig

# The search objectives and whether lower or higher is better.
OBJECTIVES = ("val_auc", "val_loss", "val_mean_f1")  # which way each improves: faces_keras.monitors
# The spaces faces_keras.tuning.hypermodels.SPACES defines (named here so nothing needs keras-tuner to list them).
SPACE_NAMES = ("default", "residual", "sequential", "original")
ROLES = ("single", "chief", "worker")
# Settings that define what a search is; resuming with different ones would mix two searches.
SEARCH_KEYS = ("dataset", "labels", "space", "objective", "max_epochs", "factor", "hyperband_iterations",
               "executions_per_trial", "seed", "max_train", "augmentation")
# keras-tuner's distributed mode reads a process's role from these (faces_keras.tuning.tuner.distributed_env).
ENV_TUNER_ID, ENV_ORACLE_IP, ENV_ORACLE_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
HEARTBEAT_SECONDS = 10.0  # a worker running a trial tells the chief it is alive this often (or faster, see below)
_WORKER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# -- settings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TuneConfig:
    """Every setting of a Hyperband search, declared once; the ``tune`` command's flags come from here.

    Each field is declared with :func:`faces_keras.settings.setting`; its
    ``help`` says what it means, its default and its range. A process's role
    follows from ``chief`` and ``worker``: neither is a single process that
    runs the whole search; ``chief`` serves the oracle over gRPC and runs no
    trials; ``worker`` runs trials for the chief at ``oracle_ip:oracle_port``.

    Raises:
        ConfigError: a value of the wrong kind or out of range (one line naming the
            setting and its flag), or settings that exclude each other.
    """

    dataset: str = setting("", cli=False, help="prepared dataset folder")
    labels: tuple[str, ...] = setting((), metavar="LABELS",
                                      help="comma-separated labels to tune for (default: all)")
    space: str = setting("default", choices=SPACE_NAMES,
                         help="default (the small ResNet), residual, sequential or original")
    objective: str = setting("val_loss", choices=OBJECTIVES,
                             help="what Hyperband optimises on the validation faces")
    max_epochs: int = setting(20, at_least=1, help="Hyperband's largest epoch budget for a trial")
    factor: int = setting(3, at_least=2, help="Hyperband's reduction factor")
    hyperband_iterations: int = setting(1, at_least=1, flag="--iterations", metavar="N", help="Hyperband iterations")
    executions_per_trial: int = setting(1, at_least=1, cli=False,
                                        help="models trained per trial (their objective is averaged)")
    batch_size: int = setting(TrainConfig.batch_size, at_least=1, help="faces per training step (training's default)")
    seed: int = setting(0, help="seed of the search, its trials and the retraining")
    directory: str = setting("searches", flag="--out", metavar="FOLDER", help="folder of search directories")
    project_name: str | None = setting(None, flag="--project", metavar="NAME",
                                       help="search directory name under --out (default: from dataset, labels, "
                                            "space)")
    overwrite: bool = setting(False, help="start the search afresh")
    patience: int = setting(3, at_least=1, help="early stopping patience inside a trial")
    max_train: int | None = setting(None, at_least=1, metavar="N", help="use at most N training faces")
    mixed_precision: bool = setting(False, help="float16/bfloat16 compute on a GPU")
    augmentation: bool = setting(True, flag="--no-augmentation", help="no online augmentation layers")
    chief: bool = setting(False, help="distributed: serve the oracle (runs no trials)")
    worker: str | None = setting(None, metavar="ID", help="distributed: run trials as worker ID (e.g. tuner0)")
    oracle_ip: str = setting("127.0.0.1", help="distributed: the chief's address")
    oracle_port: int | None = setting(None, at_least=1, at_most=65535, help="distributed: the chief's port")
    retrain_epochs: int | None = setting(None, at_least=0, metavar="N",
                                         help="epochs to retrain the best trial (default max-epochs; 0: skip)")
    keep_checkpoints: bool = setting(False, help="keep every trial's checkpoint")
    worker_timeout: float = setting(300.0, above=0, metavar="SECONDS",
                                    help="distributed: the chief gives up a worker silent for this long and hands "
                                         "its trial to another; workers report several times per timeout")
    verbose: int = setting(2, choices=(0, 1, 2), cli=False,
                           help="Keras fit verbosity; keras-tuner prints trial tables when above 0")

    def __post_init__(self):
        validate(self)
        if not self.dataset:
            raise ConfigError("dataset: a prepared dataset folder is needed")
        if not all(self.labels):
            raise ConfigError(f"labels={self.labels!r} (--labels): expected label names")
        if self.project_name is not None and (not self.project_name or "/" in self.project_name):
            raise ConfigError(f"project_name={self.project_name!r} (--project): expected a folder name")
        self._check_role()

    def _check_role(self) -> None:
        if self.worker is not None and (not _WORKER_ID.match(self.worker) or "chief" in self.worker):
            raise ConfigError(f"worker={self.worker!r} (--worker): expected a name like tuner0 "
                              "(letters, digits, _ . -; not containing 'chief')")
        if self.chief and self.worker is not None:
            raise ConfigError("chief (--chief) and worker (--worker) exclude each other")
        if self.role == "single":
            return
        if self.oracle_port is None:
            raise ConfigError("oracle_port (--oracle-port): a distributed search needs the chief's port (1-65535)")
        if not self.oracle_ip:
            raise ConfigError("oracle_ip (--oracle-ip): a distributed search needs the chief's address")
        if self.role == "worker" and self.overwrite:
            raise ConfigError("overwrite (--overwrite): only the chief (or a single process) may start a "
                              "search afresh")

    @property
    def role(self) -> str:
        """``single``, ``chief`` or ``worker``."""
        return "chief" if self.chief else "worker" if self.worker is not None else "single"

    @property
    def project(self) -> str:
        if self.project_name:
            return self.project_name
        parts = [Path(self.dataset).name or "dataset", *self.labels, self.space]
        if self.objective != "val_loss":
            parts.append(self.objective)
        return "-".join(parts)

    @property
    def project_dir(self) -> Path:
        return Path(self.directory) / self.project

    @property
    def direction(self) -> str:
        from faces_keras.monitors import direction

        return direction(self.objective)

    @property
    def heartbeat_seconds(self) -> float:
        """How often a worker running a trial reports to the chief: several times per worker timeout."""
        return max(0.5, min(HEARTBEAT_SECONDS, self.worker_timeout / 4))

    @property
    def tuner_id(self) -> str:
        """keras-tuner's name for this process: ``tuner0`` alone, ``chief``, or the worker's id."""
        return {"single": "tuner0", "chief": "chief"}.get(self.role) or str(self.worker)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["labels"] = list(self.labels)
        return out

    def search_settings(self) -> dict[str, Any]:
        """The settings that define the search, with the dataset as an absolute path.

        Returns:
            The settings of ``SEARCH_KEYS``, as recorded in the search directory
            (a later run with other values is another search).
        """
        out = {key: self.to_dict()[key] for key in SEARCH_KEYS}
        out["dataset"] = str(Path(self.dataset).resolve())
        return out


def role_from_environment(config: TuneConfig, environ: Mapping[str, str] | None = None) -> TuneConfig:
    """The role keras-tuner's own variables give, for a config that names none.

    Launch scripts written for keras-tuner set ``KERASTUNER_TUNER_ID``,
    ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` instead of passing
    ``--chief`` / ``--worker``; a tuner id containing ``chief`` is the chief.

    Args:
        config: the settings; returned unchanged when it is already a chief or a worker,
            or when ``KERASTUNER_ORACLE_IP`` is not set.
        environ: the variables (default ``os.environ``).

    Returns:
        The config with ``chief``/``worker``, ``oracle_ip`` and ``oracle_port`` from the variables.

    Raises:
        ConfigError: ``KERASTUNER_ORACLE_IP`` is set without
            ``KERASTUNER_TUNER_ID``, or the port is not a number.
    """
    environ = os.environ if environ is None else environ
    if config.role != "single" or not environ.get(ENV_ORACLE_IP):
        return config
    tuner_id = environ.get(ENV_TUNER_ID, "")
    if not tuner_id:
        raise ConfigError(f"{ENV_ORACLE_IP} is set but {ENV_TUNER_ID} is not: name this process "
                          "(chief, or a worker id such as tuner0), or pass --chief / --worker ID")
    port = environ.get(ENV_ORACLE_PORT)
    try:
        oracle_port = int(port) if port else None
    except ValueError:
        raise ConfigError(f"{ENV_ORACLE_PORT}={port!r}: expected a port number") from None
    chief = "chief" in tuner_id
    return replace(config, chief=chief, worker=None if chief else tuner_id, oracle_ip=environ[ENV_ORACLE_IP],
                   oracle_port=oracle_port)


# -- Hyperband's plan -----------------------------------------------------------------------

def hyperband_plan(max_epochs: int, factor: int = 3, iterations: int = 1) -> dict[str, int]:
    """Trials and epochs one search runs (keras-tuner's HyperbandOracle arithmetic).

    ``epochs`` counts epochs actually trained: a continued trial trains only
    from its parent's budget up to its own. Early stopping makes it an upper bound.

    Args:
        max_epochs: Hyperband's largest budget for one trial.
        factor: its reduction factor.
        iterations: Hyperband iterations.

    Returns:
        ``{"brackets": ..., "trials": ..., "epochs": ...}``.
    """
    brackets, budget = 0, float(max_epochs)
    while budget >= 1:
        budget /= factor
        brackets += 1
    final_size = math.ceil(1 + math.log(max_epochs, factor))
    trials = epochs = 0
    for bracket in range(brackets):
        for round_num in range(bracket + 1):
            size = math.ceil(final_size / (bracket + 1) * factor ** (bracket - round_num))
            top = math.ceil(max_epochs / factor ** (bracket - round_num))
            start = math.ceil(max_epochs / factor ** (bracket - round_num + 1)) if round_num else 0
            trials += size
            epochs += size * (top - start)
    return {"brackets": brackets, "trials": trials * iterations, "epochs": epochs * iterations}
