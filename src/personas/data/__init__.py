"""Data layer: load and validate files, the immutable Dataset, built-in datasets, item texts and genres, text
cleaning, language detection and Chinese word segmentation, profile texts."""

from personas.data.builtin import BUILTIN, fetch, load_builtin
from personas.data.cleaning import CleanConfig, CleanReport, clean_dataset, clean_text, clean_texts
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
from personas.data.language import LanguageReport, detect_language, has_han, segment
from personas.data.loaders import LoadReport, load_dataset, load_recbole, read_table
from personas.data.profiles import ProfileConfig, build_profiles
from personas.data.query import split_negation
from personas.data.summary import DatasetSummary, summarize

__all__ = [
    "BUILTIN",
    "ITEM_TEXT_FIELDS",
    "CleanConfig",
    "CleanReport",
    "Dataset",
    "DatasetSummary",
    "ItemTextStyle",
    "LanguageReport",
    "LoadReport",
    "ProfileConfig",
    "Vocabulary",
    "build_profiles",
    "clean_dataset",
    "clean_text",
    "clean_texts",
    "detect_language",
    "fetch",
    "genre_tokens",
    "has_han",
    "item_documents",
    "item_texts",
    "kg_facts",
    "load_builtin",
    "load_dataset",
    "load_recbole",
    "read_table",
    "segment",
    "split_genres",
    "split_negation",
    "summarize",
]
