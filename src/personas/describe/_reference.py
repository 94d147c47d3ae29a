"""The describe stage as first written, one text and one group at a time: the reference that the columnar
path (:func:`~personas.describe.descriptive_keywords`, :func:`~personas.describe.distinctive_items`) is
tested against, term for term and number for number. Not used by the pipeline."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from personas.data import Dataset, clean_text
from personas.data.items import genre_tokens
from personas.data.language import has_han, segment
from personas.describe.facts import FactsConfig
from personas.describe.keywords import STOP_WORDS, KeywordConfig, _analyzer, _keywords
from personas.describe.persona import DistinctiveItem, Keyword

__all__ = ["class_keywords_loop", "descriptive_keywords_loop", "descriptive_texts_loop", "distinctive_items_loop"]


def class_keywords_loop(
    texts: Sequence[str | None],
    labels: np.ndarray,
    n_groups: int,
    config: KeywordConfig | None = None,
    *,
    ids: Collection[str] = (),
) -> list[list[Keyword]]:
    """:func:`~personas.describe.class_keywords` with sklearn's ``CountVectorizer`` analysing every text."""
    config = config or KeywordConfig()
    docs = [t or "" for t in texts]
    labels = np.asarray(labels)
    empty: list[list[Keyword]] = [[] for _ in range(n_groups)]
    if not any(d.strip() for d in docs) or n_groups == 0:
        return empty
    n_docs = sum(1 for d in docs if d.strip())
    if any(has_han(d) for d in docs):
        docs = [segment(d, content_words=True) for d in docs]
    stop = frozenset(STOP_WORDS | {w.lower() for w in config.extra_stop_words} | {str(i).lower() for i in ids})
    digits = config.digit_words
    max_df = config.max_df if n_docs * config.max_df >= 1 else 1.0
    boilerplate: set[str] = set()
    if max_df < 1.0:
        words = CountVectorizer(analyzer=_analyzer(stop, 1, digits=digits), binary=True)
        try:
            presence = words.fit_transform(docs)
        except ValueError:  # no word survived (all stop words)
            return empty
        doc_freq = np.asarray(presence.sum(axis=0)).ravel()
        boilerplate = set(words.get_feature_names_out()[doc_freq > max_df * n_docs].tolist())
    vectorizer = CountVectorizer(
        analyzer=_analyzer(stop | boilerplate, config.ngram_max, digits=digits), min_df=min(config.min_df, n_docs)
    )
    try:
        counts = vectorizer.fit_transform(docs)
    except ValueError:  # no term survived (all stop words or too rare)
        return empty
    return _keywords(sp.csr_matrix(counts), vectorizer.get_feature_names_out(), labels, n_groups, config)


def descriptive_keywords_loop(
    dataset: Dataset,
    labels: np.ndarray,
    n_groups: int,
    config: KeywordConfig | None = None,
    *,
    min_rating: float | None = 4.0,
    ids: Collection[str] = (),
) -> list[list[Keyword]] | None:
    """:func:`~personas.describe.descriptive_keywords` from the written texts."""
    texts = descriptive_texts_loop(dataset, min_rating=min_rating)
    return class_keywords_loop(texts, labels, n_groups, config, ids=ids) if any(t.strip() for t in texts) else None


def descriptive_texts_loop(
    dataset: Dataset,
    *,
    min_rating: float | None = 4.0,
    max_reviews: int = 20,
    item_tags: int = 5,
    item_tag_users: int = 2,
    description_chars: int = 300,
) -> list[str]:
    """:func:`~personas.describe.descriptive_texts` one user at a time, as first written."""
    items = dataset.items
    genres = [", ".join(g) for g in genre_tokens(dataset)]
    descriptions = [""] * dataset.n_items
    if "text" in items.columns:
        descriptions = [
            (clean_text(t) or "")[:description_chars] if isinstance(t, str) else "" for t in items["text"].tolist()
        ]
    user_tags: dict[int, list[str]] = {}
    tags_of_item: dict[int, list[str]] = {}
    if dataset.tags is not None and len(dataset.tags):
        frame = dataset.tags
        for user, tag in zip(frame["user"].to_numpy(), frame["tag"].astype(str).to_numpy(), strict=True):
            user_tags.setdefault(int(user), []).append(tag)
        tagged = pd.DataFrame(
            {
                "item": frame["item"].to_numpy(),
                "tag": frame["tag"].astype(str).str.lower().to_numpy(),
                "user": frame["user"].to_numpy(),
            }
        )
        counted = tagged.groupby(["item", "tag"])["user"].nunique().sort_values(ascending=False, kind="stable")
        # an item's tag that only one user gave is that user's habit ("ei muista" on all they rated), not the item
        counted = counted[counted >= item_tag_users]
        for (item, tag), _ in counted.items():
            have = tags_of_item.setdefault(int(item), [])
            if len(have) < item_tags:
                have.append(str(tag))
    about = [
        "; ".join(p for p in (genres[i], descriptions[i], ", ".join(tags_of_item.get(i, []))) if p)
        for i in range(dataset.n_items)
    ]
    rows, cols = dataset.user_rows, dataset.item_rows
    liked = np.ones(len(rows), dtype=bool)
    if min_rating is not None and dataset.has_ratings:
        liked = np.nan_to_num(dataset.ratings, nan=-np.inf) >= min_rating
        none_liked = np.bincount(rows[liked], minlength=dataset.n_users) == 0
        liked |= none_liked[rows]  # users who never rated that high: all their items
    items_of: dict[int, list[int]] = {}
    for user, item in zip(rows[liked].tolist(), cols[liked].tolist(), strict=True):
        items_of.setdefault(user, []).append(item)
    reviews_of: dict[int, list[str]] = {}
    for user, review in zip(rows.tolist(), dataset.reviews.tolist(), strict=True):
        if review and isinstance(review, str) and len(reviews_of.setdefault(user, [])) < max_reviews:
            reviews_of[user].append(review)
    own = dataset.user_texts()
    out = []
    for row in range(dataset.n_users):
        pieces = [own[row] or "", *reviews_of.get(row, []), ", ".join(user_tags.get(row, []))]
        pieces = [clean_text(p) or "" for p in pieces if p]
        pieces += [about[i] for i in dict.fromkeys(items_of.get(row, [])) if about[i]]
        out.append(". ".join(p.strip() for p in pieces if p.strip()))
    return out


def _liked_matrix(dataset: Dataset, min_rating: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(user rows, item rows) of the interactions that count as liked, deduplicated."""
    keep = np.ones(dataset.n_interactions, dtype=bool)
    if min_rating is not None and dataset.has_ratings:
        keep = np.nan_to_num(dataset.ratings, nan=-np.inf) >= min_rating
    pairs = np.unique(np.column_stack([dataset.user_rows[keep], dataset.item_rows[keep]]), axis=0)
    return pairs[:, 0], pairs[:, 1]


def distinctive_items_loop(
    dataset: Dataset, labels: np.ndarray, n_groups: int, config: FactsConfig
) -> list[list[DistinctiveItem]]:
    """:func:`~personas.describe.distinctive_items` with one pass over the liked pairs per group."""
    users, items = _liked_matrix(dataset, config.min_rating)
    overall = np.bincount(items, minlength=dataset.n_items) / max(dataset.n_users, 1)
    titles = dataset.items["title"].fillna("").astype(str).to_numpy()
    item_ids = dataset.item_vocab.ids
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups)
    supports = [np.bincount(items[labels[users] == g], minlength=dataset.n_items) for g in range(n_groups)]
    all_shares = [supports[g] / max(sizes[g], 1) for g in range(n_groups)]
    out: list[list[DistinctiveItem]] = []
    for g in range(n_groups):
        support = supports[g]
        share = all_shares[g]
        others = np.zeros_like(share)
        for h in range(n_groups):
            if h != g:
                others = np.maximum(others, all_shares[h])
        lift = np.divide(share, overall, out=np.zeros_like(share), where=overall > 0)
        floor = max(config.min_item_users, int(np.ceil(config.min_item_share * sizes[g])))
        ok = np.flatnonzero(support >= floor)
        order = ok[np.lexsort((ok, -support[ok], -lift[ok]))][: config.n_items]
        out.append(
            [
                DistinctiveItem(
                    item_id=str(item_ids[i]),
                    title=titles[i] or str(item_ids[i]),
                    users=int(support[i]),
                    share_in_group=float(share[i]),
                    share_overall=float(overall[i]),
                    lift=float(lift[i]),
                    contrast=float(share[i] / others[i]) if others[i] > 0 else None,
                )
                for i in order
                if lift[i] > 1.0
            ]
        )
    return out
