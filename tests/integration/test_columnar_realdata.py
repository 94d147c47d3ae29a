"""The columnar data layer agrees with today's per-user engine on MovieLens-100K (marked realdata): the same
profile texts for every user, hence the same TF-IDF vectors and groups (ARI 1.0 at the same seed), and the
same group-popular top-n."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from personas.data import Dataset, ProfileConfig, build_profiles
from personas.data.columnar import profile_texts
from personas.data.profiles import build_profiles_loop
from personas.discover import KMeansGroups
from personas.encode import TfidfEncoder
from personas.recommend.popular import GroupPopular

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(
    "config",
    [ProfileConfig(), ProfileConfig(parts=("text", "reviews")), ProfileConfig(max_tokens=32, min_rating=None)],
    ids=["default", "own-words", "short"],
)
def test_every_profile_text_is_the_loops(ml100k: Dataset, config: ProfileConfig) -> None:
    loop = build_profiles_loop(ml100k, config)
    columns = profile_texts(ml100k, config)
    assert columns is not None
    assert [row for row, (a, b) in enumerate(zip(loop, columns, strict=True)) if a != b] == []


def test_same_groups_and_group_popular_top_n(ml100k: Dataset) -> None:
    loop_texts, column_texts = build_profiles_loop(ml100k), build_profiles(ml100k)
    labels = []
    for texts in (loop_texts, column_texts):
        vectors = TfidfEncoder(n_components=32, seed=0).fit(texts).encode(texts)
        labels.append(KMeansGroups(k=8, seed=0).fit(vectors).labels_)
    assert adjusted_rand_score(labels[0], labels[1]) == 1.0
    model = GroupPopular().fit(ml100k, groups=labels[1])
    # the sparse product the fit used before the group-by
    seen = ml100k.matrix("binary")
    onehot = sp.csr_matrix((np.ones(ml100k.n_users), (labels[1], np.arange(ml100k.n_users))))
    active = (np.diff(seen.indptr) > 0).astype(np.float64)
    global_rate = np.asarray(seen.sum(axis=0)).ravel() / active.sum()
    expected = ((onehot @ seen).toarray() + 5.0 * global_rate) / ((onehot @ active)[:, None] + 5.0)
    np.testing.assert_array_equal(model.group_scores_, expected)
    reference = GroupPopular().fit(ml100k, groups=labels[1])
    reference.group_scores_ = expected
    users = ml100k.user_vocab.ids
    assert model.recommend(users, n=10).ids.tolist() == reference.recommend(users, n=10).ids.tolist()
