"""Label schemas and the loaders that read labels sources against them."""

from faces_keras.labels.schema import MISSING, Label, Schema, load_schema, schema_from_dict
from faces_keras.labels.sources import load_labels, parse_utkface_name

__all__ = ["MISSING", "Label", "Schema", "load_labels", "load_schema", "parse_utkface_name",
           "schema_from_dict"]
