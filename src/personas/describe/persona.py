"""The persona card: what one group is, in numbers and words. JSON-serialisable (pydantic)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter

__all__ = [
    "AttributeSkew",
    "DistinctiveItem",
    "Keyword",
    "Persona",
    "Representative",
    "personas_from_json",
    "personas_to_json",
]


class Keyword(BaseModel):
    term: str
    score: float = Field(description="Class-based TF-IDF weight of the term in this group.")
    contrast: float | None = Field(
        None,
        description="The term's share of this group's words / its largest share in any other group "
        "(> 1: more this group's than any other's); None when no other group uses it.",
    )


class Representative(BaseModel):
    user_id: str
    similarity: float = Field(description="Cosine similarity of the user's vector to the group centroid.")
    quote: str = Field("", description="A short excerpt of the user's text.")


class DistinctiveItem(BaseModel):
    item_id: str
    title: str
    users: int = Field(description="Group members who interacted with (liked) the item: its support.")
    share_in_group: float
    share_overall: float
    lift: float = Field(description="share_in_group / share_overall.")


class AttributeSkew(BaseModel):
    attribute: str
    value: str
    users: int
    share_in_group: float
    share_overall: float
    lift: float


class Persona(BaseModel):
    group: int
    name: str = Field(description="Deterministic name built from the top keywords.")
    generated_name: str | None = Field(None, description="Name from a local language model, when one ran.")
    size: int
    share: float = Field(description="Share of all users (noise included) in this group.")
    keywords: list[Keyword] = Field(default_factory=list)
    representatives: list[Representative] = Field(default_factory=list)
    distinctive_items: list[DistinctiveItem] = Field(default_factory=list)
    attribute_skew: list[AttributeSkew] = Field(default_factory=list)
    # Two-level runs ([discover] hierarchy = true) and stability: absent from older files, so all optional.
    level: Literal["coarse", "fine"] | None = Field(
        None, description="In a two-level run: a coarse persona (for reading) or a fine one (for recommending)."
    )
    parent: int | None = Field(None, description="A fine persona's coarse persona (its group number).")
    children: list[int] = Field(default_factory=list, description="A coarse persona's fine personas.")
    stability: float | None = Field(
        None,
        description="Mean Jaccard overlap of the members with the best-matching group of each refit (other seeds, "
        "subsamples): 1 = found again exactly every time.",
    )
    unstable: bool = Field(False, description="stability is below the run's threshold: trust this persona less.")

    @property
    def display_name(self) -> str:
        return self.generated_name or self.name


_LIST = TypeAdapter(list[Persona])


def personas_to_json(personas: Sequence[Persona], *, indent: int | None = 2) -> str:
    return _LIST.dump_json(list(personas), indent=indent).decode()


def personas_from_json(source: str | bytes | Path) -> list[Persona]:
    """Read personas written by :func:`personas_to_json` (a JSON string or a file path)."""
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    data = json.loads(text)
    return _LIST.validate_python(data)
