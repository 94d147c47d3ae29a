"""Data layer: load and validate files, the immutable Dataset, built-in datasets, profile texts."""

from personas.data.builtin import BUILTIN, fetch, load_builtin
from personas.data.dataset import Dataset, Vocabulary
from personas.data.loaders import LoadReport, load_dataset, load_recbole, read_table
from personas.data.profiles import ProfileConfig, build_profiles
from personas.data.summary import DatasetSummary, summarize

__all__ = [
    "BUILTIN",
    "Dataset",
    "DatasetSummary",
    "LoadReport",
    "ProfileConfig",
    "Vocabulary",
    "build_profiles",
    "fetch",
    "load_builtin",
    "load_dataset",
    "load_recbole",
    "read_table",
    "summarize",
]
