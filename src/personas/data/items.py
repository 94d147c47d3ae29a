"""Item texts and genre tokens, built in one place for every layer (content model, FeatureCF, behaviour
encoder, profile texts, metrics, peers).

Different consumers want different texts from the same items table, so :func:`item_texts` has one style per
use rather than one text for all; each style is exactly what its consumer built before this module existed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from personas.data._template import fill_template
from personas.data.dataset import Dataset
from personas.errors import ConfigError

__all__ = [
    "ITEM_TEXT_FIELDS",
    "ItemTextStyle",
    "genre_tokens",
    "item_documents",
    "item_texts",
    "kg_facts",
    "split_genres",
]

ItemTextStyle = Literal["fields", "label", "template"]
ITEM_TEXT_FIELDS: tuple[str, ...] = ("title", "genres", "text")
_UNSAFE = re.compile(r"\W+")


def split_genres(value: object) -> list[str]:
    """``"Action|Sci-Fi"``, ``"Action, Sci-Fi"`` or ``"Action Sci-Fi"`` -> ``["Action", "Sci-Fi"]``: pipes,
    commas and whitespace all separate genres. A value that is not a string (missing) has none."""
    if not isinstance(value, str):
        return []
    return value.replace("|", " ").replace(",", " ").split()


def genre_tokens(dataset: Dataset, *, strings_only: bool = True) -> list[list[str]]:
    """Per item row, its genres (:func:`split_genres` of the ``genres`` column, case and order kept); no
    ``genres`` column gives an empty list for every item.

    ``strings_only=False`` also splits ``str(value)`` of present non-string values (a numeric genre code
    ``3`` becomes ``"3"``), as FeatureCF always has; metrics and peers skip them."""
    items = dataset.items
    if "genres" not in items:
        return [[] for _ in range(dataset.n_items)]
    values = items["genres"].tolist()
    if not strings_only:
        values = [v if isinstance(v, str) or not _present(v) else str(v) for v in values]
    return [split_genres(v) for v in values]


def _present(value: object) -> bool:
    missing = pd.api.types.is_scalar(value) and bool(pd.isna(value))
    return not missing


def item_texts(
    dataset: Dataset,
    style: ItemTextStyle = "fields",
    *,
    fields: Sequence[str] = ITEM_TEXT_FIELDS,
    facts: Mapping[str, Sequence[str]] | None = None,
    template: str | None = None,
    value_maps: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """One text per item row, in one of three styles:

    - ``"fields"`` (words for TF-IDF): the string values of ``fields`` joined by spaces (genres as written,
      e.g. ``"Toy Story (1995) Animation|Children's|Comedy"``), then the item's ``facts`` tokens (see
      :func:`kg_facts`). The content model uses title, genres, text (+ facts); FeatureCF title and text.
    - ``"label"`` (a short text to embed): the item's ``text`` where any item has one (else its title, else
      its id), then `` [genres]`` where it has genres: ``"Toy Story (1995) [Animation|Children's|Comedy]"``.
      Values are written with ``str``; missing ones are empty. The behaviour encoder's item texts.
    - ``"template"``: ``template`` (e.g. ``"{title} ({release_year}) [{genres}]"``) filled with the item's
      columns, values mapped through ``value_maps``; absent fields leave no empty brackets. Profile texts.
    """
    items = dataset.items
    if style == "fields":
        facts = facts or {}
        columns = items.reindex(columns=list(fields))
        texts = []
        for item_id, values in zip(items["item_id"], columns.itertuples(index=False), strict=True):
            parts = [v for v in values if isinstance(v, str)]
            parts.extend(facts.get(str(item_id), []))
            texts.append(" ".join(parts))
        return texts
    if style == "label":
        if "text" in items and items["text"].notna().any():
            base = items["text"].fillna("").astype(str)
        else:
            base = items["title"].fillna("").astype(str) if "title" in items else items["item_id"].astype(str)
        if "genres" in items:
            genres = items["genres"].fillna("").astype(str)
            base = base.where(genres == "", base + " [" + genres + "]")
        return [str(t) for t in base.tolist()]
    if style == "template":
        if template is None:
            raise ConfigError("item_texts(style='template') needs a template, e.g. '{title} [{genres}]'.")
        maps = value_maps or {}
        return [fill_template(template, record, maps) for record in items.to_dict("records")]
    raise ConfigError(f"item_texts: style must be one of 'fields', 'label', 'template'. Got {style!r} instead.")


def item_documents(dataset: Dataset, *, max_tags: int = 8, max_reviews: int = 0, review_chars: int = 400) -> list[str]:
    """One sentence-like text per item row for a language model: what a user might write about it.

    ``"Toy Story (1995). Animation, Children's, Comedy. <the item's text> Tags: pixar, toys."``: title and year
    where known, genres separated by commas, the item's own text, and up to ``max_tags`` of its most frequent
    tags (users' words for it). With ``max_reviews``, the item's first reviews (in the order of the
    interactions, each cut to ``review_chars`` characters) follow: on review data where products have only an
    id, they are all there is to say what an item is. Off by default: an evaluation must build item texts
    from its training interactions only. Missing parts leave nothing behind; an item with nothing gets its id.
    """
    items = dataset.items
    tags: dict[int, list[str]] = {}
    table = dataset.tags
    if table is not None and len(table) and max_tags > 0:
        words = table["tag"].astype(str).str.strip().str.lower()
        counted = pd.DataFrame({"item": table["item"], "tag": words}).groupby(["item", "tag"]).size()
        for (item, tag), _ in counted.sort_values(ascending=False, kind="stable").items():
            have = tags.setdefault(int(item), [])
            if len(have) < max_tags:
                have.append(str(tag))
    reviews: dict[int, list[str]] = {}
    if max_reviews > 0:
        for item, review in zip(dataset.item_rows.tolist(), dataset.reviews.tolist(), strict=True):
            have = reviews.setdefault(int(item), [])
            if review and str(review).strip() and len(have) < max_reviews:
                have.append(str(review).strip()[:review_chars])
    genres = genre_tokens(dataset)
    documents = []
    for row, record in enumerate(items.to_dict("records")):
        title = record.get("title")
        year = record.get("release_year")
        head = str(title) if _present(title) and str(title) else ""
        if _present(year) and str(year):
            head = f"{head} ({year})" if head else str(year)
        parts = [head] if head else []
        if genres[row]:
            parts.append(", ".join(genres[row]))
        text = record.get("text")
        if _present(text) and str(text).strip():
            parts.append(str(text).strip())
        document = ". ".join(parts) + ("." if parts else "")
        if row in tags:
            document = f"{document} Tags: {', '.join(tags[row])}.".strip()
        if reviews.get(row):
            document = " ".join([document, *reviews[row]]).strip()
        documents.append(document or str(record["item_id"]))
    return documents


def kg_facts(dataset: Dataset) -> dict[str, list[str]]:
    """Item id -> knowledge-graph fact tokens (``actor_m_0bln8``, ``directed_by_m_04g4n``...) from RecBole
    ``.kg``/``.link`` files beside the dataset; empty when there are none."""
    if not dataset.source:
        return {}
    folder = Path(dataset.source)
    kg_files, link_files = sorted(folder.glob("*.kg")), sorted(folder.glob("*.link"))
    if not folder.is_dir() or not kg_files or not link_files:
        return {}
    link = pd.read_csv(link_files[0], sep="\t", dtype=str)
    link.columns = [c.split(":")[0] for c in link.columns]
    kg = pd.read_csv(kg_files[0], sep="\t", dtype=str)
    kg.columns = [c.split(":")[0] for c in kg.columns]
    # Facts about the film itself (film.film.actor, film.film.directed_by ...): relation name + tail entity.
    kg = kg[kg["relation_id"].str.startswith("film.film.")]
    merged = link.merge(kg, left_on="entity_id", right_on="head_id")
    relation = merged["relation_id"].str.removeprefix("film.film.")
    tokens = (relation + "_" + merged["tail_id"]).map(lambda t: _UNSAFE.sub("_", t))
    facts: dict[str, list[str]] = {}
    for item, token in zip(merged["item_id"], tokens, strict=True):
        facts.setdefault(str(item), []).append(token)
    return facts
