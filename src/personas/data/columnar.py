"""The columnar data layer: large inputs as whole columns, never one Python object per interaction.

The engine is Arrow (``pyarrow.compute``, already a base dependency) for strings and files, with numpy for
the integer group-bys (sort, bincount, cumulative sums per user). ``bench/columnar.py`` measures it against
Polars and DuckDB on the same task.

- :func:`profile_texts`: the profile text of every user, exactly as the per-user loop of
  :func:`personas.data.build_profiles` writes it, built per column: interactions sorted per user once, the
  liked items chosen by masks, the token budget as a cumulative sum of per-item token counts, the item names
  joined per user by Arrow's ``binary_join``. Python runs once per item, per distinct demographics value and
  per user-written text (their tokens must be counted), not once per interaction. Strings are joined one
  block of users at a time: Arrow never holds every user's names at once.
- :func:`group_item_counts`: users of each group who took each item, as one group-by over interaction rows.
- :func:`group_counts`: the same counts from a binary users x items matrix, as one sparse product.
- :func:`phrase_matrix` and :func:`term_counts`: the document x term counts of a phrase-wise analyser (such as
  the keyword analyser of ``personas.describe``) with each distinct phrase analysed once: profile texts repeat
  the same item names across millions of users. ``describe``'s keywords are counted with them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from personas.data._profile_config import count_tokens, within
from personas.data._template import fill_template
from personas.data.dataset import Dataset
from personas.data.items import item_texts

if TYPE_CHECKING:
    from personas.data._profile_config import ProfileConfig

__all__ = ["additive_separators", "group_counts", "group_item_counts", "phrase_matrix", "profile_texts", "term_counts"]

_WORD_CHAR = re.compile(r"\w")
# What _join (profiles.py) takes for the end of a sentence.
_SENTENCE_ENDS = (".", "!", "?", "。", "！", "？")
_BLOCK = 200_000  # users whose profile strings are joined at a time


def _edge_safe(text: str) -> bool:
    """True when ``text`` starts and ends with a character that cannot join a word token across it."""
    return bool(text) and not _WORD_CHAR.match(text[0]) and not _WORD_CHAR.match(text[-1])


def additive_separators(config: ProfileConfig) -> bool:
    """Whether token counts add up across every junction the profile builder writes, so that the count of
    a joined text is the sum of its pieces' counts plus its separators' (count_tokens takes words and single
    punctuation marks: "a" + "; " + "b" is 1 + 1 + 1, but "a" + "b" would be one word).

    True for the default separators and templates; otherwise :func:`profile_texts` declines."""
    separator = config.part_separator
    if not _edge_safe(separator):
        return False
    if separator.startswith(".") and len(separator) > 1 and not _edge_safe(separator[1:]):
        return False
    if not _edge_safe(config.item_separator):
        return False
    prefix, _, suffix = config.behaviour_template.partition("{items}")
    return (not prefix or not _WORD_CHAR.match(prefix[-1])) and (not suffix or not _WORD_CHAR.match(suffix[0]))


class _Part:
    """One part of every user's profile: its text (``""`` where absent), token count and sentence end."""

    def __init__(self, texts: pa.Array, tokens: np.ndarray, ends: np.ndarray, blank: np.ndarray) -> None:
        self.texts = texts  # pa.string, one per user
        self.tokens = tokens  # int64
        self.ends = ends  # bool: the text's last non-space character ends a sentence
        self.blank = blank  # bool: present but only whitespace
        self.present = pc.not_equal(texts, "").to_numpy(zero_copy_only=False)

    def block(self, start: int, size: int) -> pa.Array:
        """The texts of users ``start .. start + size - 1``."""
        return self.texts.slice(start, size)


class _BehaviourPart(_Part):
    """The behaviour part, whose strings are written one block of users at a time: joined for every user at
    once, its item names would be held three times over (taken, joined, framed), ~1 GB at 10^6 users."""

    def __init__(
        self,
        names: pa.Array,
        items: np.ndarray,
        counts: np.ndarray,
        frame: tuple[str, str, str],
        tokens: np.ndarray,
        ends: np.ndarray,
    ) -> None:
        self.names = names  # pa.string, one per item
        self.items = items  # kept item rows, users in order
        self.counts = counts  # kept items per user
        self.starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.starts[1:])
        self.frame = frame  # prefix, item separator, suffix
        self.tokens = tokens
        self.ends = ends
        self.present = counts > 0
        self.blank = np.zeros(len(counts), dtype=bool)

    def block(self, start: int, size: int) -> pa.Array:
        prefix, separator, suffix = self.frame
        items = self.items[self.starts[start] : self.starts[start + size]]
        joined = _grouped_join(self.names.take(pa.array(items)), self.counts[start : start + size], separator)
        return pc.if_else(pa.array(self.present[start : start + size]), _concat(prefix, joined, suffix), "")


def _python_part(values: Sequence[str]) -> _Part:
    """A part written by users (own text, reviews, tags): its tokens must be read, once per present text."""

    n = len(values)
    tokens = np.zeros(n, dtype=np.int64)
    ends = np.zeros(n, dtype=bool)
    blank = np.zeros(n, dtype=bool)
    for row, text in enumerate(values):
        if text:
            tokens[row] = count_tokens(text)
            stripped = text.rstrip()
            ends[row] = stripped[-1:] in _SENTENCE_ENDS
            blank[row] = not stripped
    return _Part(pa.array(values, type=pa.string()), tokens, ends, blank)


def _grouped_join(strings: pa.Array, counts: np.ndarray, separator: str) -> pa.Array:
    """``separator.join`` of consecutive runs of ``strings``, ``counts[u]`` strings for user ``u``."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), strings)
    return pc.binary_join(lists, separator)


def _concat(*columns: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*columns, "")


def _sorted_interactions(dataset: Dataset) -> np.ndarray:
    """Interaction indices (int32 where they fit) per user, newest first (ties: item row)."""
    users, times, items = dataset.user_rows, dataset.timestamps, dataset.item_rows
    newest = int(times.max()) if len(times) else 0
    span = newest - int(times.min()) + 1 if len(times) else 1
    if dataset.n_users * span * max(dataset.n_items, 1) < 2**62:
        # One int64 key (user, newest first, item) and one stable sort: a third of lexsort's three passes.
        # Built in place: each temporary is one more array of 8 bytes per interaction.
        key = users.astype(np.int64)
        key *= span
        key += newest
        key -= times
        key *= max(dataset.n_items, 1)
        key += items
        order = np.argsort(key, kind="stable")
        del key
    else:
        order = np.lexsort((items, -times, users))
    return order.astype(np.int32) if len(order) < 2**31 else order


def _per_user_rank(users: np.ndarray, n_users: int) -> np.ndarray:
    """0, 1, 2... within each run of equal (sorted) user rows."""
    starts = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=starts[1:])
    return np.arange(len(users), dtype=np.int64) - starts[users]


def _own_text(dataset: Dataset) -> _Part:
    return _python_part([t or "" for t in dataset.user_texts()])


def _reviews(dataset: Dataset, order: np.ndarray, max_reviews: int) -> _Part:
    has = dataset.reviews.astype(bool)  # bool() of each value, in C: None and "" are no review, as in the loop
    if max_reviews <= 0 or not has.any():
        return _python_part([""] * dataset.n_users)
    rows = order[has[order]]
    users = dataset.user_rows[rows]
    keep = _per_user_rank(users, dataset.n_users) < max_reviews
    chosen = dataset.reviews[rows[keep]]
    counts = np.bincount(users[keep], minlength=dataset.n_users)
    if not len(chosen):
        return _python_part([""] * dataset.n_users)
    joined = _grouped_join(pa.array(chosen.tolist(), type=pa.string()), counts, " ")
    return _python_part(joined.to_pylist())


def _tags(dataset: Dataset, max_tags: int) -> _Part:
    texts = [""] * dataset.n_users
    frame = dataset.tags
    if frame is not None:
        by_user: dict[int, list[str]] = {}
        for user, tag in zip(frame["user"].to_numpy(), frame["tag"].to_numpy(), strict=True):
            by_user.setdefault(int(user), []).append(str(tag))
        for user, tags in by_user.items():
            texts[user] = "tags: " + ", ".join(list(dict.fromkeys(tags))[:max_tags])
    return _python_part(texts)


def _demographics(dataset: Dataset, config: ProfileConfig) -> _Part:
    """fill_template once per distinct combination of the template's fields (ages x genders x occupations),
    not once per user: the filled text depends only on each field's ``str`` and on whether it is missing."""

    users = dataset.users
    fields = sorted({name for _, name, _, _ in _parse(config.demographics_template) if name and name in users.columns})
    if not fields:
        text = fill_template(config.demographics_template, {}, config.value_maps)
        n = dataset.n_users
        return _python_part([text] * n)
    keys = pd.DataFrame(
        {
            name: [
                None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                for v in users[name].to_numpy(dtype=object)
            ]
            for name in fields
        }
    )
    codes = keys.groupby(fields, sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    combos = [
        {name: value for name, value in zip(fields, keys.iloc[row], strict=True) if value is not None} for row in first
    ]
    filled = [fill_template(config.demographics_template, combo, config.value_maps) for combo in combos]
    tokens = np.array([count_tokens(t) for t in filled], dtype=np.int64)
    ends = np.array([t.rstrip()[-1:] in _SENTENCE_ENDS for t in filled], dtype=bool)
    blank = np.array([bool(t) and not t.strip() for t in filled], dtype=bool)
    return _Part(pa.array(filled, type=pa.string()).take(pa.array(codes)), tokens[codes], ends[codes], blank[codes])


def _parse(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    import string

    return list(string.Formatter().parse(template))


def _behaviour(
    dataset: Dataset,
    config: ProfileConfig,
    order: np.ndarray,
    used: np.ndarray,
) -> _Part:
    """ "liked: A; B; ..." per user: liked items (or the highest rated), newest first, each once, as many as
    the token budget left after the parts before (``used`` tokens) allows."""

    n_users, n_items = dataset.n_users, dataset.n_items
    texts = item_texts(dataset, "template", template=config.item_template, value_maps=config.value_maps)
    item_tokens = np.array([count_tokens(t) for t in texts], dtype=np.int64)
    has_text = np.array([bool(t) for t in texts], dtype=bool)
    item_ends = np.array([t.rstrip()[-1:] in _SENTENCE_ENDS for t in texts], dtype=bool)
    users = dataset.user_rows[order]
    items = dataset.item_rows[order]
    chosen = has_text[items]
    if config.min_rating is not None:
        ratings = dataset.ratings[order]
        rated = ~np.isnan(ratings)
        any_rated = np.zeros(n_users, dtype=bool)
        any_rated[users[rated]] = True
        liked = ratings >= config.min_rating
        any_liked = np.zeros(n_users, dtype=bool)
        any_liked[users[liked]] = True
        best = np.full(n_users, -np.inf)
        np.maximum.at(best, users[rated], ratings[rated])
        # Liked items; none rated high enough: the highest rated; no rating: every item (as the loop does).
        # Written by positions, not as whole-array np.where: each temporary is 8 bytes per interaction.
        short = np.flatnonzero(~any_liked[users])
        liked[short] = ratings[short] == best[users[short]]
        liked[~any_rated[users]] = True
        chosen &= liked
        del ratings, rated, liked, short
    users, items = users[chosen], items[chosen]
    del chosen
    if len(users):  # each item once per user, its newest interaction
        key = users.astype(np.int64)
        key *= n_items
        key += items
        sort = np.argsort(key, kind="stable")
        key = key[sort]
        first = np.ones(len(key), dtype=bool)
        first[sort[1:]] = key[1:] != key[:-1]
        del key, sort
        users, items = users[first], items[first]
        del first
    separator = count_tokens(config.item_separator)
    budget = config.max_tokens - used - count_tokens(config.behaviour_template.replace("{items}", ""))
    running = item_tokens[items]
    running += separator
    np.cumsum(running, out=running)
    starts = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=starts[1:])
    before = np.zeros(n_users, dtype=np.int64)  # each user's running cost before their first item
    after = starts[:-1] > 0
    before[after] = running[starts[:-1][after] - 1]
    # The names joined so far cost sum(tokens) + (m - 1) separators; the loop stops at the first that does
    # not fit, and the sum only grows, so the names kept are those whose running cost fits.
    running -= before[users]
    running -= separator
    fits = running <= budget[users]
    del running
    users, items = users[fits], items[fits]
    del fits
    counts = np.bincount(users, minlength=n_users)
    prefix, _, suffix = config.behaviour_template.partition("{items}")
    present = counts > 0
    cost = np.bincount(users, weights=item_tokens[items], minlength=n_users).astype(np.int64)
    tokens = np.where(present, cost + (counts - 1) * separator + count_tokens(prefix) + count_tokens(suffix), 0)
    last = np.zeros(n_users, dtype=np.int64)
    ends_at = np.cumsum(counts) - 1  # users are sorted: each user's last kept item
    last[present] = items[ends_at[present]]
    # Template item texts are stripped and non-empty: without a suffix, the last name ends the part.
    ends = np.full(n_users, suffix.rstrip()[-1:] in _SENTENCE_ENDS) if suffix.strip() else item_ends[last]
    # Every kept name is non-empty, so a user's part is present exactly when some item was kept.
    frame = (prefix, config.item_separator, suffix)
    return _BehaviourPart(pa.array(texts, type=pa.string()), items, counts, frame, tokens, ends & present)


def profile_texts(dataset: Dataset, config: ProfileConfig, *, block: int = _BLOCK) -> list[str] | None:
    """Every user's profile text, equal string for string to the per-user loop of ``build_profiles`` with
    the default token counter; None where the config's separators or templates could merge tokens across a
    junction (:func:`additive_separators`), where only the loop is exact. The parts are joined ``block``
    users at a time (the joined strings of every user are never held twice)."""

    if not additive_separators(config):
        return None
    n_users = dataset.n_users
    order = _sorted_interactions(dataset)
    separator = config.part_separator
    short = separator[1:] if separator.startswith(".") else separator
    sep_tokens, short_tokens = count_tokens(separator), count_tokens(short)
    pieces = np.zeros(n_users, dtype=np.int64)  # non-empty pieces so far
    piece_tokens = np.zeros(n_users, dtype=np.int64)  # their tokens, without separators
    total = np.zeros(n_users, dtype=np.int64)  # tokens of the joined text so far
    ends = np.zeros(n_users, dtype=bool)  # the joined text's last non-space character ends a sentence
    short_ends = bool(short.strip()) and short.rstrip()[-1:] in _SENTENCE_ENDS
    sep_ends = bool(separator.strip()) and separator.rstrip()[-1:] in _SENTENCE_ENDS
    plan: list[tuple[_Part, np.ndarray, np.ndarray, np.ndarray]] = []  # part, here, follows, use_short
    for name in config.parts:
        if name == "text":
            part = _own_text(dataset)
        elif name == "reviews":
            part = _reviews(dataset, order, config.max_reviews)
        elif name == "tags":
            part = _tags(dataset, config.max_tags)
        elif name == "demographics":
            part = _demographics(dataset, config)
        else:
            used = np.where(pieces > 0, piece_tokens + (pieces - 1) * sep_tokens, 0)
            part = _behaviour(dataset, config, order, used)
        here = part.present
        follows = here & (pieces > 0)
        use_short = follows & ends
        plan.append((part, here, follows, use_short))
        total += np.where(follows, np.where(use_short, short_tokens, sep_tokens), 0) + np.where(here, part.tokens, 0)
        # After a blank piece the text ends where its separator (or the text before) did.
        joiner_ends = np.where(use_short, short_ends, sep_ends)
        joiner_blank = np.where(use_short, not short.strip(), not separator.strip())
        after_blank = np.where(follows & ~joiner_blank, joiner_ends, ends & follows)
        ends = np.where(here, np.where(part.blank, after_blank, part.ends), ends)
        piece_tokens += np.where(here, part.tokens, 0)
        pieces += here
    del order
    profiles: list[str] = []
    for start in range(0, n_users, block):
        profiles.extend(_joined_block(plan, start, min(block, n_users - start), separator, short))
    del plan
    # Arrow's allocator keeps what the string work freed for its next call (~0.5 GB at 10^6 users): hand it
    # back to the system, the stages after this one allocate with numpy and Python, not Arrow.
    pa.default_memory_pool().release_unused()
    for row in np.flatnonzero(total > config.max_tokens):
        profiles[row] = within(profiles[row], config.max_tokens, count_tokens)
    return profiles


def _joined_block(
    plan: list[tuple[_Part, np.ndarray, np.ndarray, np.ndarray]], start: int, size: int, separator: str, short: str
) -> list[str]:
    """The profiles of users ``start .. start + size - 1``: the pieces of each part joined in Arrow."""
    out = pa.array([""] * size, type=pa.string())
    for part, here, follows, use_short in plan:
        piece = part.block(start, size)
        joiner = pc.if_else(pa.array(use_short[start : start + size]), short, separator)
        glued = _concat(out, joiner, piece)
        alone = pc.if_else(pa.array(here[start : start + size]), piece, out)
        out = pc.if_else(pa.array(follows[start : start + size]), glued, alone)
    return out.to_pylist()


def group_item_counts(
    user_rows: np.ndarray,
    item_rows: np.ndarray,
    labels: np.ndarray,
    n_groups: int,
    n_items: int,
    *,
    distinct: bool = False,
) -> np.ndarray:
    """(n_groups, n_items) float64: how many users of each group took each item (each pair once), as one
    group-by over interaction rows; users labelled -1 count in no group. ``distinct=True`` says the pairs are
    already distinct (the entries of a binary user x item matrix), which skips the deduplication."""
    users = np.asarray(user_rows, dtype=np.int64)
    items = np.asarray(item_rows, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels[users] >= 0
    pairs = users[keep] * n_items + items[keep]
    if not distinct:
        pairs = np.unique(pairs)
    cells = labels[pairs // n_items] * n_items + pairs % n_items
    return np.bincount(cells, minlength=n_groups * n_items).reshape(n_groups, n_items).astype(np.float64)


def group_counts(matrix: sp.csr_matrix, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, n_items) float64: how many users of each group have an entry for each item in ``matrix``, a
    users x items matrix whose stored entries are all 1 (a binary matrix: each pair once); users labelled -1
    count in no group. What :func:`group_item_counts` gives for the matrix's pairs, as one sparse product
    (groups x users indicator @ matrix): no array per stored entry (at 2 x 10^7 entries the pairs and their
    keys as int64 took ~0.7 GB)."""
    labels = np.asarray(labels, dtype=np.int64)
    members = np.flatnonzero(labels >= 0)
    indicator = sp.csr_matrix(
        (np.ones(len(members), dtype=matrix.dtype), (labels[members], members)), shape=(n_groups, matrix.shape[0])
    )
    return np.asarray((indicator @ matrix).toarray(), dtype=np.float64)


def phrase_matrix(texts: Sequence[str], split: re.Pattern[str]) -> tuple[sp.csr_matrix, list[str]]:
    """(documents x distinct phrases) counts of ``split.split(text.lower())`` over ``texts``, and the phrases
    (in order of first appearance). Built once, it serves several analysers (:func:`term_counts`)."""
    index: dict[str, int] = {}
    ids: list[int] = []
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    for row, text in enumerate(texts):
        for phrase in split.split(text.lower()):
            ids.append(index.setdefault(phrase, len(index)))
        indptr[row + 1] = len(ids)
    data = np.ones(len(ids), dtype=np.int64)
    matrix = sp.csr_matrix((data, np.asarray(ids, dtype=np.int64), indptr), shape=(len(texts), len(index)))
    matrix.sum_duplicates()
    return matrix, list(index)


def term_counts(
    phrases: tuple[sp.csr_matrix, list[str]],
    analyse: Callable[[str], list[str]],
    *,
    min_df: int = 1,
    binary: bool = False,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """(documents x terms) counts and the terms, sorted, for an analyser whose terms for a text are the terms
    of its phrases put together (``analyse(text) == sum(analyse(p) for p in split.split(text.lower()))``):
    what ``CountVectorizer(analyzer=analyse, min_df=min_df, binary=binary).fit_transform(texts)`` and its
    ``get_feature_names_out()`` give, with ``analyse`` run once per distinct phrase instead of once per text.
    Terms in fewer than ``min_df`` documents are left out; no term left gives a matrix with no columns."""
    docs, phrase_list = phrases
    vocabulary: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, phrase in enumerate(phrase_list):
        for term in analyse(phrase):
            rows.append(row)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
    per_phrase = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(len(phrase_list), len(vocabulary))
    )
    counts = sp.csr_matrix(docs @ per_phrase)  # a term's count in a text: sum over its phrases
    counts.eliminate_zeros()
    terms = np.asarray(list(vocabulary), dtype=object)
    present = np.bincount(counts.indices, minlength=len(terms))
    keep = np.flatnonzero(present >= min_df)
    keep = keep[np.argsort(terms[keep].astype(str), kind="stable")]  # CountVectorizer sorts its vocabulary
    counts = sp.csr_matrix(counts[:, keep])
    counts.sort_indices()
    if binary:
        counts.data[:] = 1
    return counts, terms[keep].astype(str)
