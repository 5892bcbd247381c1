"""genmodels: classic image generative models behind one generator interface."""
from .checkpoint import CheckpointError, load, save
from .config import ConfigError
from .data import DatasetUnavailable, load_data
from .registry import FAMILIES, Family, family_names, get_family, register

__all__ = ["CheckpointError", "ConfigError", "DatasetUnavailable", "FAMILIES", "Family", "family_names",
           "get_family", "load", "load_data", "register", "save"]
