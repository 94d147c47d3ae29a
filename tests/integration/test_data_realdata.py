"""The built-in real datasets, fetched from the package registry (marked realdata)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from personas.cli import app
from personas.data import Dataset, ProfileConfig, build_profiles, summarize

pytestmark = pytest.mark.realdata


def test_ml100k_counts_and_content(ml100k: Dataset) -> None:
    assert (ml100k.n_users, ml100k.n_items, ml100k.n_interactions) == (943, 1682, 100_000)
    assert set(np.unique(ml100k.ratings)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    users = ml100k.users.set_index("user_id")
    assert users.loc["1", ["age", "gender", "occupation"]].tolist() == ["24", "M", "technician"]
    items = ml100k.items.set_index("item_id")
    assert items.loc["50", "title"] == "Star Wars"
    assert items.loc["50", "release_year"] == "1977"
    assert "Sci-Fi" in items.loc["50", "genres"]
    assert ml100k.matrix("rating").nnz == 100_000  # no duplicate pairs in ml-100k


def test_ml_latest_small_counts_and_tags(ml_latest_small: Dataset) -> None:
    assert (ml_latest_small.n_users, ml_latest_small.n_interactions) == (671, 100_004)
    assert ml_latest_small.n_items == 9066
    tags = ml_latest_small.tags
    assert tags is not None and len(tags) == 1296 and tags["user"].nunique() == 61
    assert summarize(ml_latest_small).rating_min == 0.5


def test_ml100k_profiles(ml100k: Dataset) -> None:
    profiles = build_profiles(ml100k, ProfileConfig(max_tokens=128))
    assert len(profiles) == 943
    assert profiles[ml100k.user_vocab.row("1")].startswith("a 24-year-old male technician. liked: ")
    assert all(p for p in profiles)


def test_data_info_prints_the_ml100k_counts(ml100k: Dataset) -> None:
    result = CliRunner().invoke(app, ["data", "info", "ml-100k"])
    assert result.exit_code == 0, result.output
    for expected in ("943", "1,682", "100,000"):
        assert expected in result.stdout
