"""Name fidelity: does a persona's name point at its own members?

A name is good for a reader when, put next to the users, it picks out the persona's members and not the others.
:func:`name_fidelity` measures that in the run's own text space: each name is encoded by the encoder that made
the users' text vectors, and every user is ranked by the cosine of their vector to the name.

- **AUC per persona**: the chance that a random member of the persona is closer to its name than a random
  non-member (``sklearn.metrics.roc_auc_score``; 0.5 is a name that says nothing about the group, 1.0 a name
  that ranks every member first, below 0.5 a name that fits the other users better).
- **Reader-like matcher**: given only the list of names, each user is given the persona whose name is closest
  to them; the share of users given their own persona, beside chance (the biggest persona's share: always
  picking it; and 1/k).
- **Distinctness**: the largest and the mean cosine between two personas' names (1.0: two names say the same).

Users labelled noise (``-1``) belong to no persona; they are left out of every figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field
from sklearn.metrics import roc_auc_score

from personas.encode import Encoder
from personas.errors import DataError

__all__ = ["NameFidelity", "PersonaFidelity", "name_fidelity", "name_similarities"]


class PersonaFidelity(BaseModel):
    group: int
    name: str
    size: int = Field(description="Members scored (noise left out).")
    auc: float | None = Field(
        description="AUC of the members vs every other user, ranked by cosine to the name; None when the persona "
        "has every scored user or none."
    )
    matched: float | None = Field(
        description="Share of the members whose closest name is this persona's (the matcher's recall here)."
    )
    closest_name: int | None = Field(description="The other persona whose name is the most similar to this one.")


class NameFidelity(BaseModel):
    encoder: str = Field(description="The encoder of the names, which also made the users' vectors.")
    users: str = Field(description="Which user vectors were ranked (e.g. 'profile text vectors').")
    n_users: int = Field(description="Users scored: every user in a persona (noise left out).")
    personas: list[PersonaFidelity]
    mean_auc: float | None = Field(description="Mean of the personas' AUCs (personas without one left out).")
    worst_auc: float | None
    matcher_accuracy: float = Field(description="Share of users whose closest name is their own persona's.")
    chance_majority: float = Field(description="The matcher's accuracy when it always picks the biggest persona.")
    chance_uniform: float = Field(description="1/k: the matcher's accuracy when it picks at random.")
    max_name_similarity: float | None = Field(description="Largest cosine between two names (None: one persona).")
    mean_name_similarity: float | None = Field(description="Mean cosine over every pair of names.")
    closest_pair: tuple[int, int] | None = Field(description="The two personas whose names are the most alike.")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def name_similarities(name_vectors: np.ndarray) -> np.ndarray:
    """Cosine between every two names, (k, k), in float64."""
    v = _unit(name_vectors)
    return v @ v.T


def name_fidelity(
    names: Sequence[str],
    labels: np.ndarray,
    user_vectors: np.ndarray,
    *,
    encoder: Encoder | None = None,
    name_vectors: np.ndarray | None = None,
    users: str = "user vectors",
) -> NameFidelity:
    """How well ``names`` (one per persona ``0..k-1``) pick out their members among ``user_vectors``.

    The names are encoded by ``encoder`` (the one that made ``user_vectors``: the two must share a space), or
    given as ``name_vectors``. ``labels`` holds each user's persona (``-1``: noise, left out). ``users`` says
    which user vectors these are, for the record.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = len(names)
    if labels.ndim != 1:
        raise DataError(f"name_fidelity: labels must be 1-D. Got shape {labels.shape} instead.")
    if k < 1:
        raise DataError("name_fidelity: no names were given; pass one name per persona.")
    if labels.size and int(labels.max()) >= k:
        raise DataError(
            f"name_fidelity: labels go up to persona {int(labels.max())} but {k} names were given; "
            "pass one name per persona 0..k-1."
        )
    x = np.asarray(user_vectors)
    if x.ndim != 2 or len(x) != len(labels):
        raise DataError(
            f"name_fidelity: user_vectors must have one row per label ({len(labels)} rows). Got shape {x.shape} "
            "instead."
        )
    if (encoder is None) == (name_vectors is None):
        raise DataError("name_fidelity: pass exactly one of 'encoder' (to encode the names) or 'name_vectors'.")
    if name_vectors is None:
        assert encoder is not None  # for mypy: checked just above
        name_vectors = np.asarray(encoder.encode(list(names)), dtype=np.float32)
        encoder_name = str(encoder.name)
    else:
        encoder_name = "given name vectors"
    nv = np.asarray(name_vectors)
    if nv.shape != (k, x.shape[1]):
        raise DataError(
            f"name_fidelity: the names' vectors have shape {nv.shape} but ({k}, {x.shape[1]}) is needed (one row "
            "per name, the users' dimension); encode the names with the encoder that made the user vectors."
        )
    scored = labels >= 0
    y, u = labels[scored], _unit(x[scored])
    # float64 so that the ranking (and the AUC) does not depend on the BLAS kernel's float32 rounding
    sims = u @ _unit(nv).T  # (users, k)
    pick = np.argmax(sims, axis=1)
    sizes = np.bincount(y, minlength=k)
    pair = name_similarities(nv)

    per: list[PersonaFidelity] = []
    for g in range(k):
        member = y == g
        auc = float(roc_auc_score(member, sims[:, g])) if 0 < member.sum() < len(y) else None
        others = np.delete(pair[g], g)
        closest = None if k < 2 else int(np.delete(np.arange(k), g)[int(np.argmax(others))])
        per.append(
            PersonaFidelity(
                group=g,
                name=str(names[g]),
                size=int(sizes[g]),
                auc=auc,
                matched=float((pick[member] == g).mean()) if member.any() else None,
                closest_name=closest,
            )
        )
    aucs = [p.auc for p in per if p.auc is not None]
    upper = np.triu_indices(k, 1)
    closest_pair = None
    if k >= 2:
        i = int(np.argmax(pair[upper]))
        closest_pair = (int(upper[0][i]), int(upper[1][i]))
    return NameFidelity(
        encoder=encoder_name,
        users=users,
        n_users=len(y),
        personas=per,
        mean_auc=float(np.mean(aucs)) if aucs else None,
        worst_auc=float(min(aucs)) if aucs else None,
        matcher_accuracy=float((pick == y).mean()) if len(y) else 0.0,
        chance_majority=float(sizes.max() / len(y)) if len(y) else 0.0,
        chance_uniform=1.0 / k,
        max_name_similarity=float(pair[upper].max()) if k >= 2 else None,
        mean_name_similarity=float(pair[upper].mean()) if k >= 2 else None,
        closest_pair=closest_pair,
    )
