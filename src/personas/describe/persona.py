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
    "NameFact",
    "NameSource",
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
    lift: float | None = Field(None, description="The term's share of this group's words / its share overall.")
    support: float | None = Field(None, description="Share of the group's members whose texts use the term.")


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
    contrast: float | None = Field(
        None, description="share_in_group / the largest share in any other group; None when no other likes it."
    )


class AttributeSkew(BaseModel):
    attribute: str
    value: str
    users: int
    share_in_group: float
    share_overall: float
    lift: float
    contrast: float | None = Field(
        None, description="share_in_group / the largest share in any other group; None when no other has it."
    )


NameSource = Literal["composed", "keyword", "generated"]


class NameFact(BaseModel):
    """One fact a composed name says, with the numbers behind it: "Sci-Fi 2.1x, 34% of members"."""

    kind: Literal["keyword", "attribute", "item"]
    label: str = Field(description="The words the name uses for the fact: 'Sci-Fi', 'women', 'aged 18-24'.")
    source: str = Field(description="What it stands for: the keyword, 'attribute = value', or the item id.")
    lift: float = Field(description="How much more common in the group than overall.")
    share: float = Field(description="Share of the group's members with it.")
    contrast: float | None = Field(None, description="Group share / largest share in another group.")

    @property
    def evidence(self) -> str:
        return f"{self.label} {self.lift:.1f}x, {100 * self.share:.0f}% of members"


class Persona(BaseModel):
    group: int
    name: str = Field(description="Deterministic name: composed from name_facts (else the keyword name).")
    keyword_name: str = Field("", description="The name from the top keywords alone.")
    name_facts: list[NameFact] = Field(default_factory=list, description="The facts the composed name says.")
    generated_name: str | None = Field(
        None, description="Name from a local language model, when one ran and its name passed the fact check."
    )
    name_source: NameSource = Field("keyword", description="Where display_name comes from.")
    name_check: str | None = Field(None, description="Why a generated name was refused, when one was.")
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
