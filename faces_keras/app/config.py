"""The web app's settings (the ``app`` command's flags), and what serving beyond localhost exposes.

Kept apart from the server so that the command line can build its flags
without importing the web stack.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from faces_keras.settings import setting, validate

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class AppConfig:
    """Settings of the web app (the ``app`` command's flags).

    Args:
        host: the address to listen on; anything but localhost needs ``--host`` given explicitly.
        port: the TCP port.
        faces: a folder of grid photos, face crops, or a prepared dataset to label.
        labels: the labels file the labelling page reads and writes (default ``<faces>/labels.csv``;
            for a prepared dataset ``<dataset>-labels.csv`` beside it).
        schema: the schema (name or YAML file) of the labels; default ``grids``, or a prepared
            dataset's own.
        runs: folders of run directories (or runs) to try and look at.
        max_upload_mb: the largest photo upload accepted.
        detector: the face detector for try-a-model.
    """

    host: str = setting("127.0.0.1", help="address to listen on (default localhost only); another address "
                                          "serves the labels and runs to anyone who can reach it")
    port: int = setting(8000, at_least=1, at_most=65535, help="TCP port")
    faces: str | None = setting(None, metavar="DIR", help="folder of grid photos (as prepare cuts them), "
                                                          "face crops, or a prepared dataset to label")
    labels: str | None = setting(None, metavar="FILE", help="labels file to read and write (default "
                                                            "<faces>/labels.csv; <dataset>-labels.csv beside "
                                                            "a prepared dataset)")
    schema: str | None = setting(None, help="schema of the labels (a name in datasets/ or a YAML file; "
                                            "default grids, or a prepared dataset's own)")
    runs: tuple[str, ...] = setting((), flag="--runs", metavar="DIR",
                                    help="folder of run directories (or one run) to try and look at; repeatable")
    max_upload_mb: float = setting(10.0, above=0, help="largest photo upload accepted, in MB")
    detector: str = setting("haar", choices=("haar", "mtcnn"), help="face detector for try-a-model")

    def __post_init__(self):
        validate(self)

    @property
    def labels_path(self) -> Path | None:
        if self.labels:
            return Path(self.labels)
        if not self.faces:
            return None
        from faces_keras.app.prepared import default_labels_path, is_prepared_dataset

        if is_prepared_dataset(self.faces):  # never inside the dataset
            return default_labels_path(self.faces)
        return Path(self.faces) / "labels.csv"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only.

    Args:
        host: a host name or IP address.

    Returns:
        True for localhost and loopback addresses.
    """
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure(config: AppConfig) -> str:
    """What binding beyond localhost makes reachable, in one line, for the log.

    Args:
        config: the app's settings.

    Returns:
        The line: the address, the labels file and faces, the runs.
    """
    parts = []
    if config.faces:
        parts.append(f"the faces in {config.faces} and read/write access to {config.labels_path}")
    if config.runs:
        parts.append(f"the runs in {', '.join(config.runs)} (their reports, predictions on uploaded photos, "
                     "and changing their thresholds.json)")
    return (f"http://{config.host}:{config.port} serves, without a login, to anyone who can reach it: "
            + ("; ".join(parts) or "the pages only"))


__all__ = ["AppConfig", "LOOPBACK", "exposure", "is_loopback"]
