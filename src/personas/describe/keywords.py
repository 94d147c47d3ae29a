"""Keywords per group by class-based TF-IDF, and the deterministic keyword name.

All texts of a group are pooled into one "class document". A term's weight in a group is its frequency
there (normalised by the group's total) times ``log(1 + A / f)``, where ``A`` is the average number of
term occurrences per group and ``f`` the term's frequency over all groups: frequent in this group, rare
overall. Stop words are removed, n-grams counted, and terms present in more than ``max_df`` of all users'
texts can be dropped (boilerplate). A keyword must also be over-represented in its group (its lift: share
of the group's words >= ``min_lift`` x its share overall), used in it at least ``min_contrast`` times as
much as in any other group (a word rarer in the group than elsewhere says nothing about it), and used by at
least ``min_support`` of the group's members (one member repeating a word is not the group's word).
Generic words (:data:`GENERIC_WORDS`: "like", "taste", "it's", "day", "man") and markup left-overs
(:data:`MARKUP_WORDS`) are stop words; so are words with a digit ("id4", product codes) and the ids passed
in. Plurals are folded into one term ("comedy" and "comedies"), and a word is left out where a kept
n-gram says it ("wars" beside "star wars"), an n-gram where its words are kept on their own. Chinese is
split into words first (jieba), function words left out, so Chinese groups get Chinese keywords.

:func:`descriptive_texts` gives each user the words that describe them rather than name things: their own
text, reviews and tags, and the genres, descriptions and tags of the items they liked, never item titles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from personas.config import ComponentConfig
from personas.data import Dataset, clean_text
from personas.data.columnar import phrase_matrix, term_counts
from personas.data.items import genre_tokens
from personas.data.language import has_han, segment
from personas.describe.persona import Keyword

__all__ = [
    "GENERIC_WORDS",
    "MARKUP_WORDS",
    "PHRASE_END_PATTERN",
    "STOP_WORDS",
    "TOKEN_PATTERN",
    "KeywordConfig",
    "class_keywords",
    "descriptive_keywords",
    "descriptive_texts",
    "distinct_names",
    "fold_plural",
    "group_keywords",
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
        # words of every title and every life: they say nothing about one group
        *("day", "days", "man", "men", "woman", "women", "life", "time", "times", "year", "years", "people"),
        *("person", "world", "new", "old", "little", "big", "night", "kind", "sort"),
        # the same in Chinese: like, taste, stuff/thing, product, use, try
        *("喜欢", "味道", "东西", "产品", "使用", "尝试"),
    }
)
#: What markup and links leave behind when a text was not cleaned: tag, attribute and entity names, URL parts.
MARKUP_WORDS = frozenset(
    {
        *("br", "nbsp", "amp", "quot", "apos", "lt", "gt", "href", "src", "img", "div", "span", "li", "ul"),
        *("ol", "td", "tr", "th", "tbody", "html", "htm", "php", "http", "https", "www", "com", "org", "net"),
    }
)
#: The stop words of keyword analysis: sklearn's English list, the generic words and markup left-overs.
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS | GENERIC_WORDS | MARKUP_WORDS)
_DIGIT = re.compile(r"\d")


def fold_plural(word: str) -> str:
    """The singular-looking key of an English word, so that plurals merge with their singular: "comedies"
    and "comedy" -> "comedy", "teas" -> "tea", "children's" -> "children". Not a stemmer: "organic" and
    "organisation" stay apart (a Porter stemmer would merge them); words in -ss, -us, -is stay whole."""
    w = word[:-2] if word.endswith("'s") else word
    if len(w) <= 3 or w.endswith(("ss", "us", "is", "'")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "sses", "zes")):
        return w[:-2]
    if w.endswith("s"):
        return w[:-1]
    return w


def _analyzer(stop: frozenset[str], ngram_max: int, *, digits: bool = True) -> Callable[[str], list[str]]:
    """Lower-cased words that are not stop words, and n-grams within each phrase (never across its end)
    that neither start nor end with a stop word: "lost ark" and "good will hunting", never "raiders lost"
    (from "Raiders of the Lost Ark") or "will hunting". ``digits=False``: a word with a digit is a stop word."""

    def analyse(text: str) -> list[str]:
        terms: list[str] = []
        for phrase in _PHRASE_END.split(text.lower()):
            words = _TOKEN.findall(phrase)
            edge = [w not in stop and (digits or not _DIGIT.search(w)) for w in words]
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
    # 1.0: a genre nearly every user likes ("drama") is still a fact where one group likes it more; lift and
    # contrast, not frequency, decide what a group's word is.
    max_df: float = Field(1.0, gt=0.0, le=1.0, description="Drop terms in more than this share of texts.")
    min_support: float = Field(
        0.05, ge=0.0, le=1.0, description="A keyword must be in the texts of at least this share of the group."
    )
    fold_plurals: bool = Field(True, description="Merge plurals with their singular ('comedies', 'comedy').")
    digit_words: bool = Field(False, description="Keep words with a digit ('id4', codes); off: they are ids.")
    merge_ngrams: bool = Field(
        True, description="Leave out a word that a kept n-gram says, and an n-gram whose words are kept alone."
    )
    extra_stop_words: tuple[str, ...] = ()
    min_lift: float = Field(
        1.05, ge=0.0, description="A keyword's share of the group's words must be >= this times its share overall."
    )
    min_contrast: float = Field(
        1.0, ge=0.0, description="...and >= this times its share in any other group (1: no group uses it more)."
    )
    name_terms: int = Field(3, ge=1, description="Keywords used in the deterministic name.")


def class_keywords(
    texts: Sequence[str | None],
    labels: np.ndarray,
    n_groups: int,
    config: KeywordConfig | None = None,
    *,
    ids: Collection[str] = (),
) -> list[list[Keyword]]:
    """Top keywords of each group ``0..n_groups-1`` (noise rows, label ``-1``, count only in the corpus).
    ``ids`` (user and item ids) are never keywords."""
    config = config or KeywordConfig()
    docs = [t or "" for t in texts]
    n_docs = sum(1 for d in docs if d.strip())
    if n_docs == 0 or n_groups == 0:
        return [[] for _ in range(n_groups)]
    if any(has_han(d) for d in docs):
        docs = [segment(d, content_words=True) for d in docs]
    # Texts repeat the same phrases (genres, item words) across users: each distinct phrase is analysed once.
    return _phrase_keywords(phrase_matrix(docs, _PHRASE_END), n_docs, labels, n_groups, config, ids)


def _phrase_keywords(
    phrases: tuple[sp.csr_matrix, list[str]],
    n_docs: int,
    labels: np.ndarray,
    n_groups: int,
    config: KeywordConfig,
    ids: Collection[str],
) -> list[list[Keyword]]:
    """:func:`class_keywords` from the (documents x phrases) counts of the texts (:func:`phrase_matrix`),
    ``n_docs`` of them not blank. The counts are those of ``CountVectorizer`` with the keyword analyser."""
    empty: list[list[Keyword]] = [[] for _ in range(n_groups)]
    stop = frozenset(STOP_WORDS | {w.lower() for w in config.extra_stop_words} | {str(i).lower() for i in ids})
    digits = config.digit_words
    max_df = config.max_df if n_docs * config.max_df >= 1 else 1.0
    # Pass 1 finds boilerplate words (in more than max_df of texts); pass 2 treats them as stop words, so
    # they also vanish from n-grams ("liked star wars" -> "star wars").
    boilerplate: set[str] = set()
    if max_df < 1.0:
        presence, words = term_counts(phrases, _analyzer(stop, 1, digits=digits), binary=True)
        if presence.shape[1] == 0:  # no word survived (all stop words)
            return empty
        doc_freq = np.asarray(presence.sum(axis=0)).ravel()
        boilerplate = set(words[doc_freq > max_df * n_docs].tolist())
    counts, found = term_counts(
        phrases, _analyzer(stop | boilerplate, config.ngram_max, digits=digits), min_df=min(config.min_df, n_docs)
    )
    if counts.shape[1] == 0:  # no term survived (all stop words or too rare)
        return empty
    return _keywords(counts, found.astype(object), np.asarray(labels), n_groups, config)


def _keywords(
    counts: sp.csr_matrix, terms: np.ndarray, labels: np.ndarray, n_groups: int, config: KeywordConfig
) -> list[list[Keyword]]:
    """Keywords of each group from the (documents x terms) counts and the terms (sorted)."""
    if config.fold_plurals:
        counts, terms = _fold_terms(sp.csr_matrix(counts), terms)
    keep = labels >= 0
    member = sp.csr_matrix(
        (np.ones(int(keep.sum())), (labels[keep], np.flatnonzero(keep))), shape=(n_groups, counts.shape[0])
    )
    per_group = np.asarray((member @ counts).todense(), dtype=np.float64)
    users = np.asarray((member @ (counts > 0).astype(np.float64)).todense())
    sizes = np.bincount(labels[keep], minlength=n_groups).astype(np.float64)
    return group_keywords(per_group, users, sizes, terms, config)


def group_keywords(
    per_group: np.ndarray, users: np.ndarray, sizes: np.ndarray, terms: np.ndarray, config: KeywordConfig
) -> list[list[Keyword]]:
    """Keywords of each group from its per-term aggregates alone: ``per_group`` (groups x terms) uses of each
    term, ``users`` (groups x terms) members whose text has it, ``sizes`` members per group; ``terms`` their
    names (plurals already folded). The streamed engine sums these over chunks of users."""
    n_groups = len(sizes)
    n_words = np.array([t.count(" ") + 1 for t in terms])
    support = users / np.maximum(sizes, 1.0)[:, None]
    totals = per_group.sum(axis=1, keepdims=True)
    tf = np.divide(per_group, totals, out=np.zeros_like(per_group), where=totals > 0)
    term_freq = per_group.sum(axis=0)
    avg = per_group.sum() / max(n_groups, 1)
    idf = np.log1p(np.divide(avg, term_freq, out=np.zeros_like(term_freq), where=term_freq > 0))
    scores = tf * idf
    # A keyword must be over-represented in its group: a term frequent everywhere ("horror" in a film
    # corpus) can top several groups by c-TF-IDF alone and then says nothing about any of them.
    overall = term_freq / max(term_freq.sum(), 1.0)
    lift = np.divide(tf, overall[None, :], out=np.zeros_like(tf), where=overall[None, :] > 0)
    scores[tf < config.min_lift * overall[None, :]] = 0.0
    # Contrast: the group's share of a term over the largest share in any other group (> 1: its own term).
    if n_groups > 1:
        top2 = -np.sort(-tf, axis=0)[:2]
        others = np.where(tf >= top2[0][None, :], top2[1][None, :], top2[0][None, :])
    else:
        others = np.zeros_like(tf)
    # Rarer in the group than in another one (contrast < min_contrast): not this group's word.
    scores[tf < config.min_contrast * others] = 0.0
    scores[support < config.min_support] = 0.0
    out = []
    for g in range(n_groups):
        row = scores[g]
        # highest score first; ties go to the longer n-gram (more specific), then alphabetical order
        order = [int(i) for i in np.lexsort((terms, -n_words, -row)) if row[i] > 0]
        if config.merge_ngrams:  # among the top few only: what is left out is replaced from further down
            order = _merge_ngrams(order[: 5 * config.n_keywords], terms, per_group[g])
        out.append(
            [
                Keyword(
                    term=str(terms[i]),
                    score=float(row[i]),
                    contrast=float(tf[g, i] / others[g, i]) if others[g, i] > 0 else None,
                    lift=float(lift[g, i]),
                    support=float(support[g, i]),
                )
                for i in order[: config.n_keywords]
            ]
        )
    return out


def _fold_terms(counts: sp.csr_matrix, terms: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Columns whose words fold to the same key (:func:`fold_plural`) summed into one, named by the form
    used most ("comedy" over "comedies" when "comedy" is more frequent; ties: alphabetical)."""
    keys = [" ".join(fold_plural(w) for w in str(t).split()) for t in terms]
    unique, inverse = np.unique(np.array(keys, dtype=object), return_inverse=True)
    if len(unique) == len(terms):
        return counts, terms
    merge = sp.csr_matrix((np.ones(len(terms)), (np.arange(len(terms)), inverse)), shape=(len(terms), len(unique)))
    freq = np.asarray(counts.sum(axis=0)).ravel()
    best: dict[int, int] = {}
    for i in np.lexsort((terms, -freq)):  # most frequent first, then alphabetical: the first seen wins
        best.setdefault(int(inverse[i]), int(i))
    names = np.array([str(terms[best[k]]) for k in range(len(unique))], dtype=object)
    return sp.csr_matrix(counts @ merge), names


def _merge_ngrams(order: list[int], terms: np.ndarray, counts: np.ndarray, *, inside: float = 0.5) -> list[int]:
    """Ranked term columns without repeats: a term that a kept longer n-gram contains is left out where at
    more than ``inside`` of its uses are in that n-gram ("wars" beside "star wars"); an n-gram whose every word
    is kept on its own and mostly used apart ("animation children's" beside "animation" and "children's")
    is left out."""
    words = {i: str(terms[i]).split() for i in order}

    def within(short: list[str], long: list[str]) -> bool:
        n = len(short)
        return n < len(long) and any(long[j : j + n] == short for j in range(len(long) - n + 1))

    said = [
        i
        for i in order
        if not any(within(words[i], words[j]) and counts[j] > inside * counts[i] for j in order if j != i)
    ]
    alone = {str(terms[i]): counts[i] for i in said if len(words[i]) == 1}
    return [
        i for i in said if len(words[i]) == 1 or not all(w in alone and counts[i] < inside * alone[w] for w in words[i])
    ]


def _item_words(
    dataset: Dataset, *, item_tags: int, item_tag_users: int, description_chars: int
) -> tuple[list[str], dict[int, list[str]]]:
    """Per item row, what describes it (genres; description; most used tags), stripped ("" where nothing),
    and per user row their own tags."""
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
        "; ".join(p for p in (genres[i], descriptions[i], ", ".join(tags_of_item.get(i, []))) if p).strip()
        for i in range(dataset.n_items)
    ]
    return about, user_tags


def own_texts(dataset: Dataset) -> dict[int, str]:
    """Per user row with an own text (neither missing nor ""), that text: :meth:`Dataset.user_texts` without
    a Python object per user."""
    users = dataset.users
    if "text" not in users.columns:
        return {}
    values = users["text"].to_numpy(dtype=object)
    present = np.flatnonzero(users["text"].notna().to_numpy() & (values != ""))
    return {int(row): str(values[row]) for row in present}


def _user_words(dataset: Dataset, user_tags: dict[int, list[str]], *, max_reviews: int) -> dict[int, list[str]]:
    """Per user row who wrote anything, their own text, reviews (the first ``max_reviews``) and tags (joined),
    each cleaned and stripped, blanks left out. Python runs per written text, not per user or interaction."""
    raw: dict[int, list[str]] = {row: [text] for row, text in own_texts(dataset).items()}
    reviews = dataset.reviews
    written = np.flatnonzero(reviews)  # None and "" are no review (truth values, in C)
    per_user: dict[int, int] = {}
    for user, review in zip(dataset.user_rows[written].tolist(), reviews[written].tolist(), strict=True):
        if isinstance(review, str) and per_user.get(user, 0) < max_reviews:
            per_user[user] = per_user.get(user, 0) + 1
            raw.setdefault(user, []).append(review)
    for user, tags in user_tags.items():
        if joined := ", ".join(tags):
            raw.setdefault(user, []).append(joined)
    out: dict[int, list[str]] = {}
    for row, pieces in raw.items():
        kept = [c.strip() for c in ((clean_text(p) or "") for p in pieces) if c.strip()]
        if kept:
            out[row] = kept
    return out


def _liked_pairs(dataset: Dataset, min_rating: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(user rows, item rows) of the liked interactions, in interaction order: rated ``min_rating`` or more,
    or every interaction of a user who rated none that high."""
    rows, cols = dataset.user_rows, dataset.item_rows
    if min_rating is None or not dataset.has_ratings:
        return rows, cols
    liked = np.nan_to_num(dataset.ratings, nan=-np.inf) >= min_rating
    none_liked = np.bincount(rows[liked], minlength=dataset.n_users) == 0
    liked |= none_liked[rows]  # users who never rated that high: all their items
    return rows[liked], cols[liked]


def descriptive_texts(
    dataset: Dataset,
    *,
    min_rating: float | None = 4.0,
    max_reviews: int = 20,
    item_tags: int = 5,
    item_tag_users: int = 2,
    description_chars: int = 300,
) -> list[str]:
    """Per user row, the words that describe the user: their own text, reviews (the first ``max_reviews``)
    and tags, then for every item they liked (rated ``min_rating`` or more; every item where they rated
    none that high) its genres, its description (cut to ``description_chars``) and its ``item_tags`` most
    used tags that at least ``item_tag_users`` users gave it. Item titles and ids are left out: they name
    films and products, they do not describe a group ("independence day", "id4"). Texts are cleaned
    (markup, links: :func:`personas.data.clean_text`). Pieces are separated by phrase ends, so no n-gram
    runs from one genre or item into the next."""
    about, user_tags = _item_words(
        dataset, item_tags=item_tags, item_tag_users=item_tag_users, description_chars=description_chars
    )
    own = _user_words(dataset, user_tags, max_reviews=max_reviews)
    rows, cols = _liked_pairs(dataset, min_rating)
    items_of: dict[int, list[int]] = {}
    for user, item in zip(rows.tolist(), cols.tolist(), strict=True):
        items_of.setdefault(user, []).append(item)
    return [
        ". ".join([*own.get(row, []), *(about[i] for i in dict.fromkeys(items_of.get(row, [])) if about[i])])
        for row in range(dataset.n_users)
    ]


def descriptive_keywords(
    dataset: Dataset,
    labels: np.ndarray,
    n_groups: int,
    config: KeywordConfig | None = None,
    *,
    min_rating: float | None = 4.0,
    ids: Collection[str] = (),
) -> list[list[Keyword]] | None:
    """``class_keywords(descriptive_texts(dataset, min_rating=min_rating), ...)`` without writing the texts:
    the (users x phrases) counts are (users x items liked) @ (items x phrases) plus the phrases of what users
    wrote, so Python runs once per item, per written text and per distinct phrase, never per user. None where
    no user has descriptive words (the caller falls back to other texts)."""
    config = config or KeywordConfig()
    about, user_tags = _item_words(dataset, item_tags=5, item_tag_users=2, description_chars=300)
    own = _user_words(dataset, user_tags, max_reviews=20)
    if any(has_han(t) for t in about) or any(has_han(p) for pieces in own.values() for p in pieces):
        # segmenting Chinese is not phrase by phrase: the texts are written and segmented whole
        texts = descriptive_texts(dataset, min_rating=min_rating)
        return class_keywords(texts, labels, n_groups, config, ids=ids) if any(t.strip() for t in texts) else None
    # Sources: the items (their words), then each writing user's pieces; a text is its sources' phrases put
    # together, as pieces are joined by phrase ends (". ").
    writers = np.fromiter(own, dtype=np.int64, count=len(own))
    sources, phrases = phrase_matrix([*about, *(". ".join(own[int(r)]) for r in writers)], _PHRASE_END)
    users, items = _liked_pairs(dataset, min_rating)
    said = np.array([bool(t) for t in about], dtype=bool)[items]  # items with no words add nothing
    rows = np.concatenate([users[said], writers])
    cols = np.concatenate([items[said], dataset.n_items + np.arange(len(writers))])
    incidence = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(dataset.n_users, len(about) + len(writers))
    )
    del users, items, said, rows, cols  # ~0.25 GB at 10^6 users, not needed by the counting below
    incidence.sum_duplicates()
    incidence.data[:] = 1  # an item liked twice is one piece of the text
    n_docs = int(np.count_nonzero(np.diff(incidence.indptr)))
    if n_docs == 0:
        return None
    if n_groups == 0:
        return []
    counts = sp.csr_matrix(incidence @ sources)
    del incidence
    return _phrase_keywords((counts, phrases), n_docs, labels, n_groups, config, ids)


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
