"""The columnar data layer gives what the per-user code gives: the same profile texts, string for string, and
the same group-popular counts, on messy synthetic data (blank texts, missing ratings, repeated items, tags)."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp

from personas.data import Dataset, ProfileConfig, build_profiles
from personas.data.columnar import additive_separators, group_counts, group_item_counts, profile_texts
from personas.data.profiles import build_profiles_loop, count_tokens

_WORDS = ["space", "opera", "Tea", "love", "ok", "it's", "sci-fi", "état", "日本", "x1", "42"]
_ENDS = ["", ".", "!", "?", " ", ";", "。", "  . ", ")"]


def _text(rng: np.random.Generator, most: int = 12) -> str:
    words = rng.choice(_WORDS, size=rng.integers(0, most)).tolist()
    return " ".join(words) + str(rng.choice(_ENDS))


def messy(seed: int, n_users: int = 60, n_items: int = 25) -> Dataset:
    """Users with and without texts, reviews, tags, ratings (some all missing) and interactions."""
    rng = np.random.default_rng(seed)
    n = n_users * 6
    users = rng.integers(0, n_users - 3, size=n)  # the last three users have no interactions
    ratings = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, np.nan], size=n)
    ratings[users % 7 == 0] = np.nan  # users who never rated
    ratings[(users % 7 == 1) & (ratings >= 4)] = 2.0  # users who never rated high
    reviews = [None if rng.random() < 0.5 else _text(rng) for _ in range(n)]
    inter = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in rng.integers(0, n_items, size=n)],  # repeats: the same item twice
            "rating": ratings,
            "timestamp": rng.integers(0, 30, size=n),  # ties: the item row decides
            "review": reviews,
        }
    )
    texts = [None if rng.random() < 0.3 else _text(rng, 40) for _ in range(n_users)]
    texts[1] = "   "  # present but blank
    frame_users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(n_users)],
            "text": texts,
            "age": [None if rng.random() < 0.2 else int(rng.integers(15, 70)) for _ in range(n_users)],
            "gender": rng.choice(["M", "F", "X"], size=n_users),
            "occupation": [
                None if rng.random() < 0.5 else str(rng.choice(["writer", "nurse"])) for _ in range(n_users)
            ],
        }
    )
    titles = [None if i % 9 == 4 else f"Film {i}" + ("." if i % 5 == 0 else "") for i in range(n_items)]
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": titles,
            "release_year": [None if i % 4 == 0 else 1990 + i for i in range(n_items)],
            "genres": [None if i % 3 == 0 else "Drama|Sci-Fi" for i in range(n_items)],
        }
    )
    tag_users = rng.integers(0, n_users, size=40)
    tags = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in tag_users],
            "item_id": [f"i{i}" for i in rng.integers(0, n_items, size=40)],
            "tag": rng.choice(["funny", "dark", "funny", "slow burn", "日本"], size=40),
        }
    )
    return Dataset.from_frames(inter, users=frame_users, items=items, tags=tags)


CONFIGS = [
    ProfileConfig(),
    ProfileConfig(max_tokens=8),
    ProfileConfig(max_tokens=20),
    ProfileConfig(max_tokens=45, max_reviews=2, max_tags=1),
    ProfileConfig(min_rating=None),
    ProfileConfig(parts=("behaviour", "demographics", "tags", "text")),
    ProfileConfig(parts=("demographics", "behaviour", "demographics"), part_separator=" | ", item_separator=" / "),
    ProfileConfig(parts=("text", "reviews")),
    ProfileConfig(behaviour_template="[{items}].", item_template="{title}", demographics_template="{gender}"),
    ProfileConfig(max_reviews=0, max_tags=0, part_separator="."),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
def test_profile_texts_equal_the_per_user_loop(seed: int, config: ProfileConfig) -> None:
    dataset = messy(seed)
    loop = build_profiles_loop(dataset, config)
    columns = profile_texts(dataset, config)
    assert columns is not None
    assert sum(1 for a, b in zip(loop, columns, strict=True) if a != b) == 0
    assert profile_texts(dataset, config, block=7) == loop  # joined a few users at a time
    assert any(count_tokens(t) == config.max_tokens for t in loop) or config.max_tokens > 40  # budgets do bite


def test_separators_that_could_merge_words_take_the_loop() -> None:
    config = ProfileConfig(item_separator=" and ")  # ends in a space: safe
    assert additive_separators(config)
    for unsafe in (
        ProfileConfig(item_separator="and"),
        ProfileConfig(part_separator="x"),
        ProfileConfig(behaviour_template="liked{items}"),
        ProfileConfig(part_separator=".x "),
    ):
        assert not additive_separators(unsafe)
        dataset = messy(0)
        assert profile_texts(dataset, unsafe) is None
        assert build_profiles(dataset, unsafe) == build_profiles_loop(dataset, unsafe)


def test_a_custom_counter_takes_the_loop() -> None:
    dataset = messy(1)
    config = ProfileConfig(max_tokens=60)

    def chars(text: str) -> int:
        return len(text) // 4

    assert build_profiles(dataset, config, counter=chars) == build_profiles_loop(dataset, config, counter=chars)
    assert build_profiles(dataset, config, counter=chars) != build_profiles(dataset, config)


def test_users_without_anything_get_an_empty_text() -> None:
    inter = pd.DataFrame({"user_id": ["a"], "item_id": ["i"]})
    users = pd.DataFrame({"user_id": ["a", "b"]})
    items = pd.DataFrame({"item_id": ["i"], "title": ["Heat"]})
    dataset = Dataset.from_frames(inter, users=users, items=items)
    assert profile_texts(dataset, ProfileConfig()) == build_profiles_loop(dataset) == ["liked: Heat", ""]


def test_group_item_counts_count_each_user_item_pair_once() -> None:
    users = np.array([0, 0, 0, 1, 2, 2, 3])
    items = np.array([1, 1, 2, 1, 0, 2, 2])
    labels = np.array([0, 0, 1, -1])
    counts = group_item_counts(users, items, labels, 2, 3)
    # group 0 = users 0, 1: item 1 by both (user 0 twice), item 2 by user 0; group 1 = user 2; user 3 none
    assert counts.tolist() == [[0.0, 2.0, 1.0], [1.0, 0.0, 1.0]]


@pytest.mark.parametrize("seed", range(3))
def test_group_item_counts_equal_the_sparse_product(seed: int) -> None:
    dataset = messy(seed)
    labels = np.random.default_rng(seed).integers(-1, 4, size=dataset.n_users)
    member = np.flatnonzero(labels >= 0)
    onehot = sp.csr_matrix((np.ones(len(member)), (labels[member], member)), shape=(4, dataset.n_users))
    expected = (onehot @ dataset.matrix("binary")).toarray()
    got = group_item_counts(dataset.user_rows, dataset.item_rows, labels, 4, dataset.n_items)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_group_counts_of_a_binary_matrix_equal_the_group_by_over_its_pairs(seed: int, dtype: type) -> None:
    dataset = messy(seed)
    labels = np.random.default_rng(seed).integers(-1, 4, size=dataset.n_users)
    labels[-1] = 5  # groups 4 and 5: one empty, one with a member who took nothing
    matrix = dataset.matrix("binary").astype(dtype)
    users = np.repeat(np.arange(dataset.n_users), np.diff(matrix.indptr))
    expected = group_item_counts(users, matrix.indices, labels, 6, dataset.n_items, distinct=True)
    got = group_counts(matrix, labels, 6)
    assert got.dtype == np.float64 and got.shape == (6, dataset.n_items)
    np.testing.assert_array_equal(got, expected)
    assert got[4].sum() == 0 and got.sum() == matrix[labels >= 0].nnz
    assert group_counts(matrix, np.full(dataset.n_users, -1), 0).shape == (0, dataset.n_items)


def _reference_group_scores(dataset: Dataset, labels: np.ndarray, shrinkage: float = 5.0) -> np.ndarray:
    """GroupPopular's scores as the sparse product it used before the group-by."""
    seen = dataset.matrix("binary")
    active = (np.diff(seen.indptr) > 0).astype(np.float64)
    global_rate = np.asarray(seen.sum(axis=0)).ravel() / max(active.sum(), 1.0)
    n_groups = int(labels.max()) + 1
    member = np.flatnonzero(labels >= 0)
    onehot = sp.csr_matrix((np.ones(len(member)), (labels[member], member)), shape=(n_groups, dataset.n_users))
    counts = (onehot @ seen).toarray()
    denom = (onehot @ active)[:, None] + shrinkage
    return (counts + shrinkage * global_rate[None, :]) / denom


@pytest.mark.parametrize("seed", range(3))
def test_group_popular_fit_as_a_group_by_gives_the_same_scores_and_lists(seed: int) -> None:
    from personas.recommend.popular import GroupPopular

    dataset = messy(seed)
    labels = np.random.default_rng(seed).integers(-1, 4, size=dataset.n_users)
    labels[:4] = [0, 1, 2, 3]
    model = GroupPopular().fit(dataset, groups=labels)
    np.testing.assert_array_equal(model.group_scores_, _reference_group_scores(dataset, labels))
    users = dataset.user_vocab.ids[labels >= 0][:10]
    ids, _ = model.recommend(users, n=5)
    reference = GroupPopular().fit(dataset, groups=labels)
    reference.group_scores_ = _reference_group_scores(dataset, labels)
    assert ids.tolist() == reference.recommend(users, n=5).ids.tolist()


def _same_dataset(a: Dataset, b: Dataset) -> None:
    assert a.user_vocab == b.user_vocab and a.item_vocab == b.item_vocab
    for name in ("user_rows", "item_rows", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.reviews.tolist() == b.reviews.tolist()
    pd.testing.assert_frame_equal(a.users, b.users)
    pd.testing.assert_frame_equal(a.items, b.items)
    if a.tags is None or b.tags is None:
        assert a.tags is None and b.tags is None
    else:
        pd.testing.assert_frame_equal(a.tags, b.tags)


@pytest.mark.parametrize("seed", range(3))
def test_parquet_interactions_load_as_columns_into_the_dataset_the_pandas_path_builds(seed: int, tmp_path) -> None:
    from personas.data import load_dataset

    source = messy(seed)
    inter = source.interactions()[["user_id", "item_id", "rating", "timestamp", "review"]]
    inter.to_parquet(tmp_path / "inter.parquet")
    inter.to_csv(tmp_path / "inter.csv", index=False)  # CSV takes the pandas path: the reference
    source.users.to_csv(tmp_path / "users.csv", index=False)
    source.items.to_csv(tmp_path / "items.csv", index=False)
    tags = source.tags
    assert tags is not None
    pd.DataFrame(
        {
            "user_id": source.user_vocab.ids[tags["user"]],
            "item_id": source.item_vocab.ids[tags["item"]],
            "tag": tags["tag"],
        }
    ).to_csv(tmp_path / "tags.csv", index=False)
    files = {"users": tmp_path / "users.csv", "items": tmp_path / "items.csv", "tags": tmp_path / "tags.csv"}
    fast, fast_report = load_dataset(tmp_path / "inter.parquet", **files, name="x")
    slow, slow_report = load_dataset(tmp_path / "inter.csv", **files, name="x")
    _same_dataset(fast, slow)
    assert fast_report == slow_report
    assert build_profiles(fast) == build_profiles(slow)


def test_parquet_integer_ids_without_entity_files_keep_first_appearance_order(tmp_path) -> None:
    from personas.data import load_dataset

    inter = pd.DataFrame(
        {"user": [30, 4, 30, 7], "movie": [9, 9, 1, 2], "rating": [4.0, None, 2.0, 5.0], "ts": [5, 6, None, 8]}
    )
    inter.to_parquet(tmp_path / "i.parquet")
    inter.astype(object).to_csv(tmp_path / "i.csv", index=False)
    columns = {"interactions": {"user_id": "user", "item_id": "movie", "timestamp": "ts"}}
    fast, _ = load_dataset(tmp_path / "i.parquet", columns=columns)
    assert list(fast.user_vocab.ids) == ["30", "4", "7"] and list(fast.item_vocab.ids) == ["9", "1", "2"]
    assert fast.timestamps.tolist() == [5, 6, -1, 8]
    slow, _ = load_dataset(tmp_path / "i.csv", columns=columns)
    _same_dataset(fast.subset_interactions(np.ones(4, dtype=bool), name=slow.name), slow)


def test_parquet_values_the_columns_cannot_vouch_for_get_the_pandas_path_and_its_messages(tmp_path) -> None:
    from personas.data import load_dataset
    from personas.errors import DataError

    pd.DataFrame({"user_id": ["a", " b"], "item_id": ["x", "y"]}).to_parquet(tmp_path / "padded.parquet")
    padded, _ = load_dataset(tmp_path / "padded.parquet")
    assert list(padded.user_vocab.ids) == ["a", "b"]  # stripped, as the pandas rules say
    pd.DataFrame({"user_id": ["a", ""], "item_id": ["x", "y"]}).to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataError, match=r"empty.parquet, row 2, field 'user_id': empty user id"):
        load_dataset(tmp_path / "empty.parquet")
    pd.DataFrame({"user_id": ["a"]}).to_csv(tmp_path / "users.csv", index=False)
    pd.DataFrame({"user_id": ["a", "zz"], "item_id": ["x", "y"]}).to_parquet(tmp_path / "unknown.parquet")
    with pytest.raises(DataError, match=r"row 2, field 'user_id': user id 'zz' is not in"):
        load_dataset(tmp_path / "unknown.parquet", users=tmp_path / "users.csv")
    dropped, report = load_dataset(tmp_path / "unknown.parquet", users=tmp_path / "users.csv", unknown_ids="drop")
    assert dropped.n_interactions == 1 and report.dropped_unknown_users == 1


@pytest.mark.slow  # ~8 s on a quiet machine (the per-user loop and the CSV reference path)
def test_ten_thousand_users_same_dataset_texts_groups_and_top_n(tmp_path) -> None:
    """The shape of bench/scale.py at 10^4 users: Parquet read as columns vs CSV through pandas, then texts
    per column vs per user, k-means groups (ARI 1.0 at one seed), group-popular scores and lists."""
    from sklearn.metrics import adjusted_rand_score

    from personas.data import load_dataset
    from personas.discover import KMeansGroups
    from personas.recommend.popular import GroupPopular

    rng = np.random.default_rng(7)
    n_users, n_items, per_user = 10_000, 500, 20
    taste = rng.integers(8, size=n_users)
    liked = rng.choice(n_items, size=(8, 40))
    users = np.repeat(np.arange(n_users), per_user)
    items = np.where(rng.random(len(users)) < 0.8, liked[taste[users], rng.integers(40, size=len(users))], 0)
    items = np.where(items == 0, rng.integers(n_items, size=len(users)), items)
    pd.DataFrame(
        {
            "user_id": users.astype(str),
            "item_id": items.astype(str),
            "rating": rng.integers(1, 6, size=len(users)).astype(float),
            "timestamp": rng.integers(10**9, 10**9 + 1000, size=len(users)),  # many ties
        }
    ).to_parquet(tmp_path / "inter.parquet")
    pd.read_parquet(tmp_path / "inter.parquet").to_csv(tmp_path / "inter.csv", index=False)
    genres = ["Action", "Comedy", "Drama", "Horror"]
    pd.DataFrame(
        {
            "item_id": np.arange(n_items).astype(str),
            "title": [f"Film {i} {genres[i % 4].lower()} story" for i in range(n_items)],
            "genres": [genres[i % 4] for i in range(n_items)],
        }
    ).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame(
        {"user_id": np.arange(n_users).astype(str), "age": rng.integers(15, 70, size=n_users).astype(str)}
    ).to_csv(tmp_path / "users.csv", index=False)
    files = {"users": tmp_path / "users.csv", "items": tmp_path / "items.csv"}
    fast, _ = load_dataset(tmp_path / "inter.parquet", **files, name="s")
    slow, _ = load_dataset(tmp_path / "inter.csv", **files, name="s")
    _same_dataset(fast, slow)
    assert build_profiles_loop(slow) == build_profiles(fast)
    # Groups from the behaviour, the same at one seed on both datasets (texts: the ml-100k realdata test).
    labels = [
        KMeansGroups(k=8, seed=0).fit(d.matrix("binary").toarray().astype(np.float32)).labels_ for d in (fast, slow)
    ]
    assert adjusted_rand_score(labels[0], labels[1]) == 1.0
    model = GroupPopular().fit(fast, groups=labels[0])
    np.testing.assert_array_equal(model.group_scores_, _reference_group_scores(slow, labels[1]))
    users = fast.user_vocab.ids[:500]
    assert (
        model.recommend(users, n=10).ids.tolist()
        == GroupPopular().fit(slow, groups=labels[1]).recommend(users, n=10).ids.tolist()
    )


def test_term_counts_equal_count_vectorizer_with_the_keyword_analyser() -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    from personas.data.columnar import phrase_matrix, term_counts
    from personas.describe.keywords import _PHRASE_END, STOP_WORDS, _analyzer

    texts = [*build_profiles(messy(0)), *build_profiles(messy(1), ProfileConfig(parts=("text", "reviews")))]
    texts += [
        "Raiders of the Lost Ark; good will hunting. The Wizard of Oz, (musical) sci-fi: star wars",
        "   ",
        "end with a dot.",
        "a.b.c. d. e.; Star WARS.",
    ]
    phrases = phrase_matrix(texts, _PHRASE_END)
    for stop, ngram, min_df, binary in [(STOP_WORDS, 1, 1, True), (STOP_WORDS | {"film"}, 2, 2, False)]:
        analyse = _analyzer(frozenset(stop), ngram)
        vectorizer = CountVectorizer(analyzer=analyse, min_df=min_df, binary=binary)
        expected = vectorizer.fit_transform(texts)
        counts, terms = term_counts(phrases, analyse, min_df=min_df, binary=binary)
        assert terms.tolist() == vectorizer.get_feature_names_out().tolist()
        assert (counts != expected).nnz == 0


def test_parquet_string_ids_in_several_row_groups_keep_first_appearance_order(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from personas.data import load_dataset

    inter = pd.DataFrame({"user_id": ["b", "a", "c", "a", "d", "b", "e"], "item_id": list("xyzxwvx")})
    pq.write_table(pa.Table.from_pandas(inter, preserve_index=False), tmp_path / "i.parquet", row_group_size=2)
    inter.to_csv(tmp_path / "i.csv", index=False)
    fast, _ = load_dataset(tmp_path / "i.parquet", name="i")
    slow, _ = load_dataset(tmp_path / "i.csv", name="i")
    assert list(fast.user_vocab.ids) == ["b", "a", "c", "d", "e"]
    _same_dataset(fast, slow)


def _long_histories(n_users: int = 20_000, n_items: int = 300, per_user: int = 12) -> Dataset:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), per_user)
    inter = pd.DataFrame(
        {
            "user_id": users.astype(str),
            "item_id": rng.integers(n_items, size=len(users)).astype(str),
            "rating": 5.0,
            "timestamp": rng.integers(0, 1000, size=len(users)),
        }
    )
    titles = [f"A film with a long title, number {i}" for i in range(n_items)]
    return Dataset.from_frames(inter, items=pd.DataFrame({"item_id": np.arange(n_items).astype(str), "title": titles}))


@pytest.mark.parametrize("config", [ProfileConfig(parts=("behaviour",)), ProfileConfig()], ids=["behaviour", "all"])
def test_profile_strings_are_held_one_block_of_users_at_a_time(config: ProfileConfig) -> None:
    """Arrow never holds the strings of every user: the item names are taken, joined and framed per block.
    Built for everyone at once they peaked at 3x the texts (~1 GB at 10^6 users); in blocks of 1/20 of the
    users, ~0.3x. Measured on a proxy of Arrow's pool, which counts what Arrow itself allocates."""
    dataset = _long_histories()
    previous = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(previous)
    pa.set_memory_pool(pool)
    try:
        texts = profile_texts(dataset, config, block=1_000)
    finally:
        pa.set_memory_pool(previous)
    assert texts is not None and texts[0].startswith("liked: A film with a long title, number ")
    assert pool.max_memory() < sum(len(t.encode()) for t in texts) / 2


def test_profile_texts_hold_few_bytes_per_interaction_beside_the_texts() -> None:
    """numpy's arrays per interaction stay few and narrow (int32 order, keys built in place, temporaries freed):
    ~14 bytes per interaction at the peak beside the texts, against ~52 before (whole-array np.where and
    int64 copies). tracemalloc sees numpy's allocations and the Python strings, not Arrow's."""
    dataset = _long_histories()
    tracemalloc.start()
    try:
        texts = profile_texts(dataset, ProfileConfig(), block=1_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert texts is not None
    output = sys.getsizeof(texts) + sum(sys.getsizeof(t) for t in texts)
    assert (peak - output) / dataset.n_interactions < 30
