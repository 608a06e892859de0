"""Errors the suite raises for bad input; the CLI prints them without a traceback."""


class FacesKerasError(Exception):
    """Base class: a problem with the user's input, named precisely."""


class SchemaError(FacesKerasError):
    """A schema file is malformed, or data does not match its schema."""


class LabelsError(FacesKerasError):
    """A labels source (CSV, attribute list, file name) does not parse."""


class ImageError(FacesKerasError):
    """An image is missing, unreadable or of the wrong size."""


class DatasetError(FacesKerasError):
    """A prepared dataset is missing, incomplete or not what was expected."""


class RunError(FacesKerasError):
    """A run directory is missing, incomplete or inconsistent."""


class OutputExistsError(FacesKerasError, FileExistsError):
    """An output folder or file exists and overwriting it was not asked for."""


class UnknownLabelError(FacesKerasError, KeyError):
    """A label name the schema does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(FacesKerasError, ValueError):
    """A setting (a flag, a config file's key, a configuration field) has a value of the wrong kind."""
