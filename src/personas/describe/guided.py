"""Names whose facts point at their members in the encoder's space (issue 17, name fidelity).

A composed name says the card's strongest facts by lift and share. On data whose user texts all read alike
(MovieLens: "a 24-year-old male technician. liked: Title (year) [Genre Genre]; ...") the strongest fact by lift
is often a word every profile says ("Romance"), so the name lands where all users are, not where the group's
members are. :func:`guided_names` chooses among the same facts of the card (its keywords, its distinctive
items, its attributes) the ones whose text moves the name toward the members and away from the others:

- the group's direction is ``mean(members) - mean(others)`` of the unit text vectors of the users (the part
  that every profile shares cancels out);
- starting from an empty name, the fact that raises the cosine of the encoded name to that direction most is
  added, until no fact raises it (greedy forward selection, at most ``taste_terms + 1`` keywords, ``items``
  titles and ``attributes`` attributes);
- names stay distinct: the biggest groups choose first, and a name another group already has takes the next
  best fact until it differs.

Every word of the name is still a fact on the card, with its numbers (lift, share, contrast), and the name is
``compose_name(name_facts)``. Only facts that pass the card's rules are offered (lift, support, contrast >= 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from personas.describe.namers import NameConfig, compose_name, distinct_in_turn, fact_candidates, item_facts
from personas.describe.persona import NameFact, Persona
from personas.encode import Encoder
from personas.errors import DataError

__all__ = ["contrast_directions", "guided_names"]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def contrast_directions(text_vectors: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, dim): each group's members' mean unit vector minus the other users' (noise, -1, left out of
    both; a group with no member or no other user gets zeros), in float64."""
    u = _unit_rows(text_vectors)
    labels = np.asarray(labels, dtype=np.int64)
    scored = labels >= 0
    sums = np.zeros((n_groups, u.shape[1]))
    np.add.at(sums, labels[scored], u[scored])
    sizes = np.bincount(labels[scored], minlength=n_groups).astype(np.float64)
    total, n = u[scored].sum(axis=0), float(scored.sum())
    out = np.zeros_like(sums)
    for g in range(n_groups):
        if 0 < sizes[g] < n:
            out[g] = sums[g] / sizes[g] - (total - sums[g]) / (n - sizes[g])
    return out


class _Scorer:
    """Cosine of encoded names to a direction; each text encoded once."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.vectors: dict[str, np.ndarray] = {}

    def __call__(self, names: Sequence[str], direction: np.ndarray) -> np.ndarray:
        new = [n for n in dict.fromkeys(names) if n not in self.vectors]
        if new:
            for name, vec in zip(new, _unit_rows(np.asarray(self.encoder.encode(new))), strict=True):
                self.vectors[name] = vec
        return np.array([float(self.vectors[n] @ direction) for n in names])


def _pool(persona: Persona, config: NameConfig) -> list[NameFact]:
    """The facts a guided name may say, in the card's order: keywords, then distinctive items, then attributes."""
    tastes, people = fact_candidates(persona, config)
    keywords = [f for f in tastes if f.kind == "keyword"][: config.pool]
    return keywords + item_facts(persona, config)[: config.pool] + people[: config.pool]


def _caps(config: NameConfig) -> dict[str, int]:
    return {"keyword": config.taste_terms + 1, "item": config.items, "attribute": config.attributes}


def _in_name_order(facts: list[NameFact]) -> list[NameFact]:
    """The facts in the order the name says them (keywords, titles, attributes), each kind in the order chosen
    (the one that points most first)."""
    rank = {"keyword": 0, "item": 1, "attribute": 2}
    return sorted(facts, key=lambda f: rank[f.kind])


def _greedy(
    pool: list[NameFact], direction: np.ndarray, score: _Scorer, config: NameConfig, taken: set[str]
) -> list[NameFact]:
    """Facts added one at a time, each the one whose name points most along ``direction``; stops when no fact
    raises the score and the name is not ``taken`` (then it goes on with the best remaining fact)."""
    caps = _caps(config)
    chosen: list[NameFact] = []
    best = -np.inf
    while True:
        counts = {kind: sum(1 for f in chosen if f.kind == kind) for kind in caps}
        options = [f for f in pool if f not in chosen and counts[f.kind] < caps[f.kind]]
        if not options:
            return _in_name_order(chosen)
        names = [compose_name([*chosen, f], mostly=config.mostly) for f in options]
        scores = score(names, direction)
        i = int(np.argmax(scores))  # ties: the first, in the card's order
        name = compose_name(chosen, mostly=config.mostly)
        if scores[i] <= best and chosen and name.lower() not in taken:
            return _in_name_order(chosen)
        chosen.append(options[i])
        best = float(scores[i])


def guided_names(
    personas: Sequence[Persona],
    labels: np.ndarray,
    text_vectors: np.ndarray,
    encoder: Encoder,
    config: NameConfig | None = None,
) -> list[tuple[str, list[NameFact]]]:
    """(name, facts) for every persona: the card's facts that point its name at its members (module doc).
    ``labels`` (one per user, -1: noise) and ``text_vectors`` (the users' text vectors, made by ``encoder``)
    give each group's direction. A card with no fact: ("", []); names are distinct, told apart by the group
    number only when the facts run out."""
    config = config or NameConfig()
    labels = np.asarray(labels, dtype=np.int64)
    vectors = np.asarray(text_vectors)
    if vectors.ndim != 2 or len(vectors) != len(labels):
        raise DataError(
            f"guided_names: text_vectors must have one row per label ({len(labels)} rows). Got shape "
            f"{vectors.shape} instead."
        )
    n_groups = max((p.group for p in personas), default=-1) + 1
    directions = contrast_directions(vectors, labels, max(n_groups, int(labels.max(initial=-1)) + 1))
    score = _Scorer(encoder)

    def choose(persona: Persona, taken: set[str]) -> list[NameFact]:
        return _greedy(_pool(persona, config), directions[persona.group], score, config, taken)

    return distinct_in_turn(personas, choose, mostly=config.mostly)
