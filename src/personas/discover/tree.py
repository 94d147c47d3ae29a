"""Two levels of personas, nested: fine groups for recommending, grouped into coarse ones for reading; and how
stable each group is across seeds.

- :func:`nest`: Ward merges of the fine groups (each weighted by its members, on their mean vectors: the merge
  that adds least to the users' within-group spread), cut at ``n_coarse``. Every fine group belongs to exactly
  one coarse group, so a user's coarse persona is their fine persona's parent.
- :func:`choose_coarse_k`: the number of coarse groups a reader gets: silhouette and stability of each cut.
- :func:`refits` and :func:`group_stability`: refit the method with other seeds on subsamples, label everyone
  with ``assign``, and score each group by the best-matching refit group's Jaccard overlap of members.
- :func:`top_down` (``[discover] tree = "top-down"``): the other way round. Coarse groups are k-means groups of
  the users' text vectors (where names are read), and each is split by k-means on the run's vectors into a share
  of the fine groups proportional to its size (:func:`allocate`). :func:`choose_top_down_k` picks the coarse k,
  :func:`top_down_refits` gives the labelings that score its stability.

Merges are computed in float64 with ties broken to the lowest pair of groups, and coarse groups are numbered by
size then first member, so the same fine groups give the same tree everywhere.
"""

# ruff: noqa: N803  (X is a matrix, as in scikit-learn)

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from sklearn.metrics import adjusted_rand_score

from personas.discover._base import (
    TIE_TOLERANCE,
    BaseGroupFinder,
    GroupingWarning,
    as_unit_vectors,
    centroids_of,
    compact_labels,
    exact_argmax,
    group_sums,
    nearest_centroid,
)
from personas.discover.selection import GroupQuality, KChoice, KScore, group_quality, pick_stable
from personas.errors import ConfigError

__all__ = [
    "TREE_KINDS",
    "Hierarchy",
    "StabilityCheck",
    "TreeKind",
    "allocate",
    "choose_coarse_k",
    "choose_top_down_k",
    "coarse_refits",
    "group_stability",
    "merge_order",
    "nest",
    "place_in_tree",
    "refits",
    "top_down",
    "top_down_refits",
]

#: How the two levels are built: "bottom-up" merges the fine groups (:func:`nest`); "top-down" finds the coarse
#: groups in the text space first and the fine ones inside each (:func:`top_down`).
TreeKind = Literal["bottom-up", "top-down"]
TREE_KINDS: tuple[str, ...] = ("bottom-up", "top-down")


def merge_order(X: np.ndarray, labels: np.ndarray, n_groups: int) -> list[tuple[int, int]]:
    """Ward merges of groups ``0..n_groups-1``: pairs ``(a, b)``, group ``b`` merged into ``a`` (``a < b``,
    each group named by its lowest original member group), cheapest first. The cost of merging A and B is
    ``|A||B| / (|A|+|B|) * |mean A - mean B|^2``: how much the sum of squared distances to the group means
    grows. Ties go to the lowest pair, so the order is the same on any machine."""
    sums = group_sums(np.asarray(X, dtype=np.float32), labels, n_groups)  # float64
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups).astype(np.float64)
    alive = sizes > 0
    means = np.divide(sums, sizes[:, None], out=np.zeros_like(sums), where=sizes[:, None] > 0)

    def costs(i: int) -> np.ndarray:
        diff = means - means[i]
        sq = np.einsum("ij,ij->i", diff, diff)
        out = sizes * sizes[i] / np.maximum(sizes + sizes[i], 1.0) * sq
        out[~alive] = np.inf
        out[i] = np.inf
        return out

    cost = np.full((n_groups, n_groups), np.inf)
    for i in np.flatnonzero(alive):
        cost[i] = costs(int(i))
    cost = np.round(cost, 12)  # float64 rounding differences are not a preference
    merges = []
    for _ in range(int(alive.sum()) - 1):
        flat = int(np.argmin(np.triu(cost, 1) + np.tril(np.full_like(cost, np.inf))))
        a, b = divmod(flat, n_groups)
        merges.append((a, b))
        sums[a] += sums[b]
        sizes[a] += sizes[b]
        sizes[b] = 0
        alive[b] = False
        means[a] = sums[a] / sizes[a]
        cost[b, :] = cost[:, b] = np.inf
        row = np.round(costs(a), 12)
        cost[a, :] = cost[:, a] = row
    return merges


def _cut(merges: Sequence[tuple[int, int]], n_groups: int, n_clusters: int) -> np.ndarray:
    """Each group's cluster (its surviving root's index) after all but the last ``n_clusters - 1`` merges."""
    root = np.arange(n_groups)
    for a, b in merges[: max(len(merges) - (n_clusters - 1), 0)]:
        root[root == b] = a
    return root


@dataclass(frozen=True)
class Hierarchy:
    """Fine groups nested in coarse ones. ``parent[f]`` is fine group ``f``'s coarse group; ``fine_labels`` and
    ``coarse_labels`` hold one label per user (-1: no group); centroids are unit mean directions.

    ``kind`` says how the tree was built. A top-down tree also holds its groups' centroids in the text space
    (``coarse_text_centroids``, ``fine_text_centroids``): its coarse groups were found there, so a new user's
    text places them (:meth:`place_text`)."""

    fine_labels: np.ndarray
    coarse_labels: np.ndarray
    parent: np.ndarray
    fine_centroids: np.ndarray
    coarse_centroids: np.ndarray
    kind: TreeKind = "bottom-up"
    coarse_text_centroids: np.ndarray | None = None
    fine_text_centroids: np.ndarray | None = None

    @property
    def n_fine(self) -> int:
        return len(self.parent)

    @property
    def n_coarse(self) -> int:
        return len(self.coarse_centroids)

    def children(self, coarse: int) -> list[int]:
        return np.flatnonzero(self.parent == coarse).tolist()

    def place(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coarse, fine) labels of new users: the nearest fine centroid, and its parent."""
        arr = as_unit_vectors(X, owner="Hierarchy.place")
        if arr.shape[1] != self.fine_centroids.shape[1]:
            raise ConfigError(
                f"Hierarchy.place: X has {arr.shape[1]} columns but the groups were found on "
                f"{self.fine_centroids.shape[1]}; encode new users with the same encoder."
            )
        fine = nearest_centroid(arr, self.fine_centroids, exact=True)[0]
        return self.parent[fine], fine

    def place_text(self, T: np.ndarray, X: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(coarse, fine) labels of new users of a top-down tree from their text vectors ``T``: the nearest
        coarse centroid in the text space, then the nearest of its children (in the space of ``X`` when given,
        else in the text space). The fine group's parent is always the coarse group."""
        if self.coarse_text_centroids is None or self.fine_text_centroids is None:
            raise ConfigError(
                f"Hierarchy.place_text needs a top-down tree (its text-space centroids); this tree is {self.kind}. "
                "Use Hierarchy.place."
            )
        text = as_unit_vectors(T, owner="Hierarchy.place_text")
        if X is None:
            return place_in_tree(text, text, self.coarse_text_centroids, self.fine_text_centroids, self.parent)
        arr = as_unit_vectors(X, owner="Hierarchy.place_text")
        return place_in_tree(text, arr, self.coarse_text_centroids, self.fine_centroids, self.parent)


def place_in_tree(
    T: np.ndarray, X: np.ndarray, coarse_centroids: np.ndarray, fine_centroids: np.ndarray, parent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(coarse, fine) labels in a top-down tree: each row's nearest coarse centroid (rows of ``T`` against
    ``coarse_centroids``), then the nearest fine centroid among that coarse group's children (rows of ``X``
    against ``fine_centroids``; ``parent[f]`` is fine group ``f``'s coarse group). Both in float64, ties to the
    lowest index, so parent(fine) == coarse on any machine."""
    t = np.asarray(T, dtype=np.float64)
    x = np.asarray(X, dtype=np.float64)
    if t.shape[1] != coarse_centroids.shape[1] or x.shape[1] != fine_centroids.shape[1]:
        raise ConfigError(
            f"place_in_tree: the vectors have {t.shape[1]} and {x.shape[1]} columns but the centroids "
            f"{coarse_centroids.shape[1]} and {fine_centroids.shape[1]}; encode new users with the run's encoder."
        )
    coarse = exact_argmax(t, coarse_centroids)[0]
    sims = x @ np.asarray(fine_centroids, dtype=np.float64).T
    sims[np.asarray(parent)[None, :] != coarse[:, None]] = -np.inf  # only the coarse group's children
    best = sims.max(axis=1, keepdims=True)
    fine = np.argmax(sims >= best - TIE_TOLERANCE, axis=1).astype(np.int64)
    return coarse, fine


def _merge_space(merge_on: np.ndarray | None, arr: np.ndarray, owner: str) -> np.ndarray:
    if merge_on is None:
        return arr
    space = as_unit_vectors(merge_on, owner=owner)
    if space.shape[0] != arr.shape[0]:
        raise ConfigError(
            f"{owner}: merge_on has {space.shape[0]} rows but X has {arr.shape[0]}; pass one row per user."
        )
    return space


def nest(X: np.ndarray, fine_labels: np.ndarray, n_coarse: int, *, merge_on: np.ndarray | None = None) -> Hierarchy:
    """Group the fine groups of ``fine_labels`` into ``n_coarse`` coarse ones (Ward merges of the fine groups,
    :func:`merge_order`). Coarse groups are numbered by size, then by their first member.

    ``merge_on`` (one row per user, e.g. the users' text vectors, the space the names are read in) is where the
    merges are computed when given; the centroids, and :meth:`Hierarchy.place`, stay in the space of ``X``."""
    arr = as_unit_vectors(X, owner="nest")
    fine = np.asarray(fine_labels, dtype=np.int64)
    if fine.shape != (arr.shape[0],):
        raise ConfigError(f"nest: {len(fine)} labels for {arr.shape[0]} rows.")
    n_fine = int(fine.max()) + 1 if (fine >= 0).any() else 0
    if not 1 <= n_coarse <= max(n_fine, 1):
        raise ConfigError(
            f"The 'n_coarse' parameter of nest must be an int in [1, n_fine={n_fine}]. Got {n_coarse} instead."
        )
    root = _cut(merge_order(_merge_space(merge_on, arr, "nest"), fine, n_fine), n_fine, n_coarse)
    users_root = np.where(fine >= 0, root[np.maximum(fine, 0)], -1)
    coarse, old = compact_labels(users_root)
    renumber = np.full(n_fine, -1, dtype=np.int64)
    renumber[old] = np.arange(len(old))
    parent = renumber[root]
    return Hierarchy(
        fine_labels=fine,
        coarse_labels=coarse,
        parent=parent,
        fine_centroids=centroids_of(arr, fine, n_fine),
        coarse_centroids=centroids_of(arr, coarse, len(old)),
    )


def _subsample(n: int, fraction: float, seed: int, run: int) -> np.ndarray:
    """The users refit ``run`` is fitted on: a random ``fraction`` of ``n`` (all of them at 1), sorted."""
    if fraction >= 1:
        return np.arange(n)
    rng = np.random.default_rng([seed, 1 + run])
    return np.sort(rng.choice(n, max(2, round(fraction * n)), replace=False))


def _check_refits(owner: str, n_runs: int, fraction: float) -> None:
    if n_runs < 1:
        raise ConfigError(f"The 'n_runs' parameter of {owner} must be an int >= 1. Got {n_runs} instead.")
    if not 0 < fraction <= 1:
        raise ConfigError(f"The 'fraction' parameter of {owner} must be in (0, 1]. Got {fraction} instead.")


def refits(
    finder: BaseGroupFinder[Any], X: np.ndarray, *, n_runs: int = 3, fraction: float = 0.8, seed: int = 0
) -> list[np.ndarray]:
    """Labels of every user from ``n_runs`` refits of an unfitted copy of ``finder``: run ``r`` fits on a random
    ``fraction`` of the users with seed ``seed + 1 + r`` (when the method has a seed) and labels all of them with
    ``assign``."""
    _check_refits("refits", n_runs, fraction)
    arr = as_unit_vectors(X, owner="refits")
    n = arr.shape[0]
    seeded = "seed" in type(finder.config).model_fields
    out = []
    with warnings.catch_warnings():  # a refit's own check; the grouping itself was checked when it was fitted
        warnings.simplefilter("ignore", GroupingWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for run in range(n_runs):
            rows = _subsample(n, fraction, seed, run)
            model = finder.with_params(seed=seed + 1 + run) if seeded else finder.with_params()
            out.append(np.asarray(model.fit(arr[rows]).assign(arr), dtype=np.int64))
    return out


def _best_jaccard(labels: np.ndarray, other: np.ndarray, n_groups: int) -> np.ndarray:
    """For each group of ``labels``, the largest Jaccard overlap of its members with a group of ``other``."""
    keep = (labels >= 0) & (other >= 0)
    m = int(other.max()) + 1 if (other >= 0).any() else 0
    inter = np.zeros((n_groups, max(m, 1)))
    np.add.at(inter, (labels[keep], other[keep]), 1.0)
    size_a = np.bincount(labels[labels >= 0], minlength=n_groups).astype(np.float64)
    size_b = np.bincount(other[other >= 0], minlength=max(m, 1)).astype(np.float64)
    union = size_a[:, None] + size_b[None, :] - inter
    jac = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return jac.max(axis=1)


def group_stability(labels: np.ndarray, others: Iterable[np.ndarray]) -> np.ndarray:
    """Per group of ``labels``: the mean over ``others`` (labelings of the same users, e.g. :func:`refits`) of the
    best-matching group's Jaccard overlap of members (1: found again exactly every time)."""
    labels = np.asarray(labels, dtype=np.int64)
    n_groups = int(labels.max()) + 1 if (labels >= 0).any() else 0
    scores = [_best_jaccard(labels, np.asarray(o, dtype=np.int64), n_groups) for o in others]
    if not scores:
        raise ConfigError("group_stability needs at least one other labeling of the same users.")
    return np.mean(scores, axis=0)


class StabilityCheck(BaseModel):
    """How each group's stability was measured, and the result: ``fine``/``coarse`` hold one mean best-match
    Jaccard per group; a group below ``threshold`` is flagged unstable."""

    method: str
    n_runs: int
    fraction: float
    threshold: float
    fine: list[float]
    coarse: list[float] | None = None


def _coarse_of(X: np.ndarray, fine: np.ndarray, n_coarse: int, merge_on: np.ndarray | None = None) -> np.ndarray:
    n_fine = int(fine.max()) + 1 if (fine >= 0).any() else 0
    if n_fine == 0:
        return fine
    return nest(X, compact_labels(fine)[0], min(n_coarse, n_fine), merge_on=merge_on).coarse_labels


def choose_coarse_k(
    X: np.ndarray,
    fine_labels: np.ndarray,
    candidates: Iterable[int] = range(5, 13),
    *,
    refit_labels: Sequence[np.ndarray] = (),
    min_stability: float = 0.6,
    tolerance: float = 0.05,
    sample_size: int | None = 3000,
    seed: int = 0,
    merge_on: np.ndarray | None = None,
) -> KChoice:
    """How many coarse groups a reader gets: each candidate cut of the fine groups' tree (:func:`nest`) is scored
    by its cosine silhouette and its stability (mean ARI against the same cut of the tree built on each of
    ``refit_labels``, 1.0 without refits). Rule: among cuts with stability >= ``min_stability``, the fewest
    groups whose silhouette is within ``tolerance`` (relative) of the best: fewer groups read more easily, and
    silhouettes that close are not told apart. Candidates above the number of fine groups are dropped; if none
    is left, every fine group is its own coarse group. With ``merge_on`` the tree is built (:func:`nest`) and
    the silhouettes computed in that space."""
    arr = as_unit_vectors(X, owner="choose_coarse_k")
    space = _merge_space(merge_on, arr, "choose_coarse_k")
    fine = np.asarray(fine_labels, dtype=np.int64)
    n_fine = int(fine.max()) + 1 if (fine >= 0).any() else 0
    ks = sorted({int(c) for c in candidates if 2 <= int(c) <= n_fine})
    if not ks:
        k = max(n_fine, 1)
        return KChoice(k=k, rule=f"no candidate in [2, {n_fine}] fine groups: each fine group is its own", scores=[])
    scores = []
    for k in ks:
        coarse = nest(arr, fine, k, merge_on=merge_on).coarse_labels
        quality = group_quality(space, coarse, sample_size=sample_size, seed=seed)
        aris = [float(adjusted_rand_score(coarse, _coarse_of(arr, other, k, merge_on))) for other in refit_labels]
        scores.append(_coarse_score(k, quality, coarse, aris))
    return _fewest_readable(
        scores,
        min_stability,
        tolerance,
        among=f"among cuts of the {n_fine} fine groups' Ward tree",
        none=f"no cut reached stability {min_stability}; the most stable cut of the {n_fine} fine groups' tree",
    )


def _coarse_score(k: int, quality: GroupQuality, coarse: np.ndarray, aris: Sequence[float]) -> KScore:
    members = coarse[coarse >= 0]
    return KScore(
        k=k,
        n_groups=quality.n_groups,
        silhouette=quality.silhouette,
        davies_bouldin=quality.davies_bouldin,
        stability=float(np.mean(aris)) if aris else 1.0,
        largest_share=float(np.bincount(members).max() / len(coarse)) if len(members) else 0.0,
    )


def _fewest_readable(scores: list[KScore], min_stability: float, tolerance: float, *, among: str, none: str) -> KChoice:
    """The coarse rule: among stable candidates, the fewest groups whose silhouette is near the best; else the
    most stable one."""
    picked = pick_stable(scores, min_stability=min_stability, tolerance=tolerance, fewest=True)
    if picked is not None:
        best, top = picked
        rule = (
            f"fewest coarse groups with stability >= {min_stability} and silhouette within {tolerance:.0%} of the "
            f"best ({top:.3f}), {among}"
        )
    else:
        best = max(scores, key=lambda s: (s.stability, -s.k))
        rule = none
    return KChoice(k=best.k, rule=rule, scores=scores)


def coarse_refits(
    X: np.ndarray, refit_labels: Sequence[np.ndarray], n_coarse: int, *, merge_on: np.ndarray | None = None
) -> list[np.ndarray]:
    """The coarse labels of each refit: its own fine groups' tree (merged on ``merge_on`` when given) cut at
    ``n_coarse``."""
    arr = as_unit_vectors(X, owner="coarse_refits")
    return [_coarse_of(arr, np.asarray(r, dtype=np.int64), n_coarse, merge_on) for r in refit_labels]


# ---------------------------------------------------------------------------------------------- top-down trees
def allocate(sizes: Sequence[int] | np.ndarray, n_fine: int) -> np.ndarray:
    """How many fine groups each coarse group of ``sizes`` users gets: shares of ``n_fine`` proportional to size,
    rounded by largest remainder, at least one each (ties to the lowest group). Sums to ``n_fine``."""
    size = np.asarray(sizes, dtype=np.float64)
    if len(size) == 0 or (size <= 0).any():
        raise ConfigError(f"allocate: every coarse group needs at least one user. Got sizes {size.tolist()} instead.")
    if n_fine < len(size):
        raise ConfigError(
            f"The 'n_fine' parameter of allocate must be an int >= the number of coarse groups ({len(size)}), so "
            f"each gets one. Got {n_fine} instead."
        )
    quota = size / size.sum() * n_fine
    alloc = np.maximum(np.floor(quota).astype(np.int64), 1)
    while alloc.sum() < n_fine:  # the largest remainders first
        alloc[int(np.argmax(np.round(quota - alloc, 12)))] += 1
    while alloc.sum() > n_fine:  # the minimum of one pushed the total over: take from the most over-served
        over = np.where(alloc > 1, np.round(alloc - quota, 12), -np.inf)
        alloc[int(np.argmax(over))] -= 1
    return alloc


def _fit_labels(finder: BaseGroupFinder[Any], X: np.ndarray, k: int) -> np.ndarray:
    with warnings.catch_warnings():  # a part's own check; the tree's groups are checked by their stability
        warnings.simplefilter("ignore", GroupingWarning)
        return np.asarray(finder.with_params(k=k).fit(X).labels_, dtype=np.int64)


def top_down(
    X: np.ndarray, text_vectors: np.ndarray, n_coarse: int, n_fine: int, finder: BaseGroupFinder[Any]
) -> Hierarchy:
    """A top-down tree: the coarse groups are ``finder``'s groups (at ``k = n_coarse``) of the unit text vectors,
    where names are read; each coarse group is then split by ``finder`` on its users' rows of ``X`` (the run's
    vectors) into its share of ``n_fine`` (:func:`allocate`; never more groups than users). Coarse groups keep
    the finder's numbering (by size); fine groups are numbered coarse group by coarse group. Nested by
    construction; the same seed gives the same tree."""
    arr = as_unit_vectors(X, owner="top_down")
    text = as_unit_vectors(text_vectors, owner="top_down")
    if text.shape[0] != arr.shape[0]:
        raise ConfigError(
            f"top_down: text_vectors has {text.shape[0]} rows but X has {arr.shape[0]}; pass one row per user."
        )
    if "k" not in type(finder.config).model_fields:
        raise ConfigError(f"top_down needs a group finder with a 'k' parameter. Got {type(finder).__name__} instead.")
    coarse = compact_labels(_fit_labels(finder, text, min(n_coarse, len(text))))[0]
    k_coarse = int(coarse.max()) + 1
    alloc = allocate(np.bincount(coarse, minlength=k_coarse), max(n_fine, k_coarse))
    fine = np.full(len(coarse), -1, dtype=np.int64)
    parent: list[int] = []
    for c in range(k_coarse):
        rows = np.flatnonzero(coarse == c)
        k = min(int(alloc[c]), len(rows))
        sub = _fit_labels(finder, arr[rows], k) if k > 1 else np.zeros(len(rows), dtype=np.int64)
        fine[rows] = len(parent) + sub
        parent += [c] * (int(sub.max()) + 1)
    n = len(parent)
    return Hierarchy(
        fine_labels=fine,
        coarse_labels=coarse,
        parent=np.asarray(parent, dtype=np.int64),
        fine_centroids=centroids_of(arr, fine, n),
        coarse_centroids=centroids_of(arr, coarse, k_coarse),
        kind="top-down",
        coarse_text_centroids=centroids_of(text, coarse, k_coarse),
        fine_text_centroids=centroids_of(text, fine, n),
    )


def top_down_refits(
    finder: BaseGroupFinder[Any],
    X: np.ndarray,
    text_vectors: np.ndarray,
    n_coarse: int,
    n_fine: int,
    *,
    n_runs: int = 3,
    fraction: float = 0.8,
    seed: int = 0,
) -> list[Hierarchy]:
    """``n_runs`` top-down trees (:func:`top_down`) refitted as :func:`refits` does: run ``r`` on a random
    ``fraction`` of the users with seed ``seed + 1 + r``; every user is then labelled by the refit's tree
    (:func:`place_in_tree`: nearest coarse centroid in the text space, nearest of its children in ``X``). The
    returned trees' ``fine_labels``/``coarse_labels`` hold those labels of all users."""
    _check_refits("top_down_refits", n_runs, fraction)
    arr = as_unit_vectors(X, owner="top_down_refits")
    text = as_unit_vectors(text_vectors, owner="top_down_refits")
    out = []
    for run in range(n_runs):
        rows = _subsample(len(arr), fraction, seed, run)
        tree = top_down(arr[rows], text[rows], n_coarse, n_fine, finder.with_params(seed=seed + 1 + run))
        assert tree.coarse_text_centroids is not None
        coarse, fine = place_in_tree(text, arr, tree.coarse_text_centroids, tree.fine_centroids, tree.parent)
        out.append(replace(tree, fine_labels=fine, coarse_labels=coarse))
    return out


def choose_top_down_k(
    text_vectors: np.ndarray,
    finder: BaseGroupFinder[Any],
    candidates: Iterable[int] = range(5, 13),
    *,
    n_runs: int = 3,
    fraction: float = 0.8,
    min_stability: float = 0.6,
    tolerance: float = 0.05,
    sample_size: int | None = 3000,
    seed: int = 0,
) -> KChoice:
    """The coarse k of a top-down tree, chosen for readability as :func:`choose_coarse_k` chooses a cut: each
    candidate's ``finder`` groups of the unit text vectors are scored by their cosine silhouette there and their
    stability (mean ARI against ``n_runs`` refits with other seeds on subsamples, everyone labelled by the
    refit's nearest centroid; 1.0 with ``n_runs = 0``). Rule: among candidates with stability >=
    ``min_stability``, the fewest groups whose silhouette is within ``tolerance`` (relative) of the best."""
    text = as_unit_vectors(text_vectors, owner="choose_top_down_k")
    ks = sorted({int(c) for c in candidates if 2 <= int(c) < len(text)})
    if not ks:
        raise ConfigError(
            f"choose_top_down_k: no coarse candidate in [2, {len(text) - 1}] for {len(text)} users; give smaller "
            "coarse_candidates or more users."
        )
    scores = []
    for k in ks:
        coarse = _fit_labels(finder, text, k)
        quality = group_quality(text, coarse, sample_size=sample_size, seed=seed)
        others = refits(finder.with_params(k=k), text, n_runs=n_runs, fraction=fraction, seed=seed) if n_runs else []
        aris = [float(adjusted_rand_score(coarse, other)) for other in others]
        scores.append(_coarse_score(k, quality, coarse, aris))
    return _fewest_readable(
        scores,
        min_stability,
        tolerance,
        among="among k-means groups of the text vectors (top-down tree)",
        none=f"no k reached stability {min_stability}; the most stable k-means grouping of the text vectors",
    )
