"""The ColdStartRouter's choices, each made on users of the training data whose history is hidden, by NDCG@10;
never on anyone's test data. Each function returns its choice and the evidence behind it and changes nothing.

- :func:`choose_cold_weights`: the cold route's side-ridge l2 and group and content weights (cross-validation
  folds of users with history, made cold).
- :func:`choose_few_weights`: the few route's blend per history size (users whose first N items are shown and
  the rest is the truth) and the switch point to the warm model (from the first history size that enough
  known users have, their next items on a temporal split of the training data decide).
- :func:`choose_cold_item_scale`: how far new items may climb known users' rankings (the same temporal split).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from personas.data import Dataset
from personas.holdout import (
    best_distinct,
    first_best,
    first_n_split,
    lightest_near_best,
    list_overlap,
    ndcg_of_scores,
    simplex_grid,
    temporal_holdout,
)
from personas.recommend.base import Recommender, normalise_rows
from personas.recommend.feature_cf import FeatureCF, choose_fill_scale
from personas.recommend.neighbours import similarity_vote
from personas.recommend.placement import GroupPlacer
from personas.recommend.popular import GroupPopular
from personas.recommend.router_config import ColdStartRouterConfig
from personas.recommend.side import SideRidge
from personas.recommend.text_match import TextMatch, mean_item_vectors

__all__ = [
    "FEW_PARTS",
    "FewChoice",
    "KnownUsers",
    "choose_cold_item_scale",
    "choose_cold_weights",
    "choose_few_weights",
    "choose_profile_weight",
    "choose_text_weight",
    "cold_folds",
    "few_part_scores",
    "known_user_split",
    "profile_sample",
]

FEW_PARTS = ("warm", "item_knn", "popular", "content", "group")
# With item texts in the users' text space (TextMatch), the few route also blends what the items taken mean.
TEXT_PART = "text"


def few_names(width: int) -> tuple[str, ...]:
    """The few route's part names for a weight table this wide (the text part last, when there is one)."""
    return (*FEW_PARTS, TEXT_PART)[:width]


#: Fits the few route's collaborative parts on a dataset with the given group labels (None: no groups).
Refit = Callable[[Dataset, np.ndarray | None], dict[str, Recommender]]


def few_part_scores(parts: Mapping[str, Recommender], shown: sp.csr_matrix) -> dict[str, np.ndarray]:
    """Each few-route part's z-normalised scores for the rows of ``shown`` (popularity from the group part)."""
    names = [name for name in (*FEW_PARTS, TEXT_PART) if name != "popular" and name in parts]
    scores = {name: normalise_rows(parts[name].score_histories(shown)) for name in names}
    popular = normalise_rows(parts["group"].popularity_.reshape(1, -1))[0]
    scores["popular"] = np.tile(popular, (shown.shape[0], 1))
    return scores


def _hide_groups(groups: np.ndarray | None, users: np.ndarray, n_users: int) -> np.ndarray | None:
    return None if groups is None else np.where(np.isin(np.arange(n_users), users), -1, groups)


# -- the cold route ---------------------------------------------------------------------------------------
class ColdFold(NamedTuple):
    """One fold of the cold route's cross-validation: known users made cold and what the router knows of them."""

    held: np.ndarray  # the fold's users (rows), sorted
    rest: np.ndarray  # the other users with history
    group_part: np.ndarray  # z(group-popular of their placement), held x items
    content: np.ndarray  # z(content from what is known besides behaviour), held x items
    truth: sp.csr_matrix  # all their items, held x items
    group_scores: np.ndarray  # the fold's group item rates (groups x items)
    global_rate: np.ndarray  # the fold's item rates over everyone


def cold_folds(
    cfg: ColdStartRouterConfig,
    dataset: Dataset,
    groups: np.ndarray | None,
    placer: GroupPlacer,
    cold_content: Callable[[np.ndarray], np.ndarray],
) -> Iterator[ColdFold]:
    """The users with history split into ``cold_folds`` seeded folds (up to ``cold_validation_users``); each
    fold in turn becomes cold: its interactions are hidden from a GroupPopular fitted on the other folds, its
    users are placed by side text (or vector) with ``placer``, and their items are the truth. Nothing when
    fewer than 20 users have history."""
    seen = dataset.matrix("binary")
    active = np.flatnonzero(np.diff(seen.indptr) > 0)
    if len(active) < 20:
        return
    rng = np.random.default_rng(cfg.seed)
    if len(active) > cfg.cold_validation_users:  # enough for the choice; full ranking of each is the cost
        active = rng.choice(active, cfg.cold_validation_users, replace=False)
    labels_all = groups if groups is not None else np.full(dataset.n_users, -1, dtype=np.int64)
    for held in np.array_split(rng.permutation(active), cfg.cold_folds):
        held = np.sort(held)
        labels = labels_all.copy()
        labels[held] = -1
        gp = GroupPopular(cfg.group_popular).fit(
            dataset.subset_interactions(~np.isin(dataset.user_rows, held)), groups=labels
        )
        voters = (np.diff(gp.seen_.indptr) > 0) & (labels >= 0)
        # placed as a cold user is: by side text. Their own vectors are profiles that hold their whole history
        # (behaviour as text), which a user without history never has.
        weights = placer.with_side(user_vectors=np.zeros((0, 0))).known_user_weights(held, labels, voters)
        placed = np.asarray(weights.any(axis=1), dtype=bool)
        # the placer counts the model's groups; this fold's fit may miss the small ones whose users are all held
        group_scores = gp.group_scores_for(placer.n_groups)
        group_part = normalise_rows(np.where(placed[:, None], weights @ group_scores, gp.global_rate_))
        yield ColdFold(
            held,
            np.setdiff1d(active, held),
            group_part,
            normalise_rows(cold_content(held)),
            seen[held],
            group_scores,
            gp.global_rate_,
        )


def choose_cold_weights(
    cfg: ColdStartRouterConfig,
    dataset: Dataset,
    groups: np.ndarray | None,
    placer: GroupPlacer,
    side_binary: sp.csr_matrix,
    cold_content: Callable[[np.ndarray], np.ndarray],
) -> tuple[float, float, float]:
    """(side ridge l2 (0 = popularity), group weight, content weight) with the best cross-validated NDCG@10 on
    the :func:`cold_folds` (a ridge fitted on the other folds scores each fold). Several folds because one fold
    of ml-100k (~150 users) moved the choice with the seed. With fewer than 20 users with history the
    configured values are kept; they are also the first candidates, so they win ties. ``cold_content(rows)``
    gives known users' content scores from what is known besides behaviour.
    """
    first = (cfg.cold_l2 or 0.0, cfg.cold_group_weight, cfg.cold_content_weight)
    l2s = list(dict.fromkeys((first[0], *cfg.cold_l2s)))
    mixes = list(
        dict.fromkeys(
            [(first[1], first[2])] + [(g, c) for g in cfg.cold_group_weights for c in cfg.cold_content_weights]
        )
    )
    if not cfg.tune_cold:
        return first
    seen = dataset.matrix("binary")
    totals: dict[tuple[float, float, float], float] = {}
    for fold in cold_folds(cfg, dataset, groups, placer, cold_content):
        for l2 in l2s:
            ridge = SideRidge().fit(side_binary[fold.rest], seen[fold.rest], l2)
            base = normalise_rows(ridge.scores(side_binary[fold.held]))
            for g, c in mixes:
                score = ndcg_of_scores(base + g * fold.group_part + c * fold.content, fold.truth, 10)
                totals[(l2, g, c)] = totals.get((l2, g, c), 0.0) + len(fold.held) * score
    if not totals:
        return first
    keys = list(totals)
    return keys[first_best([totals[key] for key in keys])]


def choose_text_weight(
    cfg: ColdStartRouterConfig,
    dataset: Dataset,
    groups: np.ndarray | None,
    placer: GroupPlacer,
    side_binary: sp.csr_matrix,
    cold_content: Callable[[np.ndarray], np.ndarray],
    cold_weights: tuple[float, float, float],
    text: TextMatch,
) -> tuple[float, np.ndarray]:
    """How much a cold user's words count beside the cold route's other parts (weighted as ``cold_weights``):
    the candidate of ``text_weights`` with the best NDCG@10 on the :func:`cold_folds`, where each held user's
    first ``text_match.shown`` items' texts stand in for their words (their mean item text vector), their later
    items are the truth, and they are scored as someone who typed only words is served (placed by the words;
    no side words, no content). Only weights whose top-10 lists for different held users share at most
    ``text_match.max_overlap`` (mean Jaccard) qualify: NDCG@10 alone prefers the group's popular items, the
    same list whatever was typed. With the (3, candidates) trials: weight, NDCG@10, overlap. The first
    candidate when not tuned."""
    untuned = (cfg.text_weights[0], np.zeros((3, 0)))
    if not cfg.tune_text:
        return untuned
    l2, g, _ = cold_weights  # content reads text, not a vector: a typed text reaches it only at serving
    shown_n = text.config.shown
    seen = dataset.matrix("binary")
    counts = np.diff(seen.indptr)
    totals = np.zeros(len(cfg.text_weights))
    overlaps = np.zeros(len(cfg.text_weights))
    n_users = 0
    for fold in cold_folds(cfg, dataset, groups, placer, cold_content):
        keep = counts[fold.held] > shown_n
        users = fold.held[keep]
        if not len(users):
            continue
        shown, truth = first_n_split(dataset, users, shown_n)
        proxy = mean_item_vectors(text.item_vectors_, shown)
        # Scored as the router serves someone who typed words and nothing else (no side words): placed in a
        # group by the words' vector (then the group is the base), else side ridge on no words + the global rate.
        placed = np.zeros((len(users), len(fold.group_scores)))
        if placer.centroids.size and placer.centroids.shape[1] == proxy.shape[1]:
            placed = np.vstack([placer.weights(vector=v) for v in proxy])
        by_words = np.asarray(placed.any(axis=1), dtype=bool)
        ridge = SideRidge().fit(side_binary[fold.rest], seen[fold.rest], l2)
        no_words = normalise_rows(ridge.scores(sp.csr_matrix((1, side_binary.shape[1])))) + g * normalise_rows(
            fold.global_rate.reshape(1, -1)
        )
        base = np.where(by_words[:, None], normalise_rows(placed @ fold.group_scores), no_words)
        words = normalise_rows(text.vector_scores(proxy))
        masked = shown.nonzero()
        for i, weight in enumerate(cfg.text_weights):
            scores = base + weight * words
            scores[masked] = -np.inf
            totals[i] += len(users) * ndcg_of_scores(scores, truth, 10)
            overlaps[i] += len(users) * list_overlap(scores, 10, seed=cfg.seed)
        n_users += len(users)
    if n_users == 0:
        return untuned
    results, shares = totals / n_users, overlaps / n_users
    best = best_distinct(results, shares, text.config.max_overlap)
    return float(cfg.text_weights[best]), np.array([list(cfg.text_weights), results, shares])


def profile_sample(side_vectors: np.ndarray, seen: sp.csr_matrix, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` users (seeded) who hold a side text and took items: their rows and their unit side-text
    rows. What this dataset's users wrote about themselves, against which a new text is told to be a profile
    or a wish, and the voters of the peers part."""
    rows = np.flatnonzero((np.abs(side_vectors).sum(axis=1) > 0) & (np.diff(seen.indptr) > 0))
    if len(rows) > n:
        rows = np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))
    vectors = normalize(side_vectors[rows]) if len(rows) else np.zeros((0, side_vectors.shape[1]))
    return rows.astype(np.int64), vectors


def text_peer_votes(
    vectors: np.ndarray, voter_vectors: np.ndarray, voter_rows: np.ndarray, seen: sp.csr_matrix, k: int
) -> np.ndarray:
    """Each (unit) text vector's vote over items: the items of the ``k`` voters whose (unit) side texts are
    nearest it, weighted by the (positive) cosine (:func:`~personas.recommend.neighbours.similarity_vote`)."""
    if not len(voter_rows) or not len(vectors):
        return np.zeros((len(vectors), seen.shape[1]))
    sims = np.asarray(vectors, dtype=np.float64) @ np.asarray(voter_vectors, dtype=np.float64).T
    return similarity_vote(sims, voter_rows, seen, k)


def choose_profile_weight(
    cfg: ColdStartRouterConfig,
    dataset: Dataset,
    groups: np.ndarray | None,
    placer: GroupPlacer,
    side_binary: sp.csr_matrix,
    cold_content: Callable[[np.ndarray], np.ndarray],
    cold_weights: tuple[float, float, float],
    text: TextMatch,
    side_vectors: np.ndarray,
) -> tuple[float, float, np.ndarray]:
    """How much the text vector of what a cold user wrote about themselves counts on the cold route, through
    the items' texts (``text_weights``) and through the items of the users who wrote alike (``peer_weights``,
    :func:`text_peer_votes` over the fold's other users with a side text): the pair with the best NDCG@10 on
    the :func:`cold_folds` users who have a side text (the lightest pair within ``profile_tolerance`` of the
    best, :func:`~personas.holdout.lightest_near_best`), with their own side-text vector as their words, their
    side words and placement as the cold route uses them (weighted as ``cold_weights``), and all their items
    as the truth. No overlap bound: these are real texts and real items. Returns the text weight, the peer
    weight and the (3, pairs) trials (text weight, peer weight, NDCG@10); -1, 0 when no held user has a side
    text."""
    none = (-1.0, 0.0, np.zeros((3, 0)))
    if not cfg.tune_text:
        return none
    l2, g, c = cold_weights
    seen = dataset.matrix("binary")
    has_text = np.abs(side_vectors).sum(axis=1) > 0
    pairs = [(w, p) for w in cfg.text_weights for p in cfg.peer_weights]
    totals = np.zeros(len(pairs))
    n_users = 0
    for fold in cold_folds(cfg, dataset, groups, placer, cold_content):
        keep = has_text[fold.held]
        if not keep.any():
            continue
        held = fold.held[keep]
        ridge = SideRidge().fit(side_binary[fold.rest], seen[fold.rest], l2)
        base = normalise_rows(ridge.scores(side_binary[held]))
        base = base + g * fold.group_part[keep] + c * fold.content[keep]
        words = normalise_rows(text.vector_scores(side_vectors[held]))
        voters = fold.rest[has_text[fold.rest]]
        peers = normalise_rows(
            text_peer_votes(normalize(side_vectors[held]), normalize(side_vectors[voters]), voters, seen, cfg.peer_k)
        )
        for i, (weight, peer) in enumerate(pairs):
            totals[i] += len(held) * ndcg_of_scores(base + weight * words + peer * peers, fold.truth[keep], 10)
        n_users += len(held)
    if n_users == 0:
        return none
    results = totals / n_users
    weight, peer = pairs[lightest_near_best(results, [w + p for w, p in pairs], cfg.profile_tolerance)]
    trials = np.array([[w for w, _ in pairs], [p for _, p in pairs], list(results)])
    return float(weight), float(peer), trials


# -- the few route and the switch point -----------------------------------------------------------------
class KnownUsers(NamedTuple):
    """A temporal split of the training data for choices checked on known users (see known_user_split)."""

    before: Dataset
    history: sp.csr_matrix  # users x items, the earlier interactions
    later: sp.csr_matrix  # users x items, the truth
    users: np.ndarray
    parts: dict[str, Recommender]


def known_user_split(
    cfg: ColdStartRouterConfig, dataset: Dataset, groups: np.ndarray | None, refit: Refit
) -> KnownUsers | None:
    """A per-user temporal split of the training data (the warm protocol's split): each user's last
    ``switch_holdout`` of interactions in time is the truth, for up to ``switch_validation_users`` users
    with at least ``switch_min_truth`` such items (one or two make NDCG@10 a coin toss, and users that short
    are the few-shot simulation's population). The few route's parts are refitted on the earlier
    interactions, where these users' groups are hidden (they are placed by their earlier history, as a new
    user would be). None when fewer than 10 users qualify."""
    before = dataset.subset_interactions(
        temporal_holdout(dataset, cfg.switch_holdout, min_interactions=2, round_up=False)
    )
    seen = dataset.matrix("binary")
    history = before.matrix("binary")
    later = sp.csr_matrix(seen - seen.multiply(history > 0))
    later.eliminate_zeros()
    users = np.flatnonzero((np.diff(history.indptr) >= 1) & (np.diff(later.indptr) >= cfg.switch_min_truth))
    if len(users) < 10:
        return None
    if len(users) > cfg.switch_validation_users:
        rng = np.random.default_rng(cfg.seed + 2)
        users = np.sort(rng.choice(users, cfg.switch_validation_users, replace=False))
    return KnownUsers(before, history, later, users, refit(before, _hide_groups(groups, users, dataset.n_users)))


class FewChoice(NamedTuple):
    """The few route's weights per history size and the switch point, with the evidence."""

    shots: np.ndarray  # the tuned history sizes
    table: np.ndarray  # one weight row (FEW_PARTS) per size
    min_history: int  # from this size the warm model alone is used
    # rows: gains on simulated new users, gains on known users, known users; a column per tuned size
    switch_gains: np.ndarray


def choose_few_weights(
    cfg: ColdStartRouterConfig,
    dataset: Dataset,
    groups: np.ndarray | None,
    refit: Refit,
    known: KnownUsers | None,
    *,
    with_text: bool = False,
) -> FewChoice:
    """Weights of the few route per history size and the history size from which the warm model alone takes
    over.

    Up to ``few_validation_users`` users with at least N + 5 items are hidden from refitted parts; for each
    N of ``few_shots`` (below a fixed ``min_history``) their first N items in time are shown and the rest
    is the truth; the weight vector with the best NDCG@10 is kept (the configured one is tried first and
    wins ties). The switch point: see :func:`switch_point`, with the known users of ``known``. ``with_text``:
    the refitted parts include TextMatch ("text"), blended as a sixth part (0 in the configured weights).
    """
    names = few_names(len(FEW_PARTS) + int(with_text))
    shots = [n for n in cfg.few_shots if cfg.min_history is None or n < cfg.min_history]
    default = np.array([*cfg.few_weights, *[0.0] * (len(names) - len(FEW_PARTS))], dtype=np.float64)
    fixed_min = cfg.min_history if cfg.min_history is not None else 5
    untuned = FewChoice(np.array([1], dtype=np.int64), default.reshape(1, -1), fixed_min, np.zeros((3, 0)))
    counts = np.diff(dataset.matrix("binary").indptr)
    candidates = np.flatnonzero(counts >= (shots[0] if shots else 1) + 5)
    if not cfg.tune_few or not shots or len(candidates) < 10:
        return untuned
    rng = np.random.default_rng(cfg.seed + 1)
    held = np.sort(rng.choice(candidates, min(cfg.few_validation_users, max(10, len(candidates) // 5)), replace=False))
    rest = dataset.subset_interactions(~np.isin(dataset.user_rows, held))
    parts = refit(rest, _hide_groups(groups, held, dataset.n_users))
    grid = np.vstack([default / default.sum(), simplex_grid(len(names), cfg.few_grid_step)])
    table, used, gains = [], [], []
    warm_alone = int(np.flatnonzero(grid[:, 0] == 1.0)[0])
    for n in shots:
        users = held[counts[held] >= n + 5]
        if len(users) < 10:
            break
        shown, truth = first_n_split(dataset, users, n)
        part_scores = few_part_scores(parts, shown)
        stacked = np.stack([part_scores[name] for name in names]).astype(np.float32)
        masked = shown.nonzero()
        scores = []
        for w in grid:
            blend = np.tensordot(w.astype(np.float32), stacked, axes=1)
            blend[masked] = -np.inf
            scores.append(ndcg_of_scores(blend, truth, 10))
        best = first_best(scores)
        table.append(grid[best])
        used.append(n)
        gains.append(len(users) * (scores[best] - scores[warm_alone]))
    if not table:
        return untuned
    shots_arr, table_arr = np.asarray(used, dtype=np.int64), np.vstack(table)
    if cfg.min_history is not None:
        return FewChoice(shots_arr, table_arr, int(cfg.min_history), np.zeros((3, 0)))
    known_gains, known_users = known_user_gains(known, shots_arr, table_arr)
    # Below the first history size that enough known users have, only the simulation speaks (nobody in the
    # data has so little history); from there on the known users' next items decide.
    enough = np.flatnonzero(known_users >= cfg.switch_min_users)
    first = int(enough[0]) if len(enough) else len(shots_arr)
    evidence = np.vstack([np.asarray(gains), known_gains, known_users])
    chosen = np.concatenate([np.asarray(gains)[:first], known_gains[first:]])
    return FewChoice(shots_arr, table_arr, switch_point(shots_arr, chosen), evidence)


def weights_for(shots: np.ndarray, table: np.ndarray, n_history: int) -> dict[str, float]:
    """The few route's weights for a history of this size (those of the largest tuned N <= it)."""
    row = max(int(np.searchsorted(shots, n_history, side="right")) - 1, 0)
    return dict(zip(few_names(table.shape[1]), table[row].tolist(), strict=True))


def known_user_gains(known: KnownUsers | None, shots: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``table``: how much more NDCG@10 (summed over users) its blend gives the known users of
    ``known`` than the warm model alone, and how many users that row had. Users with ``h`` earlier items,
    ``1 <= h <= shots[-1]``, are scored with the weights the router would use for ``h`` (those of the
    largest tuned N <= h): the population the few-shot simulation does not see, users with some history
    whose next items, not all the rest, are the truth."""
    out, n_users = np.zeros(len(shots)), np.zeros(len(shots))
    if known is None:
        return out, n_users
    counts = np.diff(known.history.indptr)
    users = known.users[counts[known.users] <= shots[-1]]
    rows = np.maximum(np.searchsorted(shots, counts[users], side="right") - 1, 0)
    for row in np.unique(rows).tolist():
        members = users[rows == row]
        scores = few_part_scores(known.parts, known.history[members])
        blend = sum(w * scores[name] for name, w in zip(few_names(table.shape[1]), table[row], strict=True))
        warm = scores["warm"]
        masked = known.history[members].nonzero()
        blend[masked] = warm[masked] = -np.inf
        truth = known.later[members]
        out[row] = len(members) * (ndcg_of_scores(blend, truth, 10) - ndcg_of_scores(warm, truth, 10))
        n_users[row] = len(members)
    return out, n_users


def switch_point(shots: np.ndarray, gains: np.ndarray) -> int:
    """The history size from which the warm model alone is used: the one of ``shots`` (or one past the last)
    below which the blends' summed validation gains over the warm model alone are largest (smallest wins ties).
    """
    totals = np.concatenate([[0.0], np.cumsum(gains)])  # totals[i]: blends for the rows below shots[i]
    best = first_best(totals)
    return int(shots[best]) if best < len(shots) else int(shots[-1]) + 1


# -- new items --------------------------------------------------------------------------------------------
def choose_cold_item_scale(
    cfg: ColdStartRouterConfig,
    known: KnownUsers | None,
    few: FewChoice,
    item_vectors: np.ndarray | None,
    item_text_vectors: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """How strongly items nobody took in training enter known users' rankings (see ``fill_cold_items``):
    the candidate of ``cold_item_scales`` with the best NDCG@10 on ``known``'s users, routed as the router
    routes them (``few``), where FeatureCF fitted on the earlier interactions scores the items nobody took
    there; with the (2, candidates) trials. The first candidate when that split has no such item in anyone's
    truth."""
    default = cfg.cold_item_scales[0], np.zeros((2, 0))
    if known is None or not cfg.tune_cold_item_scale or cfg.cold_items is None:
        return default
    new_items = np.asarray(known.history.sum(axis=0)).ravel() == 0
    truth = known.later[known.users]
    if not new_items.any() or truth[:, new_items].nnz == 0:
        return default
    model = FeatureCF(cfg.cold_items).fit(known.before, item_vectors=item_vectors, item_text_vectors=item_text_vectors)
    counts = np.diff(known.history.indptr)[known.users]
    history = known.history[known.users]
    scores = np.empty((len(known.users), known.history.shape[1]))
    warm = counts >= few.min_history
    if warm.any():  # the warm route needs the warm part only
        scores[warm] = normalise_rows(known.parts["warm"].score_histories(history[warm]))
    for n in np.unique(counts[~warm]).tolist():
        members = counts == n
        parts = few_part_scores(known.parts, history[members])
        scores[members] = sum(w * parts[name] for name, w in weights_for(few.shots, few.table, n).items())
    return choose_fill_scale(scores, model, history, truth, cfg.cold_item_scales, ndcg_of_scores)
