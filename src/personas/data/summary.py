"""Counts, sparsity, value ranges and text coverage of a dataset."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np

from personas.data.dataset import Dataset

__all__ = ["DatasetSummary", "summarize"]


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    users: int
    items: int
    interactions: int
    density: float
    rating_min: float | None
    rating_max: float | None
    rating_mean: float | None
    first_time: str | None
    last_time: str | None
    interactions_per_user_median: float
    users_with_text: float
    items_with_title: float
    interactions_with_review: float
    tags: int
    users_with_tags: int
    user_attributes: tuple[str, ...]
    item_attributes: tuple[str, ...]

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["sparsity"] = self.sparsity
        return out


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%d")


def _share(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else 0.0


def summarize(dataset: Dataset) -> DatasetSummary:
    cells = dataset.n_users * dataset.n_items
    pairs = dataset.matrix("binary").nnz if dataset.n_interactions else 0
    ratings = dataset.ratings[~np.isnan(dataset.ratings)]
    times = dataset.timestamps[dataset.timestamps >= 0]
    per_user = np.bincount(dataset.user_rows, minlength=dataset.n_users)
    items = dataset.items
    tags = dataset.tags
    return DatasetSummary(
        name=dataset.name,
        users=dataset.n_users,
        items=dataset.n_items,
        interactions=dataset.n_interactions,
        density=pairs / cells if cells else 0.0,
        rating_min=float(ratings.min()) if len(ratings) else None,
        rating_max=float(ratings.max()) if len(ratings) else None,
        rating_mean=float(ratings.mean()) if len(ratings) else None,
        first_time=_iso(times.min()) if len(times) else None,
        last_time=_iso(times.max()) if len(times) else None,
        interactions_per_user_median=float(np.median(per_user)) if len(per_user) else 0.0,
        users_with_text=_share([t is not None for t in dataset.user_texts()]),
        items_with_title=_share([isinstance(t, str) and bool(t) for t in items["title"]]),
        interactions_with_review=_share([r is not None for r in dataset.reviews]),
        tags=0 if tags is None else len(tags),
        users_with_tags=0 if tags is None else int(tags["user"].nunique()),
        user_attributes=tuple(c for c in dataset.users.columns if c not in ("user_id", "text")),
        item_attributes=tuple(c for c in items.columns if c not in ("item_id", "title", "text")),
    )
