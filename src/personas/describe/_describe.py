"""Put a persona card together for every group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from pydantic import Field

from personas.config import ComponentConfig
from personas.data import Dataset, ProfileConfig, build_profiles
from personas.describe.facts import FactsConfig, attribute_skew, distinctive_items, representatives
from personas.describe.guided import guided_names
from personas.describe.keywords import (
    KeywordConfig,
    class_keywords,
    descriptive_keywords,
    distinct_names,
    own_texts,
)
from personas.describe.namers import NameConfig, apply_namer, composed_names
from personas.describe.persona import AttributeSkew, DistinctiveItem, Keyword, Persona, Representative
from personas.discover._base import centroids_of
from personas.encode import Encoder
from personas.errors import DataError

__all__ = ["DescribeConfig", "Namer", "assemble_personas", "describe_groups"]


class DescribeConfig(ComponentConfig):
    keywords: KeywordConfig = Field(default_factory=KeywordConfig)
    facts: FactsConfig = Field(default_factory=FactsConfig)
    names: NameConfig = Field(default_factory=NameConfig)


class Namer(Protocol):
    """Gives a persona a readable name; returns None to keep the composed name."""

    def name(self, persona: Persona) -> str | None: ...


def own_words(dataset: Dataset) -> list[str]:
    """Each user's own text and reviews (empty where they wrote nothing): what a persona card may quote."""
    if not own_texts(dataset) and np.count_nonzero(dataset.reviews) == 0:
        return [""] * dataset.n_users  # nobody wrote anything (ratings only): no texts to build
    return build_profiles(dataset, ProfileConfig(parts=("text", "reviews")))


def _check_length(what: str, values: Sequence[object] | np.ndarray, n: int) -> None:
    if len(values) != n:
        raise DataError(f"describe_groups: {what} has {len(values)} rows but there are {n} labels; align them.")


def describe_groups(
    labels: np.ndarray,
    *,
    texts: Sequence[str | None] | None = None,
    vectors: np.ndarray | None = None,
    dataset: Dataset | None = None,
    user_ids: Sequence[str] | None = None,
    config: DescribeConfig | None = None,
    namer: Namer | None = None,
    quotes: Sequence[str | None] | None = None,
    encoder: Encoder | None = None,
    text_vectors: np.ndarray | None = None,
) -> list[Persona]:
    """One :class:`Persona` per group ``0..max(labels)`` (noise, ``-1``, gets none).

    Every input is optional and adds its part of the card. Keywords come from the words that describe the
    users (:func:`~personas.describe.descriptive_texts` of ``dataset``: their own text, reviews, tags, and
    the genres, descriptions and tags of what they liked, never item titles), or from ``texts`` (one per
    user) when no dataset is given or the dataset has no such words; ``vectors`` give representative
    users, quoted from ``quotes`` (one per user: their own words), by default the users' own texts and
    reviews in ``dataset`` when one is given (never generated profile parts such as "liked: ..."; users who
    wrote nothing get no quote), else ``texts``; ``dataset`` (whose user rows the labels follow) gives
    distinctive items and attribute skew, and user ids. The name is composed from the card's facts (its
    over-represented keywords and attributes: ``name_facts``, see :func:`~personas.describe.composed_names`),
    distinct across cards; a card without such facts keeps its keyword name. Given the run's text ``encoder``
    and the users' ``text_vectors`` it made (and ``config.names.guided``), the facts are the card's facts whose
    name points most at the members in that space (:func:`~personas.describe.guided_names`: keywords,
    distinctive titles, attributes). A ``namer`` may add a generated
    name, kept only when :func:`~personas.describe.check_name` finds it true to the card's facts
    (:func:`~personas.describe.apply_namer`).
    """
    config = config or DescribeConfig()
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1:
        raise DataError(f"describe_groups: labels must be 1-D. Got shape {labels.shape}.")
    n = len(labels)
    n_groups = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
    if dataset is not None:
        _check_length("the dataset's users", dataset.user_vocab.ids, n)
        if user_ids is None:
            user_ids = [str(u) for u in dataset.user_vocab.ids]
    if user_ids is None:
        user_ids = [str(i) for i in range(n)]
    _check_length("user_ids", user_ids, n)
    if texts is not None:
        _check_length("texts", texts, n)
    if quotes is None:
        quotes = own_words(dataset) if dataset is not None else texts
    if quotes is not None:
        _check_length("quotes", quotes, n)
    if vectors is not None:
        _check_length("vectors", vectors, n)
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups)

    keywords: list[list[Keyword]] | None = None
    ids: list[str] = []
    if dataset is not None:
        ids = [str(i) for i in (*dataset.user_vocab.ids, *dataset.item_vocab.ids)]
        keywords = descriptive_keywords(
            dataset, labels, n_groups, config.keywords, min_rating=config.facts.min_rating, ids=ids
        )
    if keywords is None:
        keywords = (
            class_keywords(texts, labels, n_groups, config.keywords, ids=ids)
            if texts is not None
            else [[] for _ in range(n_groups)]
        )
    items = distinctive_items(dataset, labels, n_groups, config.facts) if dataset is not None else [[]] * n_groups
    skew = attribute_skew(dataset.users, labels, n_groups, config.facts) if dataset is not None else [[]] * n_groups
    centroids = None
    if vectors is not None:
        vecs = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
        centroids = centroids_of(vecs, labels, n_groups)

    reps = [
        representatives(
            vecs, labels, centroids, g, user_ids=user_ids, texts=quotes, keywords=keywords[g], config=config.facts
        )
        if centroids is not None
        else []
        for g in range(n_groups)
    ]
    if text_vectors is not None:
        _check_length("text_vectors", text_vectors, n)
    personas = assemble_personas(
        keywords, reps, items, skew, sizes, n, config, labels=labels, encoder=encoder, text_vectors=text_vectors
    )
    return apply_namer(personas, namer) if namer is not None else personas


def assemble_personas(
    keywords: Sequence[list[Keyword]],
    reps: Sequence[list[Representative]],
    items: Sequence[list[DistinctiveItem]],
    skew: Sequence[list[AttributeSkew]],
    sizes: np.ndarray,
    n: int,
    config: DescribeConfig,
    *,
    labels: np.ndarray | None = None,
    encoder: Encoder | None = None,
    text_vectors: np.ndarray | None = None,
) -> list[Persona]:
    """The cards from their parts (one list per group), named: the keyword name, then the composed one (guided
    by the members' ``text_vectors`` when ``labels``, the ``encoder`` and ``config.names.guided`` allow)."""
    n_groups = len(sizes)
    keyword_names = distinct_names(keywords, sizes.tolist(), config.keywords.name_terms)
    personas = []
    for g in range(n_groups):
        persona = Persona(
            group=g,
            name=keyword_names[g],
            keyword_name=keyword_names[g],
            size=int(sizes[g]),
            share=float(sizes[g] / n) if n else 0.0,
            keywords=keywords[g],
            representatives=reps[g],
            distinctive_items=items[g],
            attribute_skew=skew[g],
        )
        personas.append(persona)
    if labels is not None and encoder is not None and text_vectors is not None and config.names.guided and n_groups:
        named = guided_names(personas, labels, text_vectors, encoder, config.names)
    else:
        named = composed_names(personas, config.names)
    for g, (name, facts) in enumerate(named):
        if name:
            personas[g] = personas[g].model_copy(update={"name": name, "name_facts": facts, "name_source": "composed"})
    return personas
