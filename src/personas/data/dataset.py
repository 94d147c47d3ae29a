"""The immutable in-memory dataset: users, items, interactions, and the id vocabularies.

External ids are strings everywhere (``"42"``, not ``42``); rows are dense ``int32`` indices. Matrices are
always users x items.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from personas.errors import DataError, UnknownIdError

__all__ = ["Dataset", "Vocabulary"]

MatrixValue = Literal["binary", "rating", "count"]


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


class Vocabulary:
    """Maps external ids (strings) to dense rows ``0..n-1`` and back."""

    __slots__ = ("_ids", "_index", "_pandas_index", "kind")

    def __init__(self, ids: Iterable[object], *, kind: str = "id") -> None:
        if isinstance(ids, pd.Series | pd.Index):
            ids = ids.to_numpy(dtype=object)  # iterating an Arrow-backed column costs ~10x a numpy one
        id_array = np.asarray([str(i) for i in ids], dtype=object)
        index: dict[str, int] = {}
        for row, ext in enumerate(id_array):
            if ext in index:
                raise DataError(
                    f"Duplicate {kind} id {ext!r} at positions {index[ext]} and {row}. Each {kind} id must appear once."
                )
            index[ext] = row
        id_array.setflags(write=False)
        self._ids = id_array
        self._index = index
        self.kind = kind

    @property
    def ids(self) -> np.ndarray:
        """Row -> external id (read-only object array of str)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, ext: object) -> bool:
        return str(ext) in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self._ids, other._ids)

    def __hash__(self) -> int:
        return hash(tuple(self._ids))

    def __repr__(self) -> str:
        return f"Vocabulary(kind={self.kind!r}, n={len(self)})"

    def row(self, ext: object) -> int:
        """The row of one external id; :class:`UnknownIdError` when it is not known."""
        try:
            return self._index[str(ext)]
        except KeyError:
            raise UnknownIdError(
                f"Unknown {self.kind} id {str(ext)!r}: it is not among the {len(self)} {self.kind}s "
                "of this dataset. Check the id, or use the new-user path for ids never seen."
            ) from None

    def rows(self, exts: Iterable[object], *, missing: Literal["error", "mask"] = "error") -> np.ndarray:
        """Rows of many ids. With ``missing="mask"`` unknown ids map to -1 instead of raising."""
        keys = np.asarray([str(e) for e in exts] if not isinstance(exts, np.ndarray | pd.Series) else exts)
        keys = keys.astype(str).astype(object) if keys.dtype != object else keys
        if len(keys) and isinstance(keys[0], str):
            out = self._lookup().get_indexer(keys).astype(np.int64)
        else:
            out = np.asarray([self._index.get(str(k), -1) for k in keys], dtype=np.int64)
        if missing == "error" and (out < 0).any():
            self.row(keys[int(np.flatnonzero(out < 0)[0])])  # raises with the standard message
        return out

    def _lookup(self) -> pd.Index:
        # Built lazily: vectorised id -> row for large batches.
        index: pd.Index | None = getattr(self, "_pandas_index", None)
        if index is None:
            index = pd.Index(self._ids)
            object.__setattr__(self, "_pandas_index", index)
        return index

    def id(self, row: int) -> str:
        """The external id of one row."""
        if not 0 <= row < len(self._ids):
            raise IndexError(f"Row {row} is out of range for {len(self)} {self.kind}s.")
        return str(self._ids[row])


@dataclass(frozen=True, eq=False)
class Dataset:
    """Users, items and interactions, validated and immutable.

    Build one with :meth:`from_frames` (or a loader); do not call the constructor directly.

    - ``users``: ``user_id`` (str), ``text`` (str or missing), then attribute columns.
    - ``items``: ``item_id`` (str), ``title``, ``text``, then attribute columns (e.g. ``genres``).
    - interactions: parallel read-only arrays ``user_rows``, ``item_rows`` (int32), ``ratings`` (float64,
      NaN where absent), ``timestamps`` (int64 seconds, ``-1`` where absent) and ``reviews`` (object, None
      where absent).
    - ``tags``: optional ``user``, ``item`` rows and ``tag`` text (e.g. MovieLens tag applications).
    """

    name: str
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    _users: pd.DataFrame = field(repr=False)
    _items: pd.DataFrame = field(repr=False)
    user_rows: np.ndarray = field(repr=False)
    item_rows: np.ndarray = field(repr=False)
    ratings: np.ndarray = field(repr=False)
    timestamps: np.ndarray = field(repr=False)
    reviews: np.ndarray = field(repr=False)
    _tags: pd.DataFrame | None = field(default=None, repr=False)
    source: str = ""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        interactions: pd.DataFrame,
        *,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        tags: pd.DataFrame | None = None,
        name: str = "dataset",
        source: str = "",
    ) -> Dataset:
        """Build from canonical frames whose ids are already validated strings.

        ``interactions`` needs ``user_id`` and ``item_id`` and may have ``rating``, ``timestamp``,
        ``review``. Users or items missing from their tables are added (without text or attributes)
        so that every interaction resolves; use :mod:`personas.data.loaders` for the strict policy.
        """
        for col in ("user_id", "item_id"):
            if col not in interactions.columns:
                raise DataError(f"Interactions need a {col!r} column; got {list(interactions.columns)}.")
        users = _entity_frame(users, "user_id", interactions["user_id"], extra_cols=("text",))
        items = _entity_frame(items, "item_id", interactions["item_id"], extra_cols=("title", "text"))
        user_vocab = Vocabulary(users["user_id"], kind="user")
        item_vocab = Vocabulary(items["item_id"], kind="item")
        user_rows = user_vocab.rows(interactions["user_id"]).astype(np.int32)
        item_rows = item_vocab.rows(interactions["item_id"]).astype(np.int32)
        n = len(interactions)
        reviews = np.empty(n, dtype=object)
        if "review" in interactions:
            col = interactions["review"]
            reviews[:] = [None if _missing(v) else str(v) for v in col]
        ratings = (
            pd.to_numeric(interactions["rating"]).to_numpy(dtype=np.float64, na_value=np.nan)
            if "rating" in interactions
            else np.full(n, np.nan)
        )
        timestamps = (
            pd.to_numeric(interactions["timestamp"]).fillna(-1).to_numpy(dtype=np.int64)
            if "timestamp" in interactions
            else np.full(n, -1, dtype=np.int64)
        )
        return cls.from_rows(
            users,
            items,
            user_rows=user_rows,
            item_rows=item_rows,
            ratings=ratings,
            timestamps=timestamps,
            reviews=reviews,
            tags=tags,
            name=name,
            source=source,
            vocabularies=(user_vocab, item_vocab),
        )

    @classmethod
    def from_rows(
        cls,
        users: pd.DataFrame,
        items: pd.DataFrame,
        *,
        user_rows: np.ndarray,
        item_rows: np.ndarray,
        ratings: np.ndarray,
        timestamps: np.ndarray,
        reviews: np.ndarray,
        tags: pd.DataFrame | None = None,
        name: str = "dataset",
        source: str = "",
        vocabularies: tuple[Vocabulary, Vocabulary] | None = None,
    ) -> Dataset:
        """Build from complete users/items tables (every id the interactions name, in row order, with the
        columns :meth:`from_frames` adds) and interactions already as row arrays: the columnar loader's way
        in, which never makes one Python object per interaction."""
        user_vocab, item_vocab = vocabularies or (
            Vocabulary(users["user_id"], kind="user"),
            Vocabulary(items["item_id"], kind="item"),
        )
        tag_frame = None
        if tags is not None and len(tags):
            tag_frame = pd.DataFrame(
                {
                    "user": user_vocab.rows(tags["user_id"]).astype(np.int32),
                    "item": item_vocab.rows(tags["item_id"], missing="mask").astype(np.int32),
                    "tag": tags["tag"].astype(str).to_numpy(),
                }
            )
        return cls(
            name=name,
            user_vocab=user_vocab,
            item_vocab=item_vocab,
            _users=users.reset_index(drop=True),
            _items=items.reset_index(drop=True),
            user_rows=_readonly(user_rows),
            item_rows=_readonly(item_rows),
            ratings=_readonly(ratings),
            timestamps=_readonly(timestamps),
            reviews=_readonly(reviews),
            _tags=tag_frame,
            source=source,
        )

    # ------------------------------------------------------------------ views
    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    @property
    def n_interactions(self) -> int:
        return len(self.user_rows)

    @property
    def users(self) -> pd.DataFrame:
        """A copy of the user table (row order = user rows)."""
        return self._users.copy()

    @property
    def items(self) -> pd.DataFrame:
        """A copy of the item table (row order = item rows)."""
        return self._items.copy()

    @property
    def tags(self) -> pd.DataFrame | None:
        """A copy of the tag table (``user``, ``item`` rows, ``tag``), or None."""
        return None if self._tags is None else self._tags.copy()

    @property
    def has_ratings(self) -> bool:
        return bool(self.n_interactions) and not np.isnan(self.ratings).all()

    @property
    def has_timestamps(self) -> bool:
        return bool(self.n_interactions) and bool((self.timestamps >= 0).any())

    def interactions(self) -> pd.DataFrame:
        """Interactions as a new frame with external ids and rows."""
        return pd.DataFrame(
            {
                "user_id": self.user_vocab.ids[self.user_rows],
                "item_id": self.item_vocab.ids[self.item_rows],
                "user": self.user_rows,
                "item": self.item_rows,
                "rating": self.ratings,
                "timestamp": self.timestamps,
                "review": self.reviews,
            }
        )

    def matrix(self, value: MatrixValue = "binary") -> sp.csr_matrix:
        """The users x items CSR matrix.

        ``binary``: 1 where the user interacted; ``count``: number of interactions; ``rating``: the
        latest rating (by timestamp, then file order) of each pair, 0 where absent.
        """
        shape = (self.n_users, self.n_items)
        if value == "rating":
            if not self.has_ratings:
                raise DataError(f"Dataset {self.name!r} has no ratings; use value='binary' or 'count'.")
            order = np.lexsort((np.arange(self.n_interactions), self.timestamps))
            u, i, r = self.user_rows[order], self.item_rows[order], self.ratings[order]
            keys = u.astype(np.int64) * self.n_items + i
            # np.unique keeps the first occurrence: reverse so that the latest wins.
            _, last = np.unique(keys[::-1], return_index=True)
            pick = len(keys) - 1 - last
            data = np.nan_to_num(r[pick], nan=0.0)
            mat = sp.csr_matrix((data, (u[pick], i[pick])), shape=shape, dtype=np.float64)
        else:
            ones = np.ones(self.n_interactions, dtype=np.float64)
            mat = sp.csr_matrix((ones, (self.user_rows, self.item_rows)), shape=shape)
            mat.sum_duplicates()
            if value == "binary":
                mat.data[:] = 1.0
            elif value != "count":
                raise DataError(f"Unknown matrix value {value!r}; use 'binary', 'count' or 'rating'.")
        mat.sort_indices()
        return mat

    def user_texts(self) -> list[str | None]:
        """The users' own text (None where absent), in row order."""
        if "text" not in self._users:
            return [None] * self.n_users
        return [None if _missing(v) else str(v) for v in self._users["text"]]

    def subset_interactions(self, mask: np.ndarray, *, name: str | None = None) -> Dataset:
        """A dataset with the same users and items but only the interactions where ``mask`` is True."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n_interactions,):
            raise DataError(f"Mask has shape {mask.shape}; expected ({self.n_interactions},).")
        return Dataset(
            name=name or self.name,
            user_vocab=self.user_vocab,
            item_vocab=self.item_vocab,
            _users=self._users,
            _items=self._items,
            user_rows=_readonly(self.user_rows[mask]),
            item_rows=_readonly(self.item_rows[mask]),
            ratings=_readonly(self.ratings[mask]),
            timestamps=_readonly(self.timestamps[mask]),
            reviews=_readonly(self.reviews[mask]),
            _tags=self._tags,
            source=self.source,
        )

    def subset_tags(self, mask: np.ndarray, *, name: str | None = None) -> Dataset:
        """The same dataset with only the tag rows where ``mask`` is True (e.g. a held-out user's tags kept out
        of a train set, so that nothing built from train — profiles, item texts, groups — reads them)."""
        n_tags = 0 if self._tags is None else len(self._tags)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n_tags,):
            raise DataError(
                f"The 'mask' parameter of Dataset.subset_tags must be a boolean array of shape ({n_tags},), one "
                f"entry per tag row. Got shape {mask.shape} instead."
            )
        tags = None if self._tags is None else self._tags[mask].reset_index(drop=True)
        return replace(self, name=name or self.name, _tags=tags if tags is not None and len(tags) else None)

    def fingerprint(self) -> str:
        """sha256 over ids and interaction arrays: equal data gives an equal fingerprint."""
        digest = hashlib.sha256()
        for part in (self.user_vocab.ids, self.item_vocab.ids):
            digest.update("\x1f".join(part).encode())
            digest.update(b"\x1e")
        for array in (self.user_rows, self.item_rows, self.ratings, self.timestamps):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"interactions={self.n_interactions})"
        )


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return value is pd.NA or (isinstance(value, str) and value == "")


def _entity_frame(
    table: pd.DataFrame | None, id_col: str, referenced: pd.Series, extra_cols: Sequence[str]
) -> pd.DataFrame:
    """The users/items table with every id that interactions reference (missing ones appended)."""
    if table is None:
        ids = pd.unique(referenced.astype(str))
        table = pd.DataFrame({id_col: ids})
    else:
        table = table.copy()
        table[id_col] = table[id_col].astype(str)
        known = set(table[id_col])
        extra = [i for i in pd.unique(referenced.astype(str)) if i not in known]
        if extra:
            table = pd.concat([table, pd.DataFrame({id_col: extra})], ignore_index=True)
    for col in extra_cols:
        if col not in table:
            table[col] = None
    front = [id_col, *extra_cols]
    return table[front + [c for c in table.columns if c not in front]]
