"""A checkerboard where the right recommendation is obvious, and one factory per recommender.

Eight users, eight items, two tastes: users a0-a3 took space films s0-s3, users r0-r3 took romances
m0-m3, each user all of their block but one. The one missing item of their own block is the right answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.recommend import (
    ALS,
    EASE,
    ColdStartRouter,
    ContentBased,
    FeatureCF,
    GroupPopular,
    Hybrid,
    ItemKNN,
    MostPopular,
    Random,
    Recommender,
    TextMatch,
)

BLOCK = 4


def checkerboard() -> tuple[Dataset, np.ndarray, dict[str, str]]:
    """The dataset, its group labels, and the right answer per user."""
    rows, answer = [], {}
    t = 0
    for prefix, item_prefix in (("a", "s"), ("r", "m")):
        for u in range(BLOCK):
            user = f"{prefix}{u}"
            answer[user] = f"{item_prefix}{u}"
            for i in range(BLOCK):
                if i != u:
                    t += 1
                    rows.append((user, f"{item_prefix}{i}", 5.0, t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame(
        {
            "item_id": [f"s{i}" for i in range(BLOCK)] + [f"m{i}" for i in range(BLOCK)],
            "title": [
                *("Star Voyage", "Space Station", "Alien Planet", "Galaxy Quest"),
                *("Love Letters", "Wedding Bells", "Paris Romance", "First Kiss"),
            ],
            "genres": ["Sci-Fi space"] * BLOCK + ["Romance love"] * BLOCK,
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [f"a{u}" for u in range(BLOCK)] + [f"r{u}" for u in range(BLOCK)],
            "text": ["I love space and aliens"] * BLOCK + ["romance and love stories"] * BLOCK,
        }
    )
    dataset = Dataset.from_frames(inter, users=users, items=items, name="checkerboard")
    groups = np.array([0 if uid.startswith("a") else 1 for uid in dataset.user_vocab.ids], dtype=np.int64)
    return dataset, groups, answer


Factory = Callable[[], Recommender]

# Small settings so that every model fits the 8 x 8 board in milliseconds.
FACTORIES: dict[str, Factory] = {
    "Random": lambda: Random(seed=3),
    "MostPopular": MostPopular,
    "GroupPopular": lambda: GroupPopular(shrinkage=1.0),
    "ItemKNN": lambda: ItemKNN(k=3),
    "EASE": lambda: EASE(l2=1.0),
    "ALS": lambda: ALS(factors=4, iterations=20, regularization=0.01, seed=1),
    "ContentBased": lambda: ContentBased(min_df=1, use_kg=False),
    "FeatureCF": lambda: FeatureCF(l2=0.1),
    "Hybrid": lambda: Hybrid(),
    "ColdStartRouter": lambda: ColdStartRouter(min_history=2),
    "TextMatch": lambda: TextMatch(priors=(0.0,)),
}

# Models that cannot know the answer: everyone took as many items of each block.
NO_KNOWN_ANSWER = {"Random", "MostPopular"}


@pytest.fixture(scope="session")
def board() -> tuple[Dataset, np.ndarray, dict[str, str]]:
    return checkerboard()


@pytest.fixture(params=sorted(FACTORIES))
def model_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def item_text_vectors(dataset: Dataset) -> np.ndarray:
    """The board's items in a two-word text space: space films along one axis, romances along the other."""
    space = np.array([item.startswith("s") for item in dataset.item_vocab.ids], dtype=np.float64)
    return np.column_stack([space, 1.0 - space]) + 0.01 * np.arange(dataset.n_items)[:, None]


def fit(model: Recommender, board: tuple[Dataset, np.ndarray, dict[str, str]]) -> Recommender:
    """Every model gets the same fit inputs and reads what it uses."""
    dataset, groups, _ = board
    return model.fit(dataset, groups=groups, item_text_vectors=item_text_vectors(dataset))


@pytest.fixture
def fitted(model_name: str, board: tuple[Dataset, np.ndarray, dict[str, str]]) -> Recommender:
    return fit(FACTORIES[model_name](), board)


@pytest.fixture
def factory(model_name: str) -> Factory:
    return FACTORIES[model_name]


@pytest.fixture
def knows_answer(model_name: str) -> bool:
    return model_name not in NO_KNOWN_ANSWER
