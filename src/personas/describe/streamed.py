"""Persona cards from chunks of users: every fact on a card is a per-group count, summed chunk by chunk.

:class:`GroupFacts` takes the users a chunk at a time (a :class:`~personas.data.Dataset` of the chunk's users
with every item, their labels and unit vectors) and keeps only per-group tables: term uses and users per term
(keywords), members who liked each item (distinctive items), members per attribute value (attribute skew) and
vector sums (centroids). A second pass (:meth:`GroupFacts.add_representatives`) keeps each group's best
representatives seen so far. :meth:`GroupFacts.personas` then scores them with the same functions as
:func:`~personas.describe.describe_groups`, so on the same users, labels and vectors the cards are the same:
keywords, names, distinctive items and attribute skew exactly; representatives up to float rounding of the
centroid sums (summed per chunk in float64 here, in one float32 product there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from personas.data import Dataset
from personas.data.columnar import group_item_counts, phrase_matrix
from personas.data.language import has_han
from personas.describe._describe import DescribeConfig, assemble_personas, own_words
from personas.describe.facts import (
    add_skews,
    age_band,
    group_distinctive_items,
    quote,
    sorted_skews,
)
from personas.describe.keywords import (
    _PHRASE_END,
    _TOKEN,
    STOP_WORDS,
    _analyzer,
    _item_words,
    _user_words,
    fold_plural,
    group_keywords,
)
from personas.describe.keywords import _liked_pairs as _described_pairs
from personas.describe.persona import AttributeSkew, Keyword, Persona, Representative
from personas.errors import DataError

__all__ = ["AttributePlan", "GroupFacts", "KeywordCounts"]

_MAX_FORMS = 62  # forms of one folded term, one bit each in an int64 mask


class KeywordCounts:
    """The counts :func:`~personas.describe.class_keywords` scores, summed over chunks of documents.

    Documents arrive as (documents x phrases) counts over one growing phrase vocabulary; each new phrase is
    analysed once. Kept per raw term: uses per group, documents with it (``min_df``), uses overall (which
    plural names a folded term); per group and folded term, how many members have each combination of its
    forms, so that members with a form dropped by ``min_df`` count exactly as in the one-pass path."""

    def __init__(self, n_groups: int, config: DescribeConfig, *, stop: frozenset[str], user_ids: pa.Array) -> None:
        if config.keywords.max_df < 1.0:
            raise DataError(
                "The streamed engine counts keywords with max_df = 1.0 only (boilerplate needs a second pass). "
                f"Got max_df = {config.keywords.max_df} instead."
            )
        self.n_groups = n_groups
        self.config = config.keywords
        self.stop = set(stop)
        self.user_ids = user_ids  # lower-cased: a word that is a user id is a stop word, as in class_keywords
        self.phrases: dict[str, int] = {}
        self.analysed = 0
        self.phrase_rows: list[int] = []
        self.phrase_cols: list[int] = []
        self.terms: dict[str, int] = {}
        self.term_key: list[int] = []
        self.term_bit: list[int] = []
        self.keys: dict[str, int] = {}
        self.key_forms: list[int] = []
        self.df = np.zeros(0, dtype=np.int64)
        self.total = np.zeros(0, dtype=np.int64)
        self.per_group = np.zeros((n_groups, 0), dtype=np.int64)
        self.masks: dict[tuple[int, int, int], int] = {}
        self.n_docs = 0

    def phrase_ids(self, phrases: Sequence[str]) -> np.ndarray:
        """Global ids of ``phrases`` (new ones are added)."""
        return np.fromiter((self.phrases.setdefault(p, len(self.phrases)) for p in phrases), np.int64, len(phrases))

    def _analyse_new(self) -> None:
        new = list(self.phrases)[self.analysed :]
        if not new:
            return
        words = sorted({w for p in new for w in _TOKEN.findall(p)})
        if words:  # user ids among them: stop words (checked here, once per new word, not as a set of all ids)
            found = pc.is_in(pa.array(words, type=pa.string()), value_set=self.user_ids).to_numpy(zero_copy_only=False)
            self.stop.update(w for w, hit in zip(words, found, strict=True) if hit)
        analyse = _analyzer(frozenset(self.stop), self.config.ngram_max, digits=self.config.digit_words)
        for row, phrase in enumerate(new, start=self.analysed):
            for term in analyse(phrase):
                self.phrase_rows.append(row)
                self.phrase_cols.append(self._term(term))
        self.analysed = len(self.phrases)

    def _term(self, term: str) -> int:
        index = self.terms.get(term)
        if index is not None:
            return index
        index = self.terms[term] = len(self.terms)
        key = " ".join(fold_plural(w) for w in term.split()) if self.config.fold_plurals else term
        k = self.keys.setdefault(key, len(self.keys))
        if k == len(self.key_forms):
            self.key_forms.append(0)
        if self.key_forms[k] >= _MAX_FORMS:
            raise DataError(f"The term {key!r} has more than {_MAX_FORMS} plural forms; the streamed engine stops.")
        self.term_key.append(k)
        self.term_bit.append(1 << self.key_forms[k])
        self.key_forms[k] += 1
        return index

    def add(self, docs: sp.csr_matrix, labels: np.ndarray, n_docs: int) -> None:
        """A chunk: (documents x phrase ids) counts, each document's label, how many are not blank."""
        self._analyse_new()
        n_terms = len(self.terms)
        per_phrase = sp.csr_matrix(
            (np.ones(len(self.phrase_rows), dtype=np.int64), (self.phrase_rows, self.phrase_cols)),
            shape=(len(self.phrases), n_terms),
        )
        docs = sp.csr_matrix(docs, dtype=np.int64)
        docs.resize((docs.shape[0], len(self.phrases)))
        counts = sp.csr_matrix(docs @ per_phrase)
        counts.eliminate_zeros()
        counts.sum_duplicates()
        self.n_docs += n_docs
        grow = n_terms - len(self.df)
        self.df = np.concatenate([self.df, np.zeros(grow, dtype=np.int64)])
        self.total = np.concatenate([self.total, np.zeros(grow, dtype=np.int64)])
        self.per_group = np.hstack([self.per_group, np.zeros((self.n_groups, grow), dtype=np.int64)])
        self.df += np.bincount(counts.indices, minlength=n_terms)
        self.total += np.asarray(counts.sum(axis=0)).ravel().astype(np.int64)
        keep = labels >= 0
        member = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.int64), (labels[keep], np.flatnonzero(keep))),
            shape=(self.n_groups, counts.shape[0]),
        )
        self.per_group += np.asarray((member @ counts).todense(), dtype=np.int64)
        # Per (document, folded term): which of its forms the document has, as a bit mask.
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        groups = labels[rows]
        mine = groups >= 0
        rows, cols, groups = rows[mine], counts.indices[mine], groups[mine]
        if not len(rows):
            return
        keys = np.asarray(self.term_key, dtype=np.int64)[cols]
        bits = np.asarray(self.term_bit, dtype=np.int64)[cols]
        pair = rows.astype(np.int64) * len(self.key_forms) + keys
        order = np.argsort(pair, kind="stable")
        pair, bits, groups, keys = pair[order], bits[order], groups[order], keys[order]
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        masks = np.bitwise_or.reduceat(bits, starts)
        groups, keys = groups[starts], keys[starts]
        bits = max(int(max(self.key_forms)), 1)
        if (self.n_groups * len(self.key_forms)) << bits < 2**62:  # one int64 per triple: a 1-D unique
            packed, counted = np.unique(((groups * len(self.key_forms) + keys) << bits) | masks, return_counts=True)
            cells, masks_ = np.divmod(packed, 1 << bits)
            unique = np.stack([*np.divmod(cells, len(self.key_forms)), masks_], axis=1)
        else:
            unique, counted = np.unique(np.stack([groups, keys, masks], axis=1), axis=0, return_counts=True)
        for (g, k, m), c in zip(unique.tolist(), counted.tolist(), strict=True):
            self.masks[(g, k, m)] = self.masks.get((g, k, m), 0) + c

    def keywords(self, sizes: np.ndarray) -> list[list[Keyword]] | None:
        """Each group's keywords; None when no document had a word (the caller falls back to other texts)."""
        if self.n_docs == 0:
            return None
        empty: list[list[Keyword]] = [[] for _ in range(self.n_groups)]
        if self.n_groups == 0:
            return empty
        kept = np.flatnonzero(self.df >= min(self.config.min_df, self.n_docs))
        if not len(kept):
            return empty
        names = np.asarray(list(self.terms), dtype=object)
        term_key = np.asarray(self.term_key, dtype=np.int64)
        kept_mask = np.zeros(len(self.key_forms), dtype=np.int64)
        np.bitwise_or.at(kept_mask, term_key[kept], np.asarray(self.term_bit, dtype=np.int64)[kept])
        keys = np.unique(term_key[kept])
        column = {int(k): c for c, k in enumerate(keys)}
        per_group = np.zeros((self.n_groups, len(keys)), dtype=np.float64)
        np.add.at(per_group.T, [column[int(k)] for k in term_key[kept]], self.per_group[:, kept].T)
        users = np.zeros_like(per_group)
        for (g, k, m), c in self.masks.items():
            if k in column and m & int(kept_mask[k]):
                users[g, column[k]] += c
        # A folded term is named by its form used most (ties: alphabetical), as _fold_terms does.
        best: dict[int, tuple[int, str]] = {}
        for t in kept:
            k, candidate = int(term_key[t]), (-int(self.total[t]), str(names[t]))
            if k not in best or candidate < best[k]:
                best[k] = candidate
        terms = np.asarray([best[int(k)][1] for k in keys], dtype=object)
        return group_keywords(per_group, users, np.asarray(sizes, dtype=np.float64), terms, self.config)


class AttributePlan:
    """Which user columns attribute skew reads, decided on every user as :func:`attribute_skew` does: columns
    with 2..50 distinct values (or ``attributes``), age as bands when any age is a number."""

    def __init__(self, config: DescribeConfig) -> None:
        self.config = config.facts
        self.values: dict[str, set[Any]] = {}
        self.numeric_age = False
        self.columns: list[str] = []

    def add(self, users: pd.DataFrame) -> None:
        for column in users.columns:
            if column in ("user_id", "text"):
                continue
            if column == "age":
                self.numeric_age |= bool(pd.to_numeric(users[column], errors="coerce").notna().any())
            if column not in self.columns:
                self.columns.append(column)
            seen = self.values.setdefault(column, set())
            if len(seen) <= 50:
                seen.update(users[column].dropna().unique().tolist())

    def chosen(self) -> list[tuple[str, str]]:
        """(attribute name on the cards, user column) in the order attribute_skew takes them."""
        names = self.config.attributes
        if names is None:
            names = tuple(c for c in self.columns if c != "age" and 2 <= len(self.values.get(c, ())) <= 50)
            if "age" in self.columns:
                names = ("age", *names)
        out = []
        for name in names:
            if name not in self.columns:
                continue
            out.append(("age band" if name == "age" and self.numeric_age else name, name))
        return out


class GroupFacts:
    """Describe's per-group counts over chunks of users, then the cards (see the module docstring).

    ``item_ids``/``titles`` name the items (every chunk holds every item); ``user_ids`` are all users' ids
    (an Arrow string array: a word equal to one is never a keyword); ``has_ratings``: whether any
    interaction of the whole data has a rating (liked items are those rated ``min_rating`` or more then)."""

    def __init__(
        self,
        n_groups: int,
        *,
        item_ids: np.ndarray,
        titles: np.ndarray,
        user_ids: pa.Array,
        has_ratings: bool,
        attributes: list[tuple[str, str]],
        config: DescribeConfig | None = None,
    ) -> None:
        self.config = config or DescribeConfig()
        self.n_groups = n_groups
        self.item_ids = item_ids
        self.titles = titles
        self.has_ratings = has_ratings
        self.attributes = attributes
        stop = frozenset(
            STOP_WORDS | {w.lower() for w in self.config.keywords.extra_stop_words} | {str(i).lower() for i in item_ids}
        )
        lowered = pc.utf8_lower(user_ids)
        self.words = KeywordCounts(n_groups, self.config, stop=stop, user_ids=lowered)
        self.texts = KeywordCounts(n_groups, self.config, stop=stop, user_ids=lowered)
        self.sizes = np.zeros(n_groups, dtype=np.int64)
        self.n_users = 0
        n_items = len(item_ids)
        self.supports = np.zeros((n_groups, n_items), dtype=np.int64)
        self.likers = np.zeros(n_items, dtype=np.int64)
        self.values: dict[str, dict[str, np.ndarray]] = {name: {} for name, _ in attributes}
        self.sums: np.ndarray | None = None
        self.about: list[str] | None = None
        self.sources: sp.csr_matrix | None = None
        self.candidates: list[list[tuple[float, int, str, str]]] = [[] for _ in range(n_groups)]
        self.keywords_: list[list[Keyword]] | None = None
        #: Whether any user wrote anything (own text, reviews): only then do representatives need quotes.
        self.wrote = False

    # ---------------------------------------------------------------------------------------- pass 1
    def add(self, dataset: Dataset, labels: np.ndarray, vectors: np.ndarray | None) -> None:
        """One chunk: its users (``dataset``: those users, every item), their labels and unit vectors."""
        labels = np.asarray(labels, dtype=np.int64)
        self.n_users += dataset.n_users
        self.sizes += np.bincount(labels[labels >= 0], minlength=self.n_groups)
        self._add_words(dataset, labels)
        self._add_items(dataset, labels)
        self._add_attributes(dataset.users, labels)
        if vectors is not None:
            unit = _unit(vectors)
            keep = np.flatnonzero(labels >= 0)
            onehot = sp.csr_matrix((np.ones(len(keep)), (labels[keep], keep)), shape=(self.n_groups, len(labels)))
            sums = np.asarray(onehot @ unit.astype(np.float64))
            self.sums = sums if self.sums is None else self.sums + sums

    @property
    def needs_texts(self) -> bool:
        """Whether no user had descriptive words: the keywords then come from the profile texts
        (:meth:`add_texts`, a pass over them), as ``describe_groups`` falls back to its ``texts``."""
        return self.words.n_docs == 0

    def add_texts(self, texts: Sequence[str | None], labels: np.ndarray) -> None:
        """One chunk of profile texts (the keywords' fallback, see :attr:`needs_texts`)."""
        docs = [t or "" for t in texts]
        if any(has_han(d) for d in docs):
            raise DataError("The streamed engine does not segment Chinese profile texts; run without streaming.")
        matrix, phrases = phrase_matrix(docs, _PHRASE_END)
        ids = self.texts.phrase_ids(phrases)
        matrix = sp.csr_matrix((matrix.data, ids[matrix.indices], matrix.indptr), shape=(len(docs), len(ids)))
        self.texts.add(matrix, np.asarray(labels, dtype=np.int64), sum(1 for d in docs if d.strip()))

    def _add_words(self, dataset: Dataset, labels: np.ndarray) -> None:
        """descriptive_keywords's documents: each liked item's words, then what the user wrote."""
        if self.about is None:
            self.about, _ = _item_words(dataset, item_tags=5, item_tag_users=2, description_chars=300)
            if any(has_han(t) for t in self.about):
                raise DataError("The streamed engine does not segment Chinese item texts; run without streaming.")
            matrix, phrases = phrase_matrix(self.about, _PHRASE_END)
            ids = self.words.phrase_ids(phrases)
            self.sources = sp.csr_matrix(
                (matrix.data, ids[matrix.indices], matrix.indptr), shape=(len(self.about), len(ids))
            )
        assert self.sources is not None
        if dataset.tags is not None and len(dataset.tags):
            raise DataError("The streamed engine does not read tags; run without streaming.")
        own = _user_words(dataset, {}, max_reviews=20)
        self.wrote |= bool(own)
        if any(has_han(p) for pieces in own.values() for p in pieces):
            raise DataError("The streamed engine does not segment Chinese texts; run without streaming.")
        writers = np.fromiter(own, dtype=np.int64, count=len(own))
        written, phrases = phrase_matrix([". ".join(own[int(r)]) for r in writers], _PHRASE_END)
        ids = self.words.phrase_ids(phrases)
        n_phrases = len(self.words.phrases)
        users, items = _described_pairs(dataset, self.config.facts.min_rating)
        said = np.array([bool(t) for t in self.about], dtype=bool)[items]
        incidence = sp.csr_matrix(
            (np.ones(int(said.sum()), dtype=np.int64), (users[said], items[said])),
            shape=(dataset.n_users, len(self.about)),
        )
        incidence.sum_duplicates()
        incidence.data[:] = 1
        sources = self.sources.copy()
        sources.resize((len(self.about), n_phrases))
        docs = sp.csr_matrix(incidence @ sources)
        if len(writers):
            by_writer = sp.csr_matrix(
                (written.data, ids[written.indices], written.indptr), shape=(len(writers), n_phrases)
            )
            lift = sp.csr_matrix(
                (np.ones(len(writers), dtype=np.int64), (writers, np.arange(len(writers)))),
                shape=(dataset.n_users, len(writers)),
            )
            docs = sp.csr_matrix(docs + lift @ by_writer)
        has_doc = np.diff(incidence.indptr) > 0
        has_doc[writers] = True
        self.words.add(docs, labels, int(has_doc.sum()))

    def _add_items(self, dataset: Dataset, labels: np.ndarray) -> None:
        keep = np.ones(dataset.n_interactions, dtype=bool)
        if self.config.facts.min_rating is not None and self.has_ratings:
            keep = np.nan_to_num(dataset.ratings, nan=-np.inf) >= self.config.facts.min_rating
        liked = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.int32), (dataset.user_rows[keep], dataset.item_rows[keep])),
            shape=(dataset.n_users, dataset.n_items),
        )
        liked.sum_duplicates()
        users = np.repeat(np.arange(dataset.n_users), np.diff(liked.indptr))
        self.supports += group_item_counts(
            users, liked.indices, labels, self.n_groups, dataset.n_items, distinct=True
        ).astype(np.int64)
        self.likers += np.bincount(liked.indices, minlength=dataset.n_items)

    def _add_attributes(self, users: pd.DataFrame, labels: np.ndarray) -> None:
        for name, column in self.attributes:
            if name == "age band":
                series = age_band(pd.to_numeric(users[column], errors="coerce"), self.config.facts.age_bands)
            else:
                series = users[column].astype(object)
            known = pd.notna(series).to_numpy()
            if not known.any():
                continue
            vals, codes = np.unique(series.to_numpy(dtype=object)[known].astype(str), return_inverse=True)
            mine = labels[known]
            cells = np.where(mine >= 0, mine, self.n_groups) * len(vals) + codes
            table = np.bincount(cells, minlength=(self.n_groups + 1) * len(vals)).reshape(self.n_groups + 1, -1)
            store = self.values[name]
            for v, value in enumerate(vals.tolist()):
                store[value] = store.get(value, np.zeros(self.n_groups + 1, dtype=np.int64)) + table[:, v]

    # ---------------------------------------------------------------------------------------- pass 2
    def centroids(self) -> np.ndarray | None:
        """Each group's unit mean direction of its members' unit vectors (None: no vectors given)."""
        if self.sums is None:
            return None
        norms = np.linalg.norm(self.sums, axis=1, keepdims=True)
        return np.divide(self.sums, norms, out=np.zeros_like(self.sums), where=norms > 0).astype(np.float32)

    def keywords(self) -> list[list[Keyword]]:
        """Each group's keywords (computed once, after pass 1): descriptive words, else the profile texts."""
        if self.keywords_ is None:
            found = self.words.keywords(self.sizes)
            if found is None and self.texts.n_docs:
                found = self.texts.keywords(self.sizes)
            self.keywords_ = found if found is not None else [[] for _ in range(self.n_groups)]
        return self.keywords_

    def add_representatives(
        self, dataset: Dataset | None, labels: np.ndarray, vectors: np.ndarray, offset: int, user_ids: Sequence[str]
    ) -> None:
        """Pass 2, one chunk: each group's members most similar to its centroid (``offset``: the chunk's first
        user row, so ties go to the earlier user as in :func:`~personas.describe.facts.representatives`).
        ``dataset`` (the chunk's users) gives their quotes; None where nobody wrote anything (:attr:`wrote`)."""
        centroids = self.centroids()
        n_keep = self.config.facts.n_representatives
        if centroids is None or n_keep == 0:
            return
        labels = np.asarray(labels, dtype=np.int64)
        unit = _unit(vectors)
        quotes: list[str] | None = None
        for g in range(self.n_groups):
            members = np.flatnonzero(labels == g)
            if not len(members):
                continue
            x = unit[members]
            norms = np.linalg.norm(x, axis=1)
            sims = (x @ centroids[g]) / np.where(norms > 0, norms, 1.0)
            best = np.lexsort((members, -sims))[:n_keep]
            if quotes is None:
                quotes = own_words(dataset) if dataset is not None else [""] * len(labels)
            self.candidates[g].extend(
                (float(sims[i]), offset + int(members[i]), str(user_ids[members[i]]), quotes[members[i]] or "")
                for i in best
            )
            self.candidates[g].sort(key=lambda c: (-c[0], c[1]))
            del self.candidates[g][n_keep:]

    # ---------------------------------------------------------------------------------------- cards
    def personas(self) -> list[Persona]:
        keywords = self.keywords()
        facts = self.config.facts
        items = group_distinctive_items(
            self.supports,
            self.likers,
            self.sizes,
            self.n_users,
            titles=self.titles,
            item_ids=self.item_ids,
            config=facts,
        )
        skews: list[list[AttributeSkew]] = [[] for _ in range(self.n_groups)]
        if self.n_groups:
            for name, _ in self.attributes:
                store = self.values[name]
                if not store:
                    continue
                vals = np.asarray(sorted(store), dtype=str)
                table = np.stack([store[v] for v in vals.tolist()], axis=1)
                add_skews(skews, name, vals, table[: self.n_groups], table.sum(axis=0), facts)
        skews = sorted_skews(skews, facts)
        reps = [
            [
                Representative(user_id=uid, similarity=sim, quote=quote(text, keywords[g], facts.quote_words))
                for sim, _, uid, text in self.candidates[g]
            ]
            for g in range(self.n_groups)
        ]
        return assemble_personas(keywords, reps, items, skews, self.sizes, self.n_users, self.config)


def _unit(vectors: np.ndarray) -> np.ndarray:
    vecs = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
