"""split_negation: what a typed taste asks for and what it rules out."""

from __future__ import annotations

import pytest

from personas.data import split_negation


@pytest.mark.parametrize(
    ("text", "wanted", "avoided"),
    [
        ("sci-fi and horror", "sci-fi and horror", ""),
        ("anything but horror", "", "horror"),
        ("anything except war movies", "", "war movies"),
        ("no romance please", "", "romance please"),
        ("I hate musicals", "", "musicals"),
        ("I love comedies but no horror", "I love comedies", "horror"),
        ("romantic comedies, but not musicals; westerns", "romantic comedies, westerns", "musicals"),
        ("Crime thrillers without gore", "Crime thrillers", "gore"),
        ("NO HORROR", "", "HORROR"),
        # softened wishes and words that only contain a cue are not negations
        ("not too scary films for kids", "not too scary films for kids", ""),
        ("no-nonsense thrillers", "no-nonsense thrillers", ""),
        ("nordic noir and notable dramas", "nordic noir and notable dramas", ""),
        ("", "", ""),
        ("no", "", ""),
    ],
)
def test_split_negation(text: str, wanted: str, avoided: str) -> None:
    assert split_negation(text) == (wanted, avoided)
