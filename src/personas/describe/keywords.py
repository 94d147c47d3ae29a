"""Keywords per group by class-based TF-IDF, and the deterministic keyword name.

All texts of a group are pooled into one "class document". A term's weight in a group is its frequency
there (normalised by the group's total) times ``log(1 + A / f)``, where ``A`` is the average number of
term occurrences per group and ``f`` the term's frequency over all groups: frequent in this group, rare
overall. Stop words are removed, n-grams counted, and terms present in more than ``max_df`` of all users'
texts are dropped (boilerplate such as "liked" in every profile). A keyword must also be over-represented
in its group (share of the group's words >= ``min_lift`` x its share overall) and used in it at least
``min_contrast`` times as much as in any other group (a word rarer in the group than elsewhere says nothing
about it). Generic words (:data:`GENERIC_WORDS`: "like", "taste", "it's") are stop words. Chinese is split into
words first (jieba), function words left out, so Chinese groups get Chinese keywords.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from personas.config import ComponentConfig
from personas.data.language import has_han, segment
from personas.describe.persona import Keyword

__all__ = [
    "GENERIC_WORDS",
    "PHRASE_END_PATTERN",
    "STOP_WORDS",
    "TOKEN_PATTERN",
    "KeywordConfig",
    "class_keywords",
    "distinct_names",
    "keyword_name",
]

# Words of two or more characters that start with a letter (years and counts are not keywords); inner
# hyphens and apostrophes stay ("sci-fi", "children's"). The patterns are public for the Spark engine, whose
# Java regexes read them with (?U) (Python's str patterns are Unicode-aware by default).
TOKEN_PATTERN = r"\b[^\W\d_][\w'-]*[^\W_]\b"
_TOKEN = re.compile(TOKEN_PATTERN)
# Where a phrase ends: list and clause punctuation (also Chinese, full-width), brackets, line breaks, and a full
# stop followed by a space or the end.
PHRASE_END_PATTERN = r"[;,:!?()\[\]{}\"“”\n。，、；：！？（）【】「」『』]|\.(?=\s|$)"
_PHRASE_END = re.compile(PHRASE_END_PATTERN)


#: Words that say how much or how it went, not what about: opinion and filler words of reviews and posts,
#: and contractions (sklearn's stop words have "it" but not "it's"). Never keywords, never n-gram edges.
GENERIC_WORDS = frozenset(
    {
        *("like", "liked", "likes", "really", "just", "taste", "tastes", "tasted", "tasty", "product", "products"),
        *("stuff", "thing", "things", "lot", "lots", "bit", "pretty", "actually", "definitely", "ok", "okay", "use"),
        *("used", "using", "buy", "bought", "got", "get", "gets", "make", "makes", "way", "try", "tried", "want"),
        *("it's", "i'm", "i've", "i'd", "i'll", "you're", "you've", "we're", "they're", "that's", "there's"),
        *("what's", "let's", "he's", "she's", "don't", "doesn't", "didn't", "can't", "won't", "isn't", "wasn't"),
        *("aren't", "weren't", "haven't", "hasn't", "wouldn't", "couldn't", "shouldn't", "dont", "im", "ive"),
        # praise that every review group shares: it says how much, never what
        *("great", "good", "best", "better", "love", "loves", "loved", "nice", "excellent", "amazing", "awesome"),
        *("favorite", "favourite", "perfect", "recommend", "recommended", "highly"),
        # the same in Chinese: like, taste, stuff/thing, product, use, try
        *("喜欢", "味道", "东西", "产品", "使用", "尝试"),
    }
)
#: The stop words of keyword analysis: sklearn's English list and the generic words.
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS | GENERIC_WORDS)


def _analyzer(stop: frozenset[str], ngram_max: int) -> Callable[[str], list[str]]:
    """Lower-cased words that are not stop words, and n-grams within each phrase (never across its end)
    that neither start nor end with a stop word: "lost ark" and "good will hunting", never "raiders lost"
    (from "Raiders of the Lost Ark") or "will hunting"."""

    def analyse(text: str) -> list[str]:
        terms: list[str] = []
        for phrase in _PHRASE_END.split(text.lower()):
            words = _TOKEN.findall(phrase)
            edge = [w not in stop for w in words]
            terms.extend(w for w, ok in zip(words, edge, strict=True) if ok)
            for size in range(2, ngram_max + 1):
                terms.extend(
                    " ".join(words[i : i + size])
                    for i in range(len(words) - size + 1)
                    if edge[i] and edge[i + size - 1]
                )
        return terms

    return analyse


class KeywordConfig(ComponentConfig):
    n_keywords: int = Field(10, ge=1)
    ngram_max: int = Field(2, ge=1, le=4)
    min_df: int = Field(2, ge=1, description="A term must appear in at least this many users' texts.")
    max_df: float = Field(0.5, gt=0.0, le=1.0, description="Drop terms in more than this share of texts.")
    extra_stop_words: tuple[str, ...] = ()
    min_lift: float = Field(
        1.2, ge=0.0, description="A keyword's share of the group's words must be >= this times its share overall."
    )
    min_contrast: float = Field(
        1.0, ge=0.0, description="...and >= this times its share in any other group (1: no group uses it more)."
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
    if any(has_han(d) for d in docs):
        docs = [segment(d, content_words=True) for d in docs]
    stop = frozenset(STOP_WORDS | {w.lower() for w in config.extra_stop_words})
    max_df = config.max_df if n_docs * config.max_df >= 1 else 1.0
    # Pass 1 finds boilerplate words (in more than max_df of texts); pass 2 treats them as stop words, so
    # they also vanish from n-grams ("liked star wars" -> "star wars").
    words = CountVectorizer(analyzer=_analyzer(stop, 1), binary=True)
    try:
        presence = words.fit_transform(docs)
    except ValueError:  # no word survived (all stop words)
        return empty
    doc_freq = np.asarray(presence.sum(axis=0)).ravel()
    boilerplate = set(words.get_feature_names_out()[doc_freq > max_df * n_docs].tolist())
    vectorizer = CountVectorizer(
        analyzer=_analyzer(stop | boilerplate, config.ngram_max), min_df=min(config.min_df, n_docs)
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
    # Contrast: the group's share of a term over the largest share in any other group (> 1: its own term).
    if n_groups > 1:
        top2 = -np.sort(-tf, axis=0)[:2]
        others = np.where(tf >= top2[0][None, :], top2[1][None, :], top2[0][None, :])
    else:
        others = np.zeros_like(tf)
    # Rarer in the group than in another one (contrast < min_contrast): not this group's word.
    scores[tf < config.min_contrast * others] = 0.0
    out = []
    for g in range(n_groups):
        row = scores[g]
        # highest score first; ties go to the longer n-gram (more specific), then alphabetical order
        order = np.lexsort((terms, -n_words, -row))
        out.append(
            [
                Keyword(
                    term=str(terms[i]),
                    score=float(row[i]),
                    contrast=float(tf[g, i] / others[g, i]) if others[g, i] > 0 else None,
                )
                for i in order[: config.n_keywords]
                if row[i] > 0
            ]
        )
    return out


def keyword_name(keywords: Sequence[Keyword], n_terms: int = 3) -> str:
    """``"star wars · sci-fi · action"``: the top terms, each saying something new. A longer term replaces
    the chosen terms it contains ("star" and "wars" become "star wars"); any other term sharing a word with
    a chosen one is skipped ("trek vi" after "star trek")."""
    chosen: list[str] = []
    for kw in keywords:
        words = set(kw.term.split())
        inside = [c for c in chosen if set(c.split()) < words]
        if inside:
            at = chosen.index(inside[0])
            chosen = [c for c in chosen if c not in inside]
            chosen.insert(at, kw.term)
        elif len(chosen) < n_terms and not any(words & set(c.split()) for c in chosen):
            chosen.append(kw.term)
    return " · ".join(chosen) if chosen else "unnamed group"


def _overlaps(term: str, taken: set[str]) -> bool:
    words = set(term.split())
    return any(words <= set(t.split()) or set(t.split()) <= words for t in taken)


def distinct_names(
    keywords: Sequence[Sequence[Keyword]], sizes: Sequence[int], n_terms: int = 3, *, max_contrast: float = 4.0
) -> list[str]:
    """A keyword name for every group, no two sharing a term.

    Groups are named biggest first (ties: lower group number). Each group's keywords are ranked by
    c-TF-IDF score x contrast (capped at ``max_contrast``; a term no other group uses counts as the cap),
    so a name says what sets the group apart rather than what it shares; a term already in a bigger group's
    name, or containing one or contained in one ("horror" and "scream horror"), is left out.
    """
    names = [""] * len(keywords)
    taken: set[str] = set()
    for g in sorted(range(len(keywords)), key=lambda g: (-sizes[g], g)):

        def weight(kw: Keyword) -> float:
            return kw.score * min(kw.contrast if kw.contrast is not None else max_contrast, max_contrast)

        free = [kw for kw in keywords[g] if not _overlaps(kw.term, taken)]
        ranked = sorted(free, key=lambda kw: (-weight(kw), -kw.term.count(" "), kw.term))
        names[g] = keyword_name(ranked, n_terms) if ranked else f"group {g}"
        taken.update(names[g].split(" · ") if ranked else ())
    return names
