"""The profile configuration and token budget, shared by the per-user builder (profiles) and the columnar one
(columnar), so that neither module imports the other's."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Literal

from pydantic import Field

from personas.config import ComponentConfig
from personas.errors import ConfigError

__all__ = ["Part", "ProfileConfig", "count_tokens", "within"]

Part = Literal["text", "reviews", "tags", "demographics", "behaviour"]
_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """A tokenizer-free estimate: words and punctuation marks (close to WordPiece counts for English)."""
    return len(_TOKEN.findall(text))


class ProfileConfig(ComponentConfig):
    """How profile texts are put together. Templates use ``{column}`` fields of the users/items tables."""

    parts: tuple[Part, ...] = ("text", "reviews", "tags", "demographics", "behaviour")
    demographics_template: str = "a {age}-year-old {gender} {occupation}"
    value_maps: dict[str, dict[str, str]] = Field(default_factory=lambda: {"gender": {"M": "male", "F": "female"}})
    behaviour_template: str = "liked: {items}"
    item_template: str = "{title} ({release_year}) [{genres}]"
    item_separator: str = "; "
    part_separator: str = ". "
    min_rating: float | None = 4.0
    max_reviews: int = 5
    max_tags: int = 20
    max_tokens: int = 256

    def model_post_init(self, _context: object) -> None:
        if self.max_tokens < 8:
            raise ConfigError(
                f"The 'max_tokens' parameter of ProfileConfig must be an int >= 8. Got {self.max_tokens} instead."
            )
        for name in ("demographics_template", "behaviour_template", "item_template"):
            try:
                list(string.Formatter().parse(getattr(self, name)))
            except ValueError as exc:
                raise ConfigError(f"The {name!r} of ProfileConfig is not a valid template: {exc}.") from None
        if "{items}" not in self.behaviour_template:
            raise ConfigError("The 'behaviour_template' of ProfileConfig must contain '{items}'.")


def within(text: str, budget: int, counter: Callable[[str], int]) -> str:
    if counter(text) <= budget:
        return text
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:  # the longest prefix of words that fits
        mid = (lo + hi + 1) // 2
        if counter(" ".join(words[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])
