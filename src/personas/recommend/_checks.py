"""One error template for every recommender parameter."""

from __future__ import annotations

from personas.errors import ConfigError


def require(ok: bool, owner: str, name: str, rule: str, value: object) -> None:
    """Raise "The 'k' parameter of ItemKNN must be an int >= 1. Got 0 instead." unless ``ok``."""
    if not ok:
        raise ConfigError(f"The {name!r} parameter of {owner} must be {rule}. Got {value!r} instead.")
