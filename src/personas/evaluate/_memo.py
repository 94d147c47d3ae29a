"""A small memo of values computed from a dataset, keyed by the dataset object itself.

A protocol builds the same things from one train set many times (group labels while choosing groups, then
for tuning and the test run; profile texts for every model's cold users). Datasets are immutable, so the
value of a train set can be kept for as long as the train set is in use: the memo holds the last few
datasets (and so keeps them alive) and compares them by identity, never by an ``id`` that could be reused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from personas.data import Dataset

__all__ = ["DatasetMemo"]

T = TypeVar("T")


class DatasetMemo(Generic[T]):
    """``memo(dataset)`` = ``compute(dataset)``, computed once for each of the last ``size`` datasets."""

    def __init__(self, compute: Callable[[Dataset], T], size: int = 4) -> None:
        self.compute = compute
        self.size = size
        self._entries: list[tuple[Dataset, T]] = []

    def __call__(self, dataset: Dataset) -> T:
        for i, (seen, value) in enumerate(self._entries):
            if seen is dataset:
                self._entries.append(self._entries.pop(i))  # most recently used last
                return value
        value = self.compute(dataset)
        self._entries.append((dataset, value))
        del self._entries[: -self.size]
        return value
