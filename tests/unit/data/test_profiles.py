from __future__ import annotations

import pandas as pd
import pytest

from personas.data import Dataset, ProfileConfig, build_profiles
from personas.data.profiles import count_tokens
from personas.errors import ConfigError


def test_profile_parts_in_order(tiny: Dataset) -> None:
    profiles = build_profiles(tiny, ProfileConfig(item_template="{title} [{genres}]"))
    # own text, demographics, then liked items most recent first; the 1-star rating is left out
    assert profiles[0] == (
        "I love space opera. a 24-year-old male. liked: Solaris [Sci-Fi Drama]; Alien [Sci-Fi Horror]; "
        "Star Wars [Sci-Fi]"
    )


def test_absent_fields_leave_no_gaps() -> None:
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "rating": [5.0]})
    users = pd.DataFrame({"user_id": ["u"], "age": [None], "gender": ["F"], "occupation": ["writer"]})
    items = pd.DataFrame({"item_id": ["i"], "title": ["Heat"], "release_year": [None], "genres": [None]})
    ds = Dataset.from_frames(inter, users=users, items=items)
    assert build_profiles(ds) == ["a female writer. liked: Heat"]


def test_users_who_never_rated_high_get_their_best_items() -> None:
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "rating": [2.0, 3.0], "timestamp": [1, 2]})
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"]})
    ds = Dataset.from_frames(inter, items=items)
    assert build_profiles(ds, ProfileConfig(parts=("behaviour",))) == ["liked: B"]


def test_token_budget_is_respected(ml_tiny_long: Dataset) -> None:
    for budget in (8, 20, 50):
        texts = build_profiles(ml_tiny_long, ProfileConfig(max_tokens=budget))
        assert all(count_tokens(t) <= budget for t in texts)
        assert texts[0].startswith("liked: Film 59")  # most recent first


def test_tags_and_reviews() -> None:
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "review": ["Great acting."]})
    tags = pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["i", "i", "i"], "tag": ["noir", "noir", "rain"]})
    ds = Dataset.from_frames(inter, tags=tags)
    assert build_profiles(ds, ProfileConfig(parts=("reviews", "tags"))) == [
        "Great acting. tags: noir, rain"
    ]  # no doubled full stop


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match=r"The .max_tokens. parameter of ProfileConfig must be an int >= 8\. Got 2"):
        ProfileConfig(max_tokens=2)
    with pytest.raises(ConfigError, match=r"must contain .\{items\}."):
        ProfileConfig(behaviour_template="liked")
    with pytest.raises(ConfigError, match="not a valid template"):
        ProfileConfig(item_template="{title")
    assert ProfileConfig.model_validate_json(ProfileConfig(max_tokens=64).model_dump_json()).max_tokens == 64


@pytest.fixture
def ml_tiny_long() -> Dataset:
    n = 60
    inter = pd.DataFrame(
        {"user_id": ["u"] * n, "item_id": [str(i) for i in range(n)], "rating": [5.0] * n, "timestamp": list(range(n))}
    )
    items = pd.DataFrame({"item_id": [str(i) for i in range(n)], "title": [f"Film {i}" for i in range(n)]})
    return Dataset.from_frames(inter, items=items)


def test_config_errors_use_one_template() -> None:
    with pytest.raises(ConfigError, match="ProfileConfig has no parameter 'max_token'"):
        ProfileConfig(max_token=3)
    with pytest.raises(ConfigError, match=r"The 'min_rating' parameter of ProfileConfig is invalid: .*Got 'high'"):
        ProfileConfig.model_validate({"min_rating": "high"})
    with pytest.raises(ValueError, match="max_tokens"):  # ConfigError is a ValueError
        ProfileConfig.model_validate_json('{"max_tokens": 1}')
