"""Can a protocol run on this data, and would its numbers mean anything? Answered before any model is fitted.

``protocol_check(dataset, "warm")`` splits the data as the protocol would (cheap: numpy over the interactions)
and returns a :class:`Feasibility`: the splits when they work, else why not, with the numbers (users,
interactions per user) and the settings that would make it work (``fixes``, e.g. ``{"protocol": "cold-users"}``).
The callers write those settings in the form their user typed: a CLI flag or a TOML key.

A protocol that splits but cannot score anything (no test item was ever taken in train: every model ranks
only train items, so every metric is 0) is reported as ``unlearnable`` with why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from personas.data import Dataset
from personas.errors import ConfigError, DataError
from personas.evaluate.splits import (
    ColdItems,
    ColdTaggers,
    ColdUsers,
    FewShotNewUsers,
    FewShotUsers,
    Split,
    Splitter,
    TemporalSplit,
)

__all__ = ["PROTOCOL_NAMES", "Feasibility", "make_splits", "protocol_check", "unlearnable"]

#: Every protocol, by the name the CLI (``--protocol``) and the TOML (``[evaluate] protocol``) use.
PROTOCOL_NAMES = ("warm", "cold-users", "few-shot", "few-shot-new", "cold-items", "cold-users-tags")


def make_splits(
    protocol: str,
    *,
    seed: int = 0,
    test_fraction: float | None = None,
    min_interactions: int | None = None,
    n_shots: Sequence[int] = (1, 3, 5),
) -> list[tuple[str, Splitter]]:
    """(label, splitter) pairs of a protocol with its held-out fraction and minimum history (None: the
    splitter's default, as ``personas evaluate`` runs it).

    ``test_fraction``: warm: the share of each user's last interactions held out (default 0.2); cold-users and
    few-shot: the share of users held out (0.2; cold-users-tags: of the users who wrote tags, 0.5); cold-items:
    the share of items (0.2). ``min_interactions`` (warm, few-shot): users with fewer interactions are never held
    out (default 5 for warm, 6 for few-shot)."""
    least: dict[str, Any] = {} if min_interactions is None else {"min_interactions": min_interactions}
    share: dict[str, Any] = {} if test_fraction is None else {"fraction": test_fraction}
    if protocol == "warm":
        held: dict[str, Any] = {} if test_fraction is None else {"test_fraction": test_fraction}
        return [("warm", TemporalSplit(seed=seed, **held, **least))]
    if protocol == "cold-users":
        return [("cold-users", ColdUsers(seed=seed, **share))]
    if protocol in ("few-shot", "few-shot-new"):
        cls = FewShotUsers if protocol == "few-shot" else FewShotNewUsers
        return [(f"{protocol}-{n}", cls(n_shots=n, seed=seed, **share, **least)) for n in n_shots]
    if protocol == "cold-items":
        return [("cold-items", ColdItems(seed=seed, **share))]
    if protocol == "cold-users-tags":  # the same held-out taggers with all their tags, and without those on answers
        return [
            ("cold-users-tags-all", ColdTaggers(held_tags="keep", seed=seed, **share)),
            ("cold-users-tags-no-held", ColdTaggers(held_tags="drop", seed=seed, **share)),
        ]
    raise ConfigError(f"Unknown protocol {protocol!r}; choose from {', '.join(PROTOCOL_NAMES)}.")


@dataclass
class Feasibility:
    """The outcome of :func:`protocol_check`."""

    protocol: str
    splits: list[tuple[str, Split]] = field(default_factory=list)
    #: Why the protocol cannot run (None when it can), with the data's numbers.
    reason: str | None = None
    #: Settings that would make it run, best first, e.g. ``[{"min_interactions": 2}, {"protocol": "cold-users"}]``.
    fixes: list[dict[str, Any]] = field(default_factory=list)
    #: Why its numbers would all be 0 (None when they can be above 0).
    unlearnable: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _counts(dataset: Dataset) -> np.ndarray:
    counts = np.bincount(dataset.user_rows, minlength=dataset.n_users)
    return counts[counts > 0]


def _why(dataset: Dataset, protocol: str, splitter: Splitter, error: DataError) -> str:
    counts = _counts(dataset)
    most = int(counts.max()) if len(counts) else 0
    config = splitter.config
    need = getattr(config, "min_interactions", None)
    what = {
        "warm": "holds out the last part of each user's history",
        "few-shot": "holds out users with more interactions than the revealed ones",
        "few-shot-new": "holds out users with more interactions than the revealed ones",
    }.get(protocol, "holds out part of the data")
    if need is not None:
        enough = int((counts >= need).sum())
        return (
            f"the {protocol} protocol {what} and needs users with at least {need} interactions; "
            f"{enough} of the {len(counts):,} users with interactions have that many (the most any user has is "
            f"{most}; median {float(np.median(counts)) if len(counts) else 0:g})"
        )
    return f"the {protocol} protocol cannot split this data ({error})"


def unlearnable(split: Split) -> str | None:
    """Why every model would score 0 on ``split`` (None when a hit is possible): no test item was taken by any
    train user, so nothing learned from train can rank it (a catalogue where each item has one user)."""
    if split.candidates is not None:
        return None  # cold items are unseen by design; content models score them from their text
    seen = np.bincount(split.train.item_rows, minlength=split.train.n_items) > 0
    if split.revealed is not None:
        seen |= np.bincount(split.revealed.item_rows, minlength=split.train.n_items) > 0
    test_items = np.unique(split.test.item_rows)
    if not len(test_items) or seen[test_items].any():
        return None
    return (
        f"none of the {len(test_items):,} items in the test set was taken by any user in train, so every model "
        "ranks only items the test users never took and every number is 0"
    )


def protocol_check(
    dataset: Dataset,
    protocol: str,
    *,
    seed: int = 0,
    test_fraction: float | None = None,
    min_interactions: int | None = None,
    n_shots: Sequence[int] = (1, 3, 5),
    splitters: Sequence[tuple[str, Splitter]] | None = None,
) -> Feasibility:
    """Split ``dataset`` as ``protocol`` would (with ``splitters`` when given, e.g. the CLI's own); say why it
    cannot run or score, and what would fix it."""
    outcome = Feasibility(protocol)
    if splitters is None:
        splitters = make_splits(
            protocol, seed=seed, test_fraction=test_fraction, min_interactions=min_interactions, n_shots=n_shots
        )
    for label, splitter in splitters:
        try:
            outcome.splits.append((label, splitter.split(dataset)))
        except DataError as exc:
            outcome.splits = []
            outcome.reason = _why(dataset, protocol, splitter, exc)
            break
    if outcome.ok:
        outcome.unlearnable = next(filter(None, (unlearnable(split) for _, split in outcome.splits)), None)
    if outcome.ok and outcome.unlearnable is None:
        return outcome
    counts = _counts(dataset)
    most = int(counts.max()) if len(counts) else 0
    if outcome.reason is not None and protocol in ("warm", "few-shot", "few-shot-new"):
        low = 2 if protocol == "warm" else max(n_shots) + 1
        if most >= low:
            outcome.fixes.append({"min_interactions": low})
    if protocol != "cold-users" and dataset.n_interactions:
        cold = protocol_check(dataset, "cold-users", seed=seed, test_fraction=test_fraction)
        if cold.ok and cold.unlearnable is None:
            outcome.fixes.append({"protocol": "cold-users"})
    outcome.fixes.append({"enabled": False})
    return outcome
