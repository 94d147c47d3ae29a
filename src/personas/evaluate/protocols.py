"""The public protocols, ready to run: which split, which models (each with a small validation grid),
which groups, and which models are personas' own (for the headline comparison).

``run_protocol(dataset, "warm")`` returns one :class:`ExperimentResult` per split (few-shot gives three:
N = 1, 3, 5 revealed interactions, side by side). Models are looked up by name in
:mod:`personas.recommend` (plus the LightFM peer), so a model that is not installed is reported, not fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate.experiment import Experiment, GroupSource, Tuned
from personas.evaluate.groups import behaviour_groups, profile_groups
from personas.evaluate.report import ExperimentResult
from personas.evaluate.splits import ColdItems, ColdUsers, FewShotUsers, Splitter, TemporalSplit

__all__ = ["OURS", "PROTOCOLS", "model_specs", "protocol_splits", "run_protocol"]

PROTOCOLS = ("warm", "cold-users", "few-shot", "cold-items")

# personas' own models (they use groups or text); the others are the peers they must beat.
OURS = ("GroupPopular", "ContentBased", "Hybrid", "ColdStartRouter")

# name -> (class name in personas.recommend or "LightFM", grid, fixed params). Grids stay small: every point
# is one fit on the validation split, and a protocol on ml-100k must run in minutes on 2 cores.
_GRIDS: dict[str, tuple[str, dict[str, list[Any]], dict[str, Any]]] = {
    "Random": ("Random", {}, {}),
    "MostPopular": ("MostPopular", {}, {}),
    "ItemKNN": ("ItemKNN", {"k": [20, 100, 400], "shrink": [0.0, 10.0]}, {}),
    "EASE": ("EASE", {"l2": [50.0, 200.0, 800.0]}, {}),
    "ALS": ("ALS", {"factors": [32, 64], "regularization": [0.05, 0.5]}, {}),
    "LightFM": ("LightFM", {"identity": [True, False]}, {"epochs": 15, "no_components": 32}),
    "GroupPopular": ("GroupPopular", {"shrinkage": [1.0, 10.0, 100.0]}, {}),
    "ContentBased": ("ContentBased", {"use_kg": [True, False]}, {}),
    "Hybrid": ("Hybrid", {}, {}),
    "ColdStartRouter": ("ColdStartRouter", {}, {}),
}

DEFAULT_MODELS = tuple(_GRIDS)


def _factory(class_name: str) -> Callable[..., Any]:
    if class_name == "LightFM":
        from personas.evaluate.peers import LightFMPeer

        return LightFMPeer
    import personas.recommend as rec

    cls = getattr(rec, class_name, None)
    if cls is None:
        raise ConfigError(f"Model {class_name!r} is not available in personas.recommend in this installation.")
    return cls


def model_specs(names: Sequence[str] | None = None) -> dict[str, Tuned]:
    """Tuned specs for the named models (default: all of :data:`DEFAULT_MODELS`)."""
    names = list(names or DEFAULT_MODELS)
    unknown = [n for n in names if n not in _GRIDS]
    if unknown:
        raise ConfigError(f"Unknown model(s) {unknown}; choose from {', '.join(_GRIDS)}.")
    specs = {}
    for name in names:
        class_name, grid, fixed = _GRIDS[name]
        specs[name] = Tuned(_factory(class_name), grid, fixed)
    return specs


def protocol_splits(protocol: str, *, seed: int = 0) -> list[tuple[str, Splitter]]:
    """(label, splitter) pairs of a protocol."""
    if protocol == "warm":
        return [("warm", TemporalSplit(seed=seed))]
    if protocol == "cold-users":
        return [("cold-users", ColdUsers(seed=seed))]
    if protocol == "few-shot":
        return [(f"few-shot-{n}", FewShotUsers(n_shots=n, seed=seed)) for n in (1, 3, 5)]
    if protocol == "cold-items":
        return [("cold-items", ColdItems(seed=seed))]
    raise ConfigError(f"Unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}.")


def group_source(kind: str, k: int, seed: int) -> GroupSource:
    if kind == "profile":
        return profile_groups(k, seed=seed)
    if kind == "behaviour":
        return behaviour_groups(k, seed=seed)
    raise ConfigError(f"Unknown group source {kind!r}; choose 'profile' or 'behaviour'.")


def run_protocol(
    dataset: Dataset,
    protocol: str,
    *,
    models: Sequence[str] | None = None,
    groups: str = "profile",
    n_groups: int = 16,
    seed: int = 0,
    progress: bool = False,
    on_result: Callable[[str, ExperimentResult], None] | None = None,
) -> list[tuple[str, ExperimentResult]]:
    """Run one protocol; returns (label, result) per split and calls ``on_result`` as each one finishes."""
    specs = model_specs(models)
    out = []
    for label, splitter in protocol_splits(protocol, seed=seed):
        split = splitter.split(dataset)
        notes = [
            f"groups: k-means (k={n_groups}) on {groups} vectors of train data "
            "(profile = TF-IDF + SVD of each user's profile text built from train: demographics, own text, tags "
            "and liked items in train); users without history are grouped by side information only",
            "personas' own models are marked (personas); the others are peers",
        ]
        experiment = Experiment(
            split,
            specs,
            groups=group_source(groups, n_groups, seed),
            ours=[n for n in specs if n in OURS],
            seed=seed,
            progress=progress,
            notes=notes,
        )
        result = experiment.run()
        out.append((label, result))
        if on_result is not None:
            on_result(label, result)
    return out
