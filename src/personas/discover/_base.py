"""What every group finder shares: the protocol, input checks, centroids, nearest-centroid assignment, and
the check of its own result (:class:`GroupingReport`, :class:`GroupingWarning`)."""

# ruff: noqa: N803  (X is a matrix, as in scikit-learn)

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from personas.config import Component, ComponentConfig
from personas.errors import DataError, NotFittedError

__all__ = [
    "MAX_LARGEST_SHARE",
    "MAX_NOISE_SHARE",
    "MIN_GROUPS",
    "NOISE",
    "BaseGroupFinder",
    "GroupFinder",
    "GroupingReport",
    "GroupingWarning",
    "as_unit_vectors",
    "centroids_of",
    "exact_argmax",
    "grouping_report",
    "nearest_centroid",
]

NOISE = -1
"""The label of a user that belongs to no group (HDBSCAN noise, graph vertices in too-small communities)."""


#: Past these a grouping is probably not what the user wants, and the finder says so (GroupingWarning):
#: more than half the users in no group; one group holding more than 80% of them (a "persona" of
#: nearly everyone describes no one); fewer than two groups.
MAX_NOISE_SHARE = 0.5
MAX_LARGEST_SHARE = 0.8
MIN_GROUPS = 2


class GroupingWarning(UserWarning):
    """A grouping that is probably not useful: mostly noise, one group holding nearly everyone, or fewer
    than two groups. The message gives the numbers and the setting to change."""


class GroupingReport(BaseModel):
    """A finder's check of its own result (``report_`` after ``fit``).

    ``noise_share``: users labelled -1 in ``labels_``; ``unassigned_share``: users the method itself left in
    no group, before a noise rule gave them one (HDBSCAN's ``noise = "nearest"``); ``largest_share``: the
    largest group's share of all users; ``fallback``: what was done instead when the method found no group;
    ``warnings``: the messages of the GroupingWarnings given.
    """

    model_config = ConfigDict(frozen=True)

    n_users: int
    n_groups: int
    noise_share: float
    unassigned_share: float
    largest_share: float
    sizes: list[int]
    fallback: str | None = None
    warnings: list[str] = []


def grouping_report(
    labels: np.ndarray,
    *,
    owner: str,
    hints: dict[str, str] | None = None,
    unassigned_share: float | None = None,
    fallback: str | None = None,
) -> GroupingReport:
    """Count a grouping and word a warning for each threshold it passes; ``hints`` (keys ``noise``,
    ``largest``, ``few``) say what to change. Warnings are returned, not raised (see
    :meth:`BaseGroupFinder._check_result`)."""
    hints = hints or {}
    labels = np.asarray(labels)
    n = len(labels)
    member = labels >= 0
    sizes = np.bincount(labels[member]).astype(np.int64) if member.any() else np.zeros(0, dtype=np.int64)
    sizes = sizes[sizes > 0]
    noise = int(n - member.sum())
    largest = int(sizes.max()) if len(sizes) else 0
    noise_share = noise / n if n else 0.0
    largest_share = largest / n if n else 0.0
    messages = []
    if fallback:
        messages.append(f"{owner}: {fallback}.")
    implied = fallback is not None and len(sizes) < MIN_GROUPS  # "one group instead" says it all
    if noise_share > MAX_NOISE_SHARE:
        messages.append(
            f"{owner}: {noise_share:.0%} of users ({noise:,} of {n:,}) are in no group (noise), more than "
            f"{MAX_NOISE_SHARE:.0%}; {hints.get('noise', 'their persona cards leave them out')}."
        )
    if largest_share > MAX_LARGEST_SHARE and len(sizes) >= MIN_GROUPS and not implied:  # one group: said below
        messages.append(
            f"{owner}: one group holds {largest_share:.1%} of users ({largest:,} of {n:,}), more than "
            f"{MAX_LARGEST_SHARE:.0%}; {hints.get('largest', 'its persona describes nearly everyone')}."
        )
    if len(sizes) < MIN_GROUPS and n >= MIN_GROUPS and not implied:
        messages.append(
            f"{owner}: found {len(sizes)} group(s), fewer than {MIN_GROUPS}; "
            f"{hints.get('few', 'the vectors may not separate users: try another encoder')}."
        )
    return GroupingReport(
        n_users=n,
        n_groups=len(sizes),
        noise_share=noise_share,
        unassigned_share=noise_share if unassigned_share is None else unassigned_share,
        largest_share=largest_share,
        sizes=sizes.tolist(),
        fallback=fallback,
        warnings=messages,
    )


@runtime_checkable
class GroupFinder(Protocol):
    """sklearn-style contract of every group-discovery method.

    ``fit(X)`` learns groups from unit vectors (one row per user) and returns ``self``; ``labels_`` holds one
    int per row (``0 .. n_groups_-1``, or ``-1`` for noise where the method has a noise rule);
    ``centroids_`` is ``(n_groups_, d)`` with unit rows; ``assign(X)`` labels new rows.
    """

    @property
    def labels_(self) -> np.ndarray: ...

    @property
    def n_groups_(self) -> int: ...

    @property
    def centroids_(self) -> np.ndarray: ...

    def fit(self, X: np.ndarray) -> GroupFinder: ...

    def assign(self, X: np.ndarray) -> np.ndarray: ...


_BLOCK = 16_384  # rows per step of the checks below: their temporaries stay small at any n


def as_unit_vectors(X: object, *, owner: str, min_rows: int = 1) -> np.ndarray:
    """Validate ``X`` as a finite 2-D float array and return it as C-contiguous float32 with unit rows.

    An input that already is one (float32, C order, every row of norm 1 within 1e-4) comes back as is,
    not copied: 1M x 384 vectors are 1.5 GB. Callers never write to the result. Zero rows stay zero (they
    have no direction); callers that need a direction warn about them.
    """
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{owner}: X must be a numeric array of shape (n_users, dim); {exc}.") from None
    if arr.ndim != 2:
        raise DataError(f"{owner}: X must be 2-D (n_users, dim). Got shape {arr.shape} instead.")
    if arr.shape[0] < min_rows:
        raise DataError(f"{owner}: X needs at least {min_rows} row(s). Got {arr.shape[0]}.")
    if arr.shape[1] < 1:
        raise DataError(f"{owner}: X has no columns (shape {arr.shape}).")
    # Squared norms in float64, block by block: a NaN or inf anywhere in a row makes its norm non-finite.
    sq = np.empty(arr.shape[0], dtype=np.float64)
    for start in range(0, arr.shape[0], _BLOCK):
        part = arr[start : start + _BLOCK].astype(np.float64)
        sq[start : start + _BLOCK] = np.einsum("ij,ij->i", part, part)
    if not np.isfinite(sq).all():
        raise DataError(
            f"{owner}: X has NaN or infinite values in {int((~np.isfinite(sq)).sum())} row(s); "
            "drop or impute them first."
        )
    if arr.flags.c_contiguous and np.abs(sq - 1.0).max() <= 2e-4:
        return arr
    norms = np.sqrt(sq).astype(np.float32)[:, None]
    out = np.zeros(arr.shape, dtype=np.float32)
    return np.divide(arr, norms, out=out, where=norms > 0)


def group_sums(X: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum of the rows of each group ``0..n_groups-1`` (rows labelled ``-1`` are ignored), as one sparse
    product (``np.add.at`` is ~50x slower on large inputs)."""
    keep = np.flatnonzero(labels >= 0)
    onehot = sp.csr_matrix((np.ones(len(keep), dtype=np.float32), (labels[keep], keep)), shape=(n_groups, X.shape[0]))
    return np.asarray(onehot @ X, dtype=np.float64)


def centroids_of(X: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Unit-norm mean direction of each group (rows labelled ``-1`` are ignored)."""
    sums = group_sums(X, labels, n_groups)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0).astype(np.float32)


#: Rows whose two best float32 similarities are closer than this are scored again in float64: float32 dot
#: products of unit vectors carry rounding errors up to about d x 6e-8 (2.3e-5 at d = 384), and which rows
#: land at the edge of a BLAS block (another micro-kernel, another summation order) depends on the thread
#: count and the CPU's kernel. Above the margin float32 cannot reverse the order.
EXACT_MARGIN = 1e-4
#: Similarities this close in float64 are a tie, broken to the lowest centroid index (float64 rounding, up
#: to about d x 1.1e-16, still differs between kernels).
TIE_TOLERANCE = 1e-12


def exact_argmax(X: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most similar centroid of each row in float64, ties (within :data:`TIE_TOLERANCE`) broken to the lowest
    index, and that similarity: the same answer at any thread count and on any BLAS kernel."""
    sims = np.asarray(X, dtype=np.float64) @ np.asarray(centroids, dtype=np.float64).T
    best = sims.max(axis=1, keepdims=True)
    labels = np.argmax(sims >= best - TIE_TOLERANCE, axis=1).astype(np.int64)  # first index within the tolerance
    return labels, sims[np.arange(len(labels)), labels]


def nearest_centroid(
    X: np.ndarray, centroids: np.ndarray, *, block: int = 65536, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the most cosine-similar centroid for each row and that similarity, in blocks of rows.

    float32 BLAS for speed; rows whose best two centroids are within :data:`EXACT_MARGIN` are decided again by
    :func:`exact_argmax` (float64, lowest index on ties), so the labels do not depend on the BLAS thread count
    or kernel. ``exact=True``: every row in float64 (a finder's final assignment)."""
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int64)
    sims = np.empty(n, dtype=np.float32)
    if centroids.shape[0] == 0:
        labels.fill(NOISE)
        sims.fill(np.nan)
        return labels, sims
    for start in range(0, n, block):
        part = X[start : start + block]
        if exact:
            labels[start : start + block], top64 = exact_argmax(part, centroids)
            sims[start : start + block] = top64
            continue
        s = part @ centroids.T
        best = np.argmax(s, axis=1)
        top = s[np.arange(len(best)), best]
        if centroids.shape[0] > 1:
            second = np.partition(s, -2, axis=1)[:, -2]
            close = np.flatnonzero(top - second < EXACT_MARGIN)
            if len(close):
                best[close], top[close] = exact_argmax(part[close], centroids)
        labels[start : start + block] = best
        sims[start : start + block] = top
    return labels, sims


def compact_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber non-noise labels to ``0..g-1`` ordered by group size (largest first, ties by first row).

    Returns the new labels and, for each new group, the old label it came from.
    """
    out = np.full(labels.shape, NOISE, dtype=np.int64)
    keep = labels >= 0
    if not keep.any():
        return out, np.zeros(0, dtype=np.int64)
    values, first, counts = np.unique(labels[keep], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.empty(values.max() + 1, dtype=np.int64)
    mapping[values[order]] = np.arange(len(values))
    out[keep] = mapping[labels[keep]]
    return out, values[order].astype(np.int64)


C = TypeVar("C", bound=ComponentConfig)


class BaseGroupFinder(Component[C], ABC):
    """Base class: a config (pydantic, JSON round-trip) and the fitted state ending in ``_``.

    Build with keyword parameters (``KMeansGroups(k=8, seed=1)``) or a config object
    (``KMeansGroups(KMeansConfig(k=8))``). Groups are numbered by size, largest first.
    """

    _wrong_config: ClassVar[str] = "{owner} needs a {expected}. Got {got} instead."

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items() if k != "method")
        return f"{type(self).__name__}({params})"

    def with_params(self, **changes: Any) -> BaseGroupFinder[C]:
        """An unfitted copy with some parameters changed (e.g. another seed)."""
        data = self.config.model_dump()
        data.update(changes)
        return type(self)(**{k: v for k, v in data.items() if k != "method"})

    # ------------------------------------------------------------------ fitted state
    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(X) with the users' vectors first."
            )

    def _set_result(self, X: np.ndarray, labels: np.ndarray, centers: np.ndarray | None = None) -> None:
        """Store labels (renumbered by size) and centroids: the given ``centers`` indexed by the old
        labels (so ``assign`` reproduces ``labels_``), else the mean direction of each group."""
        labels, old = compact_labels(labels)
        n_groups = len(old)
        self.labels_ = labels
        self.n_groups_ = n_groups
        if centers is not None:
            self.centroids_ = np.ascontiguousarray(centers[old], dtype=np.float32)
        else:
            self.centroids_ = centroids_of(X, labels, n_groups)
        self.sizes_ = np.bincount(labels[labels >= 0], minlength=n_groups).astype(np.int64)
        self.n_features_in_ = X.shape[1]

    def _check_assign_input(self, X: object) -> np.ndarray:
        self._check_fitted()
        arr = as_unit_vectors(X, owner=f"{type(self).__name__}.assign")
        if arr.shape[1] != self.n_features_in_:
            raise DataError(
                f"{type(self).__name__}.assign: X has {arr.shape[1]} columns but the groups were fitted on "
                f"{self.n_features_in_}; encode new users with the same encoder."
            )
        return arr

    def assign(self, X: np.ndarray) -> np.ndarray:
        """Label new users by their most cosine-similar group centroid."""
        arr = self._check_assign_input(X)
        return nearest_centroid(arr, self.centroids_)[0]

    def fit_assign(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).labels_

    # ------------------------------------------------------------------ checking the result
    def _hints(self) -> dict[str, str]:
        """What to change when the result passes a threshold (keys ``noise``, ``largest``, ``few``), in the
        words of the config keys (a TOML ``[discover]`` key is the same name)."""
        return {}

    def _check_result(
        self, *, unassigned_share: float | None = None, fallback: str | None = None, warn: bool = True
    ) -> None:
        """Set ``report_`` and give one GroupingWarning per threshold passed (called at the end of ``fit``;
        ``warn=False`` after an edit by hand, which the user asked for)."""
        self.report_ = grouping_report(
            self.labels_,
            owner=type(self).__name__,
            hints=self._hints(),
            unassigned_share=unassigned_share,
            fallback=fallback,
        )
        for message in self.report_.warnings if warn else []:
            warnings.warn(message, GroupingWarning, stacklevel=3)

    @abstractmethod
    def fit(self, X: np.ndarray) -> BaseGroupFinder[C]: ...


def warn_if_fewer(owner: str, found: int, wanted: int) -> None:
    if found < wanted:
        warnings.warn(
            f"{owner}: found {found} distinct group(s), fewer than k={wanted}: identical or duplicate vectors?",
            RuntimeWarning,
            stacklevel=3,
        )
