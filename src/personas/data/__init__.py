"""Data layer: load and validate files, the immutable Dataset, built-in datasets, item texts and genres, profile
texts."""

from personas.data.builtin import BUILTIN, fetch, load_builtin
from personas.data.dataset import Dataset, Vocabulary
from personas.data.items import (
    ITEM_TEXT_FIELDS,
    ItemTextStyle,
    genre_tokens,
    item_documents,
    item_texts,
    kg_facts,
    split_genres,
)
from personas.data.loaders import LoadReport, load_dataset, load_recbole, read_table
from personas.data.profiles import ProfileConfig, build_profiles
from personas.data.query import split_negation
from personas.data.summary import DatasetSummary, summarize

__all__ = [
    "BUILTIN",
    "ITEM_TEXT_FIELDS",
    "Dataset",
    "DatasetSummary",
    "ItemTextStyle",
    "LoadReport",
    "ProfileConfig",
    "Vocabulary",
    "build_profiles",
    "fetch",
    "genre_tokens",
    "item_documents",
    "item_texts",
    "kg_facts",
    "load_builtin",
    "load_dataset",
    "load_recbole",
    "read_table",
    "split_genres",
    "split_negation",
    "summarize",
]
