"""Top-down trees ([discover] tree = "top-down"): coarse groups found in the text space, fine groups inside each,
on tiny data whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from personas.discover import (
    HDBSCANGroups,
    KMeansGroups,
    allocate,
    choose_top_down_k,
    group_stability,
    place_in_tree,
    top_down,
    top_down_refits,
)
from personas.errors import ConfigError


def text_and_taste(seed: int = 0, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Users with two kinds of vectors. Text: three topics (axes 0, 4, 8) of 60, 30 and 30 users. Taste (the
    run's vectors): inside the first topic two tastes of 30 users (axes 0 and 1); the others one taste each, and
    the second topic's taste is the first topic's second one (axis 1), so a grouping of the taste vectors
    alone mixes topics. Returns (text, taste, topic, fine truth)."""
    rng = np.random.default_rng(seed)
    d = 12
    topic = np.repeat([0, 1, 2], [60, 30, 30])
    fine = np.repeat([0, 1, 2, 3], 30)
    text = np.zeros((120, d))
    text[np.arange(120), 4 * topic] = 1.0
    taste = np.zeros((120, d))
    taste[np.arange(120), np.array([0, 1, 1, 6])[fine]] = 1.0
    taste[60:90, 3] = 0.6  # the second topic's taste leans its own way a little
    text = text + noise * rng.standard_normal(text.shape)
    taste = taste + noise * rng.standard_normal(taste.shape)
    return text.astype(np.float32), taste.astype(np.float32), topic, fine


def test_allocate_shares_fine_groups_by_size_with_at_least_one_each() -> None:
    assert allocate([60, 30, 30], 4).tolist() == [2, 1, 1]
    assert allocate([50, 30, 20], 10).tolist() == [5, 3, 2]
    # largest remainder: quotas 2.5, 1.5, 1.0 -> the tie of remainders goes to the first group
    assert allocate([50, 30, 20], 5).tolist() == [3, 1, 1]
    # the minimum of one pushes a tiny group up; the most over-served big group gives one back
    tiny = allocate([96, 2, 2], 4)
    assert tiny.tolist() == [2, 1, 1] and tiny.sum() == 4
    for sizes, k in (([7, 5, 3, 1], 9), ([1, 1, 1], 3), ([1000, 1], 2), ([3, 3, 3, 3, 3], 12)):
        alloc = allocate(sizes, k)
        assert alloc.sum() == k and (alloc >= 1).all()
    with pytest.raises(ConfigError, match="The 'n_fine' parameter of allocate must be an int >= the number"):
        allocate([5, 5, 5], 2)


def test_coarse_groups_are_kmeans_of_the_text_and_fine_groups_nest_inside() -> None:
    text, taste, topic, truth = text_and_taste()
    tree = top_down(taste, text, 3, 4, KMeansGroups(k=2, seed=0))
    # coarse: exactly the finder's k-means groups of the text vectors at the same seed
    assert np.array_equal(tree.coarse_labels, KMeansGroups(k=3, seed=0).fit(text).labels_)
    for c in range(3):  # each coarse group is one topic
        assert len(set(topic[tree.coarse_labels == c])) == 1
    # nested: every fine group in exactly one coarse group, its parent
    assert tree.kind == "top-down" and tree.n_fine == 4 and tree.n_coarse == 3
    for f in range(tree.n_fine):
        assert set(tree.coarse_labels[tree.fine_labels == f]) == {tree.parent[f]}
    assert np.array_equal(tree.coarse_labels, tree.parent[tree.fine_labels])
    # the 60-user topic got two fine groups (its two tastes), the others one
    big = int(tree.coarse_labels[0])
    assert len(tree.children(big)) == 2
    for f in range(4):
        assert len(set(truth[tree.fine_labels == f])) == 1
    # the same seed gives the same tree
    again = top_down(taste, text, 3, 4, KMeansGroups(k=2, seed=0))
    assert np.array_equal(again.fine_labels, tree.fine_labels) and np.array_equal(again.parent, tree.parent)
    # the taste vectors alone put the second topic's users with the first topic's second taste
    flat = KMeansGroups(k=3, seed=0).fit(taste).labels_
    assert any(len(set(topic[flat == g])) > 1 for g in range(3))


def test_a_new_user_gets_the_nearest_coarse_group_in_text_and_one_of_its_children() -> None:
    text, taste, topic, _ = text_and_taste()
    tree = top_down(taste, text, 3, 4, KMeansGroups(k=2, seed=0))
    assert tree.coarse_text_centroids is not None and tree.fine_text_centroids is not None
    # a text of the third topic whose taste looks like the first topic's: text decides the coarse group
    new_text = np.zeros((1, 12), dtype=np.float32)
    new_text[0, 8] = 1.0
    new_taste = np.zeros((1, 12), dtype=np.float32)
    new_taste[0, 0] = 1.0
    coarse, fine = tree.place_text(new_text, new_taste)
    third = int(tree.coarse_labels[topic == 2][0])
    assert coarse[0] == third == int(np.argmax(tree.coarse_text_centroids @ new_text[0]))
    assert tree.parent[fine[0]] == coarse[0]
    # the plain nearest fine group (Hierarchy.place) goes by taste and would land elsewhere
    assert tree.place(new_taste)[0][0] != third
    # every run user placed by their own vectors: parent(fine) == coarse, and their own groups back
    coarse_all, fine_all = tree.place_text(text, taste)
    assert np.array_equal(tree.parent[fine_all], coarse_all)
    assert np.array_equal(coarse_all, tree.coarse_labels) and np.array_equal(fine_all, tree.fine_labels)
    # text only: the fine group among the children is the nearest in the text space
    only_text = tree.place_text(new_text)
    assert only_text[0][0] == third and tree.parent[only_text[1][0]] == third
    with pytest.raises(ConfigError, match="place_in_tree: the vectors have 5 and 12 columns"):
        place_in_tree(np.ones((1, 5)), new_taste, tree.coarse_text_centroids, tree.fine_centroids, tree.parent)


def test_top_down_refits_and_coarse_k_choice_find_the_three_topics() -> None:
    text, taste, _, _ = text_and_taste()
    tree = top_down(taste, text, 3, 4, KMeansGroups(k=2, seed=0))
    trees = top_down_refits(KMeansGroups(k=2, seed=0), taste, text, 3, 4, n_runs=3, seed=0)
    assert len(trees) == 3
    for other in trees:
        assert np.array_equal(other.parent[other.fine_labels], other.coarse_labels)  # nested for everyone
    # clear groups are found again by every refit
    assert group_stability(tree.coarse_labels, [t.coarse_labels for t in trees]) == pytest.approx(1.0)
    assert group_stability(tree.fine_labels, [t.fine_labels for t in trees]) == pytest.approx(1.0)
    choice = choose_top_down_k(text, KMeansGroups(k=2, seed=0), [2, 3, 4], n_runs=2, seed=0)
    assert choice.k == 3 and [s.k for s in choice.scores] == [2, 3, 4]
    assert "text vectors" in choice.rule


def test_top_down_refuses_mismatched_rows_and_a_finder_without_k() -> None:
    text, taste, _, _ = text_and_taste()
    with pytest.raises(ConfigError, match="top_down: text_vectors has 10 rows but X has 120"):
        top_down(taste, text[:10], 3, 4, KMeansGroups(k=2, seed=0))
    with pytest.raises(ConfigError, match=r"top_down needs a group finder with a 'k' parameter\. Got HDBSCANGroups"):
        top_down(taste, text, 3, 4, HDBSCANGroups())
