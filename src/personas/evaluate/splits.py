"""Splitters: turn one dataset into train and test datasets that share vocabularies.

Every splitter is seeded and returns a :class:`Split`. ``train`` and ``test`` are built with
:meth:`Dataset.subset_interactions`, so user and item rows mean the same thing in both, and the users and
items tables (side information, text) stay visible to models even for held-out users or items — only their
interactions are hidden. ``split.validation()`` carves a validation split out of ``train`` with the same
rules (and the next seed): tune on it, never on test.

==================  =======================================================================================
``TemporalSplit``   per user, the last ``test_fraction`` of interactions in time are test; users with fewer
                    than ``min_interactions`` stay train-only
``RandomHoldout``   per user, a random ``test_fraction`` of interactions are test
``LeaveOneOut``     per user, the last interaction in time is test
``ColdUsers``       ``fraction`` of users held out whole: no interaction of theirs in train
``FewShotUsers``    ``fraction`` of users held out; each reveals only the first ``n_shots`` in time (kept in
                    train: models are refitted with them, an easier question than a live service's)
``FewShotNewUsers`` the same users and items, strictly: held-out users are never in train; their first
                    ``n_shots`` are revealed at prediction time only (``Split.revealed``), through the models'
                    new-user path, as a new user arrives at a live service
``ColdItems``       ``fraction`` of items held out whole; ranking is over the held-out items only
``ColdTaggers``     ``fraction`` of the users who wrote tags held out whole, their tags taken out of train too;
                    their only input is the text of their own tags (``Split.revealed_text``), all of them or
                    (``held_tags="drop"``) without the tags on their own test items
==================  =======================================================================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from personas.config import Component, ComponentConfig
from personas.data import Dataset
from personas.errors import ConfigError, DataError
from personas.holdout import held_counts, time_rank

__all__ = [
    "ColdItems",
    "ColdTaggers",
    "ColdUsers",
    "FewShotNewUsers",
    "FewShotUsers",
    "LeaveOneOut",
    "RandomHoldout",
    "Split",
    "Splitter",
    "TemporalSplit",
]


@dataclass(frozen=True, eq=False)
class Split:
    """Train and test datasets over the same vocabularies, and what is evaluated.

    ``users``: the user rows to evaluate (each has at least one test interaction). ``candidates``: the item
    rows that may be ranked (None = every item). ``dropped_repeats``: test interactions removed because the
    same user-item pair is in train (train items are masked from rankings, so they could never be hit).
    """

    protocol: str
    train: Dataset
    test: Dataset
    users: np.ndarray
    candidates: np.ndarray | None
    splitter: Splitter = field(repr=False)
    dropped_repeats: int = 0
    # Interactions revealed at prediction time only (strict few-shot): not in train, never test.
    revealed: Dataset | None = None
    dataset: str = ""
    fingerprint: str = ""
    # Text of held-out users given at prediction time only (user row -> text, "" where they have none; never in
    # train): their side text.
    revealed_text: Mapping[int, str] | None = None
    # What the splitter measured about its split, printed beside the table.
    notes: tuple[str, ...] = ()

    def truth(self) -> sp.csr_matrix:
        """Binary users x items matrix of test interactions, one row per entry of ``users``."""
        return self.test.matrix("binary")[self.users]

    def validation(self) -> Split:
        """A split of ``train`` by the same rules with the next seed, for tuning.

        Made once per split and kept: choosing groups and tuning every model then share one validation train
        set, so what is cached per train set (group labels, profile texts) is computed once."""
        cached = self.__dict__.get("_validation")
        if cached is None:
            cached = self.splitter.with_seed(self.splitter.config.seed + 1).split(self.train, name="validation")
            object.__setattr__(self, "_validation", cached)  # frozen: a cache, not part of the value
        return cached

    def describe(self) -> str:
        cfg = self.splitter.config.model_dump()
        params = ", ".join(f"{k}={v}" for k, v in cfg.items())
        return f"{self.protocol} ({type(self.splitter).__name__}: {params})"

    def filtering(self) -> str:
        parts = [
            f"{len(self.users)} test users with >= 1 test interaction",
            f"{self.test.n_interactions} test interactions",
            f"{self.train.n_interactions} train interactions",
        ]
        if self.revealed is not None:
            parts.append(
                f"{self.revealed.n_interactions} interactions of the held-out users revealed at prediction time "
                "only (never in train; scored through the models' new-user path)"
            )
        if self.dropped_repeats:
            parts.append(f"{self.dropped_repeats} test interactions dropped: pair already in train")
        parts.append("relevance: any interaction (ratings ignored)")
        return "; ".join(parts)


class SplitConfig(ComponentConfig):
    seed: int = 0


class Splitter(Component[SplitConfig], ABC):
    """Base: a config, ``split(dataset) -> Split``. Subclasses implement ``_test_mask``."""

    Config: ClassVar[type[SplitConfig]] = SplitConfig
    protocol: ClassVar[str] = "split"
    config: SplitConfig

    def with_seed(self, seed: int) -> Self:
        return type(self)(self.config.model_copy(update={"seed": seed}))

    @abstractmethod
    def _test_mask(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """(test mask over interactions, candidate item rows or None)."""

    def _revealed_mask(self, dataset: Dataset, test_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """Interactions kept out of train and shown only at prediction time (None: everything else is train)."""
        return None

    def split(self, dataset: Dataset, *, name: str | None = None) -> Split:
        if dataset.n_interactions == 0:
            raise DataError(f"{type(self).__name__}: dataset {dataset.name!r} has no interactions to split.")
        rng = np.random.default_rng(self.config.seed)
        test_mask, candidates = self._test_mask(dataset, rng)
        revealed_mask = self._revealed_mask(dataset, test_mask, rng)
        in_train = ~test_mask if revealed_mask is None else ~test_mask & ~revealed_mask
        train = dataset.subset_interactions(in_train, name=f"{name or dataset.name}:train")
        revealed = (
            None
            if revealed_mask is None
            else dataset.subset_interactions(revealed_mask, name=f"{name or dataset.name}:revealed")
        )
        seen = train.matrix("binary") if revealed is None else train.matrix("binary") + revealed.matrix("binary")
        repeat = np.zeros(dataset.n_interactions, dtype=bool)
        idx = np.flatnonzero(test_mask)
        if len(idx):
            repeat[idx] = np.asarray(seen[dataset.user_rows[idx], dataset.item_rows[idx]]).ravel() > 0
        test = dataset.subset_interactions(test_mask & ~repeat, name=f"{name or dataset.name}:test")
        users = np.unique(test.user_rows).astype(np.int64)
        if candidates is not None:
            # Users with no train history at all are cold twice over; the cold-item protocol is for warm users.
            has_train = np.bincount(train.user_rows, minlength=dataset.n_users) > 0
            users = users[has_train[users]]
        if len(users) == 0:
            raise DataError(
                f"{type(self).__name__} left no test users in dataset {dataset.name!r} "
                f"({dataset.n_users} users, {dataset.n_interactions} interactions): lower min_interactions "
                "or raise the held-out fraction."
            )
        return Split(
            protocol=self.protocol,
            train=train,
            test=test,
            users=users,
            candidates=candidates,
            splitter=self,
            dropped_repeats=int(repeat.sum()),
            dataset=dataset.name,
            fingerprint=dataset.fingerprint(),
            revealed=revealed,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def _time_rank(dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For each interaction, its 0-based position in its user's history by time (ties in seeded random
    order), and each user's number of interactions."""
    return time_rank(dataset, rng.permutation(dataset.n_interactions))


def _check_fraction(owner: str, name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"The {name!r} parameter of {owner} must be a float in (0, 1). Got {value!r} instead.")


def _check_min(owner: str, name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"The {name!r} parameter of {owner} must be an int >= {low}. Got {value!r} instead.")


class TemporalConfig(SplitConfig):
    kind: ClassVar[str] = "temporal"
    test_fraction: float = 0.2
    min_interactions: int = 5

    def model_post_init(self, _context: object) -> None:
        _check_fraction("TemporalSplit", "test_fraction", self.test_fraction)
        _check_min("TemporalSplit", "min_interactions", self.min_interactions, 2)


class TemporalSplit(Splitter):
    """Per user, the last ``test_fraction`` (at least one) of interactions in time are test."""

    Config = TemporalConfig
    protocol = "warm"
    config: TemporalConfig

    def _test_mask(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        rank, counts = _time_rank(dataset, rng)
        n_test = held_counts(counts, self.config.test_fraction, self.config.min_interactions, round_up=False)
        u = dataset.user_rows
        return rank >= counts[u] - n_test[u], None


class RandomHoldoutConfig(SplitConfig):
    kind: ClassVar[str] = "random_holdout"
    test_fraction: float = 0.2
    min_interactions: int = 5

    def model_post_init(self, _context: object) -> None:
        _check_fraction("RandomHoldout", "test_fraction", self.test_fraction)
        _check_min("RandomHoldout", "min_interactions", self.min_interactions, 2)


class RandomHoldout(Splitter):
    """Per user, a seeded random ``test_fraction`` (at least one) of interactions are test."""

    Config = RandomHoldoutConfig
    protocol = "random-holdout"
    config: RandomHoldoutConfig

    def _test_mask(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        # A random order per user instead of time order: rank by (user, random key).
        key = rng.permutation(dataset.n_interactions)
        order = np.lexsort((key, dataset.user_rows))
        counts = np.bincount(dataset.user_rows, minlength=dataset.n_users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(dataset.n_interactions, dtype=np.int64)
        rank[order] = np.arange(dataset.n_interactions) - starts[dataset.user_rows[order]]
        n_test = held_counts(counts, self.config.test_fraction, self.config.min_interactions, round_up=False)
        return rank < n_test[dataset.user_rows], None


class LeaveOneOutConfig(SplitConfig):
    kind: ClassVar[str] = "leave_one_out"
    min_interactions: int = 2

    def model_post_init(self, _context: object) -> None:
        _check_min("LeaveOneOut", "min_interactions", self.min_interactions, 2)


class LeaveOneOut(Splitter):
    """Per user with at least ``min_interactions``, the last interaction in time is test."""

    Config = LeaveOneOutConfig
    protocol = "leave-one-out"
    config: LeaveOneOutConfig

    def _test_mask(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        rank, counts = _time_rank(dataset, rng)
        u = dataset.user_rows
        return (rank == counts[u] - 1) & (counts[u] >= self.config.min_interactions), None


def _pick(candidates: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    n = max(1, round(len(candidates) * fraction))
    return np.sort(rng.choice(candidates, size=min(n, len(candidates)), replace=False))


class ColdUsersConfig(SplitConfig):
    kind: ClassVar[str] = "cold_users"
    fraction: float = Field(0.2, description="Share of users (with any interaction) held out whole.")

    def model_post_init(self, _context: object) -> None:
        _check_fraction("ColdUsers", "fraction", self.fraction)


class ColdUsers(Splitter):
    """A seeded ``fraction`` of users held out whole; all their interactions are test."""

    Config = ColdUsersConfig
    protocol = "cold-users"
    config: ColdUsersConfig

    def _test_mask(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        active = np.flatnonzero(np.bincount(dataset.user_rows, minlength=dataset.n_users) > 0)
        held = _pick(active, self.config.fraction, rng)
        return np.isin(dataset.user_rows, held), None


class FewShotConfig(SplitConfig):
    kind: ClassVar[str] = "few_shot"
    n_shots: int = 1
    fraction: float = 0.2
    min_interactions: int = Field(
        6,
        description="Users need this many interactions to be held out; independent of n_shots so that "
        "the same users are held out for every n_shots <= min_interactions - 1.",
    )

    def model_post_init(self, _context: object) -> None:
        _check_fraction("FewShotUsers", "fraction", self.fraction)
        _check_min("FewShotUsers", "n_shots", self.n_shots, 0)
        _check_min("FewShotUsers", "min_interactions", self.min_interactions, self.n_shots + 1)


class FewShotUsers(Splitter):
    """A seeded ``fraction`` of users held out; each keeps only their first ``n_shots`` interactions in time
    in train, the rest is test."""

    Config = FewShotConfig
    protocol = "few-shot"
    config: FewShotConfig

    def _test_mask(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        # Pick users before drawing time-tie noise so that the users do not depend on n_shots.
        counts = np.bincount(dataset.user_rows, minlength=dataset.n_users)
        held = _pick(np.flatnonzero(counts >= self.config.min_interactions), self.config.fraction, rng)
        rank, _ = _time_rank(dataset, rng)
        return np.isin(dataset.user_rows, held) & (rank >= self.config.n_shots), None


class FewShotNewConfig(FewShotConfig):
    kind: ClassVar[str] = "few_shot_new"


class FewShotNewUsers(FewShotUsers):
    """:class:`FewShotUsers` made strict: the same held-out users and items, but none of a held-out user's
    interactions is in train; their first ``n_shots`` in time are ``Split.revealed``, given to the models at
    prediction time only (``recommend_new``), and the rest is test."""

    Config = FewShotNewConfig
    protocol = "few-shot-new"
    config: FewShotNewConfig

    def _revealed_mask(self, dataset: Dataset, test_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        held = np.unique(dataset.user_rows[test_mask])
        return np.isin(dataset.user_rows, held) & ~test_mask


class ColdItemsConfig(SplitConfig):
    kind: ClassVar[str] = "cold_items"
    fraction: float = 0.2

    def model_post_init(self, _context: object) -> None:
        _check_fraction("ColdItems", "fraction", self.fraction)


class ColdItems(Splitter):
    """A seeded ``fraction`` of items (with any interaction) held out whole. Rankings are over the held-out
    items only: models can know them only from their text and attributes."""

    Config = ColdItemsConfig
    protocol = "cold-items"
    config: ColdItemsConfig

    def _test_mask(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        active = np.flatnonzero(np.bincount(dataset.item_rows, minlength=dataset.n_items) > 0)
        held = _pick(active, self.config.fraction, rng).astype(np.int64)
        return np.isin(dataset.item_rows, held), held


class ColdTaggersConfig(SplitConfig):
    kind: ClassVar[str] = "cold_taggers"
    fraction: float = Field(
        0.5,
        description="Share of the users who wrote tags (and have interactions) held out whole; the others stay "
        "in train, so that models can learn from taggers and validation (carved by the same rule) has some.",
    )
    held_tags: Literal["keep", "drop"] = Field(
        "keep",
        description="keep: every tag a held-out user wrote is their text; drop: the tags on their own test items "
        "(here every item they took) are removed, since such a tag names the answer.",
    )

    def model_post_init(self, _context: object) -> None:
        _check_fraction("ColdTaggers", "fraction", self.fraction)


def _tag_text(tags: Sequence[str]) -> str:
    """A user's tags as one text, as profile texts write them: distinct tags in order ("tags: a, b")."""
    unique = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    return "tags: " + ", ".join(unique) if unique else ""


class ColdTaggers(Splitter):
    """Cold users whose only input is their own tags: a seeded ``fraction`` of the users who wrote tags are held
    out whole (all their interactions are test) and their tags are removed from ``train`` (so no profile, item
    text or group built from train reads them); the text of their tags is ``Split.revealed_text``, given at
    prediction time only. ``held_tags="drop"`` leaves out the tags on their own test items."""

    Config = ColdTaggersConfig
    protocol = "cold-users-tags"
    config: ColdTaggersConfig

    def _taggers(self, dataset: Dataset) -> np.ndarray:
        tags = dataset.tags
        if tags is None or not len(tags):
            raise DataError(
                f"ColdTaggers: dataset {dataset.name!r} has no tags; this protocol needs users who wrote tags "
                "(e.g. ml-latest-small)."
            )
        active = np.bincount(dataset.user_rows, minlength=dataset.n_users) > 0
        taggers = np.unique(tags["user"].to_numpy())
        return taggers[active[taggers]].astype(np.int64)

    def _test_mask(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        held = _pick(self._taggers(dataset), self.config.fraction, rng)
        return np.isin(dataset.user_rows, held), None

    def split(self, dataset: Dataset, *, name: str | None = None) -> Split:
        base = super().split(dataset, name=name)
        tags = dataset.tags
        assert tags is not None  # _taggers checked it
        users, items, words = (tags[c].to_numpy() for c in ("user", "item", "tag"))
        of_held = np.isin(users, base.users)
        # Their test items: every item they took (all their interactions are test), repeats included.
        truth = dataset.matrix("binary")
        on_test = of_held & (items >= 0)
        on_test[on_test] = np.asarray(truth[users[on_test], items[on_test]]).ravel() > 0
        given = of_held & ~on_test if self.config.held_tags == "drop" else of_held
        # Every held-out user is in it, with an empty text where nothing is left: their input is this, not train's.
        texts = {int(u): _tag_text(list(words[given & (users == u)])) for u in base.users}
        notes = (
            f"{len(base.users)} held-out users, all of whom wrote tags ({int(of_held.sum())} tags); "
            f"{int(on_test.sum())} of these tags are on the user's own test items (every item a held-out user took "
            f"is test); held_tags={self.config.held_tags}: {int(given.sum())} tags given as text, and "
            f"{sum(1 for t in texts.values() if t)} of {len(texts)} users keep any text",
            f"strict: the held-out users' interactions and all {int(of_held.sum())} of their tags are out of train "
            "(no profile, item text or group fitted on train reads them); their tag text reaches the models only "
            "at prediction time, through the new-user path",
        )
        train = base.train.subset_tags(~of_held, name=base.train.name)
        return replace(base, train=train, revealed_text=texts, notes=notes)
