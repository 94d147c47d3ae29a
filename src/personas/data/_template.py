"""Filling ``{column}`` templates from one table row (profile demographics, item texts)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

import numpy as np

__all__ = ["fill_template"]


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}")
_SPACES = re.compile(r"\s+")


def fill_template(template: str, values: Mapping[str, object], maps: Mapping[str, Mapping[str, str]]) -> str:
    """Format a template; absent values become empty and leave no empty brackets or double spaces."""
    clean = _Blank()
    for key, value in values.items():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        text = str(value)
        clean[key] = maps.get(key, {}).get(text, text)
    # A word of the template whose field is absent is dropped whole ("{age}-year-old" with no age).
    words = []
    for word in template.split(" "):
        fields = [name for _, name, _, _ in string.Formatter().parse(word) if name]
        if all(name in clean for name in fields):
            words.append(word.format_map(clean))
    if not any(name in clean for _, name, _, _ in string.Formatter().parse(template) if name):
        return ""
    filled = _EMPTY_BRACKETS.sub("", " ".join(words))
    filled = _SPACES.sub(" ", filled).strip()
    return filled.strip(" ,;-")
