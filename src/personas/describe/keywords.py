"""Keywords per group by class-based TF-IDF, and the deterministic keyword name.

All texts of a group are pooled into one "class document". A term's weight in a group is its frequency
there (normalised by the group's total) times ``log(1 + A / f)``, where ``A`` is the average number of
term occurrences per group and ``f`` the term's frequency over all groups: frequent in this group, rare
overall. Stop words are removed, n-grams counted, and terms present in more than ``max_df`` of all users'
texts are dropped (boilerplate such as "liked" in every profile). A keyword must also be over-represented
in its group (share of the group's words >= ``min_lift`` x its share overall).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from personas.config import ComponentConfig
from personas.describe.persona import Keyword

__all__ = ["KeywordConfig", "class_keywords", "keyword_name"]

# Words of two or more characters that start with a letter (years and counts are not keywords); inner
# hyphens and apostrophes stay ("sci-fi", "children's").
_TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w'-]*[^\W_]\b"


class KeywordConfig(ComponentConfig):
    n_keywords: int = Field(10, ge=1)
    ngram_max: int = Field(2, ge=1, le=4)
    min_df: int = Field(2, ge=1, description="A term must appear in at least this many users' texts.")
    max_df: float = Field(0.5, gt=0.0, le=1.0, description="Drop terms in more than this share of texts.")
    extra_stop_words: tuple[str, ...] = ()
    min_lift: float = Field(
        1.2, ge=0.0, description="A keyword's share of the group's words must be >= this times its share overall."
    )
    name_terms: int = Field(3, ge=1, description="Keywords used in the deterministic name.")


def class_keywords(
    texts: Sequence[str | None], labels: np.ndarray, n_groups: int, config: KeywordConfig | None = None
) -> list[list[Keyword]]:
    """Top keywords of each group ``0..n_groups-1`` (noise rows, label ``-1``, count only in the corpus)."""
    config = config or KeywordConfig()
    docs = [t or "" for t in texts]
    labels = np.asarray(labels)
    empty: list[list[Keyword]] = [[] for _ in range(n_groups)]
    if not any(d.strip() for d in docs) or n_groups == 0:
        return empty
    n_docs = sum(1 for d in docs if d.strip())
    stop = ENGLISH_STOP_WORDS | set(config.extra_stop_words)
    max_df = config.max_df if n_docs * config.max_df >= 1 else 1.0
    # Pass 1 finds boilerplate words (in more than max_df of texts); pass 2 treats them as stop words, so
    # they also vanish from n-grams ("liked star wars" -> "star wars").
    words = CountVectorizer(token_pattern=_TOKEN_PATTERN, stop_words=sorted(stop), binary=True)
    try:
        presence = words.fit_transform(docs)
    except ValueError:  # no word survived (all stop words)
        return empty
    doc_freq = np.asarray(presence.sum(axis=0)).ravel()
    boilerplate = set(words.get_feature_names_out()[doc_freq > max_df * n_docs].tolist())
    vectorizer = CountVectorizer(
        token_pattern=_TOKEN_PATTERN,
        stop_words=sorted(stop | boilerplate),
        ngram_range=(1, config.ngram_max),
        min_df=min(config.min_df, n_docs),
        lowercase=True,
    )
    try:
        counts = vectorizer.fit_transform(docs)
    except ValueError:  # no term survived (all stop words or too rare)
        return empty
    terms = vectorizer.get_feature_names_out()
    n_words = np.array([t.count(" ") + 1 for t in terms])
    keep = labels >= 0
    member = sp.csr_matrix(
        (np.ones(int(keep.sum())), (labels[keep], np.flatnonzero(keep))), shape=(n_groups, len(docs))
    )
    per_group = np.asarray((member @ counts).todense(), dtype=np.float64)
    totals = per_group.sum(axis=1, keepdims=True)
    tf = np.divide(per_group, totals, out=np.zeros_like(per_group), where=totals > 0)
    term_freq = per_group.sum(axis=0)
    avg = per_group.sum() / max(n_groups, 1)
    idf = np.log1p(np.divide(avg, term_freq, out=np.zeros_like(term_freq), where=term_freq > 0))
    scores = tf * idf
    # A keyword must be over-represented in its group: a term frequent everywhere ("horror" in a film
    # corpus) can top several groups by c-TF-IDF alone and then says nothing about any of them.
    overall = term_freq / max(term_freq.sum(), 1.0)
    scores[tf < config.min_lift * overall[None, :]] = 0.0
    out = []
    for g in range(n_groups):
        row = scores[g]
        # highest score first; ties go to the longer n-gram (more specific), then alphabetical order
        order = np.lexsort((terms, -n_words, -row))
        out.append([Keyword(term=str(terms[i]), score=float(row[i])) for i in order[: config.n_keywords] if row[i] > 0])
    return out


def keyword_name(keywords: Sequence[Keyword], n_terms: int = 3) -> str:
    """``"star wars · sci-fi · action"``: the top terms, each saying something new. A term whose words a
    chosen term already has is skipped; a longer term replaces the chosen terms it contains ("star" and
    "wars" become "star wars")."""
    chosen: list[str] = []
    for kw in keywords:
        words = set(kw.term.split())
        if any(words <= set(c.split()) for c in chosen):
            continue
        inside = [c for c in chosen if set(c.split()) < words]
        if inside:
            at = chosen.index(inside[0])
            chosen = [c for c in chosen if c not in inside]
            chosen.insert(at, kw.term)
        elif len(chosen) < n_terms:
            chosen.append(kw.term)
    return " · ".join(chosen) if chosen else "unnamed group"
