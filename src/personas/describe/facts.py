"""The facts on a persona card besides keywords: representative users, distinctive items, attribute skew."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from personas.config import ComponentConfig
from personas.data import Dataset, clean_text
from personas.data.columnar import group_counts
from personas.data.language import has_han
from personas.describe.persona import AttributeSkew, DistinctiveItem, Keyword, Representative

__all__ = [
    "FactsConfig",
    "add_skews",
    "age_band",
    "attribute_skew",
    "distinctive_items",
    "group_distinctive_items",
    "quote",
    "representatives",
    "sorted_skews",
]


class FactsConfig(ComponentConfig):
    n_representatives: int = Field(3, ge=0)
    quote_words: int = Field(30, ge=3)
    n_items: int = Field(8, ge=0)
    min_item_users: int = Field(5, ge=1, description="Minimum support: group members who liked the item.")
    min_item_share: float = Field(
        0.1, ge=0.0, le=1.0, description="...and at least this share of the group (whichever is larger)."
    )
    min_rating: float | None = Field(
        4.0, description="Count an interaction as 'liked' at or above this rating (when ratings exist)."
    )
    n_attributes: int = Field(5, ge=0)
    attributes: tuple[str, ...] | None = Field(
        None, description="User columns to check; None = every column with 2..50 distinct values, plus age bands."
    )
    age_bands: tuple[int, ...] = (18, 25, 35, 45, 55)
    min_attribute_users: int = Field(3, ge=1)
    min_attribute_lift: float = Field(1.2, ge=1.0)


# Sentence ends: a full stop, semicolon, ! or ? before a space; Chinese 。！？； (no space follows); line breaks.
_SEGMENTS = re.compile(r"(?<=[.;!?])\s+|(?<=[。！？；])|\n")


def quote(text: str | None, keywords: Sequence[Keyword], max_words: int = 30) -> str:
    """The sentence or list entry of ``text`` that mentions the group's keywords most, cut to ``max_words``
    (Chinese: twice as many characters). The text is cleaned first (markup, links, @mentions: see
    :func:`personas.data.clean_text`); a quote is the user's own words, never anything else."""
    text = clean_text(text)
    if not text or not text.strip():
        return ""
    segments = [s.strip() for s in _SEGMENTS.split(text) if s.strip()]
    terms = [k.term.lower() for k in keywords]

    def hits(segment: str) -> int:
        low = segment.lower()
        return sum(1 for t in terms if t in low)

    best = max(segments, key=lambda s: (hits(s), -segments.index(s)))
    if has_han(best) and len(best) > 2 * max_words:
        return best[: 2 * max_words] + " …"
    words = best.split()
    return " ".join(words[:max_words]) + (" …" if len(words) > max_words else "")


def representatives(
    vectors: np.ndarray,
    labels: np.ndarray,
    centroids: np.ndarray,
    group: int,
    *,
    user_ids: Sequence[str],
    texts: Sequence[str | None] | None,
    keywords: Sequence[Keyword],
    config: FactsConfig,
) -> list[Representative]:
    """The group members most cosine-similar to its centroid, each with a short quote."""
    members = np.flatnonzero(labels == group)
    if len(members) == 0 or config.n_representatives == 0:
        return []
    x = vectors[members]
    norms = np.linalg.norm(x, axis=1)
    sims = (x @ centroids[group]) / np.where(norms > 0, norms, 1.0)
    order = np.lexsort((members, -sims))[: config.n_representatives]
    return [
        Representative(
            user_id=str(user_ids[members[i]]),
            similarity=float(sims[i]),
            quote=quote(texts[members[i]], keywords, config.quote_words) if texts is not None else "",
        )
        for i in order
    ]


def _liked(dataset: Dataset, min_rating: float | None) -> sp.csr_matrix:
    """The users x items matrix of the interactions that count as liked, 1 for each pair (int32)."""
    keep = np.ones(dataset.n_interactions, dtype=bool)
    if min_rating is not None and dataset.has_ratings:
        keep = np.nan_to_num(dataset.ratings, nan=-np.inf) >= min_rating
    users, items = dataset.user_rows[keep], dataset.item_rows[keep]
    # a sparse matrix deduplicates in linear time per row (np.unique sorts or hashes every pair)
    liked = sp.csr_matrix(
        (np.ones(len(users), dtype=np.int32), (users, items)), shape=(dataset.n_users, dataset.n_items)
    )
    liked.sum_duplicates()
    liked.data[:] = 1
    return liked


def distinctive_items(
    dataset: Dataset, labels: np.ndarray, n_groups: int, config: FactsConfig
) -> list[list[DistinctiveItem]]:
    """Items each group likes more than everyone does: lift = share of the group / share of all users,
    among items liked by at least ``max(min_item_users, min_item_share * group size)`` members."""
    liked = _liked(dataset, config.min_rating)
    # members of each group who liked each item: one sparse product over the liked pairs
    supports = group_counts(liked, labels, n_groups).astype(np.int64)
    return group_distinctive_items(
        supports,
        np.bincount(liked.indices, minlength=dataset.n_items),
        np.bincount(labels[labels >= 0], minlength=n_groups),
        dataset.n_users,
        titles=dataset.items["title"].fillna("").astype(str).to_numpy(),
        item_ids=dataset.item_vocab.ids,
        config=config,
    )


def group_distinctive_items(
    supports: np.ndarray,
    likers: np.ndarray,
    sizes: np.ndarray,
    n_users: int,
    *,
    titles: np.ndarray,
    item_ids: Sequence[str] | np.ndarray,
    config: FactsConfig,
) -> list[list[DistinctiveItem]]:
    """:func:`distinctive_items` from its counts alone: ``supports`` (groups x items) members who liked each
    item, ``likers`` users who liked each item, ``sizes`` members per group, ``n_users`` users in all (the
    streamed engine sums these over chunks of users)."""
    overall = likers / max(n_users, 1)
    n_groups = len(sizes)
    shares = supports / np.maximum(sizes, 1)[:, None]
    # contrast: the group's share over the largest share of any other group
    top2 = -np.sort(-shares, axis=0)[:2] if n_groups > 1 else np.zeros((2, supports.shape[1]))
    out: list[list[DistinctiveItem]] = []
    for g in range(n_groups):
        support = supports[g]
        share = shares[g]
        others = np.where(share >= top2[0], top2[1], top2[0]) if n_groups > 1 else np.zeros_like(share)
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


def age_band(ages: pd.Series, edges: Sequence[int]) -> pd.Series:
    """ "under 18", "18-24", ..., "55+" from numeric ages (missing stays missing)."""
    values = pd.to_numeric(ages, errors="coerce")
    labels = [f"under {edges[0]}"] + [f"{a}-{b - 1}" for a, b in itertools.pairwise(edges)]
    labels.append(f"{edges[-1]}+")
    bins = [-np.inf, *edges, np.inf]
    return pd.cut(values, bins=bins, labels=labels, right=False).astype(object)


def _attribute_columns(users: pd.DataFrame, config: FactsConfig) -> dict[str, pd.Series]:
    columns: dict[str, pd.Series] = {}
    names = config.attributes
    if names is None:
        names = tuple(
            c for c in users.columns if c not in ("user_id", "text", "age") and 2 <= users[c].nunique(dropna=True) <= 50
        )
        if "age" in users.columns:
            names = ("age", *names)
    for name in names:
        if name not in users.columns:
            continue
        if name == "age":
            ages = pd.to_numeric(users[name], errors="coerce")  # once: parsing 10^6 strings takes seconds
            if ages.notna().any():
                columns["age band"] = age_band(ages, config.age_bands)
                continue
        columns[name] = users[name].astype(object)
    return columns


def attribute_skew(
    users: pd.DataFrame, labels: np.ndarray, n_groups: int, config: FactsConfig
) -> list[list[AttributeSkew]]:
    """Attribute values over-represented in each group (lift >= ``min_attribute_lift``), those that set the
    group apart most first: share in the group x log lift (a value most of the group has, 1.4x as common,
    before one 2% of it has, 3x as common)."""
    columns = _attribute_columns(users, config)
    out: list[list[AttributeSkew]] = [[] for _ in range(n_groups)]
    if n_groups == 0:
        return out
    for name, series in columns.items():
        values = series.to_numpy(dtype=object)
        known = pd.notna(series).to_numpy()
        if not known.any():
            continue
        vals, codes = np.unique(values[known].astype(str), return_inverse=True)
        known_labels = labels[known]
        counts = np.stack([np.bincount(codes[known_labels == g], minlength=len(vals)) for g in range(n_groups)])
        add_skews(out, name, vals, counts, np.bincount(codes, minlength=len(vals)), config)
    return sorted_skews(out, config)


def add_skews(
    out: list[list[AttributeSkew]],
    name: str,
    vals: np.ndarray,
    counts: np.ndarray,
    everyone: np.ndarray,
    config: FactsConfig,
) -> None:
    """The over-represented values of attribute ``name`` added to each group's list in ``out``, from
    ``counts`` (groups x ``vals``, sorted values) members with each value and ``everyone`` users with it."""
    n_groups = len(out)
    overall = everyone / everyone.sum()
    n_known = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, n_known, out=np.zeros(counts.shape), where=n_known > 0)
    # contrast: the group's share over the largest share of any other group
    top2 = -np.sort(-shares, axis=0)[:2] if n_groups > 1 else np.zeros((2, len(vals)))
    for g in range(n_groups):
        if n_known[g, 0] == 0:
            continue
        share = shares[g]
        lift = share / overall
        others = np.where(share >= top2[0], top2[1], top2[0]) if n_groups > 1 else np.zeros(len(vals))
        for v in np.flatnonzero((counts[g] >= config.min_attribute_users) & (lift >= config.min_attribute_lift)):
            out[g].append(
                AttributeSkew(
                    attribute=name,
                    value=str(vals[v]),
                    users=int(counts[g, v]),
                    share_in_group=float(share[v]),
                    share_overall=float(overall[v]),
                    lift=float(lift[v]),
                    contrast=float(share[v] / others[v]) if others[v] > 0 else None,
                )
            )


def sorted_skews(out: list[list[AttributeSkew]], config: FactsConfig) -> list[list[AttributeSkew]]:
    """Each group's skews, those that set it apart most first, the first ``n_attributes`` kept."""
    for skews in out:
        skews.sort(key=lambda s: (-s.share_in_group * np.log(s.lift), s.attribute, s.value))
        del skews[config.n_attributes :]
    return out
