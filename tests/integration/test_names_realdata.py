"""Persona names on real MovieLens-100K (issue 17): every name is composed of facts shown on its card, and no
name or keyword holds an id, a markup tag, a title-only word or a word with contrast < 1."""

from __future__ import annotations

import re

import pytest

from personas.data import Dataset, build_profiles
from personas.describe import MARKUP_WORDS, compose_name, composed_names, describe_groups, name_fidelity
from personas.discover import KMeansGroups
from personas.encode import TfidfEncoder

pytestmark = pytest.mark.realdata

# Title words that made the old names ("independence day · id4 · fargo") and noise keywords of the old demo
TITLE_NOISE = {"independence", "id4", "fargo", "nikita", "terminator", "liar", "scream", "chocolate", "day", "man"}
GENERIC = {"good", "educator", "star", "wars", "trek"}


@pytest.fixture(scope="module")
def personas(ml100k: Dataset):
    texts = build_profiles(ml100k)
    vectors = TfidfEncoder().fit(texts).encode(texts)
    labels = KMeansGroups(k=8, seed=0).fit(vectors).labels_
    return describe_groups(labels, texts=texts, vectors=vectors, dataset=ml100k)


def test_every_name_is_composed_of_facts_on_its_card(personas) -> None:
    assert len(personas) == 8
    for p in personas:
        assert p.name_source == "composed", p
        assert p.name_facts, p.name
        assert compose_name(p.name_facts) == p.name
        for fact in p.name_facts:
            assert fact.label in p.name
            assert fact.lift > 1.0 and fact.share >= 0.1
            assert fact.contrast is None or fact.contrast >= 1.0
            assert re.fullmatch(r".+ \d+\.\dx, \d+% of members", fact.evidence)
    assert len({p.name.lower() for p in personas}) == len(personas)  # distinct


def test_no_name_or_keyword_holds_an_id_markup_a_title_word_or_contrast_below_one(personas, ml100k) -> None:
    ids = {str(i).lower() for i in (*ml100k.user_vocab.ids, *ml100k.item_vocab.ids)}
    genres = {g.lower() for gs in ml100k.items["genres"].dropna() for g in re.split(r"[|, ]+", gs) if g}
    for p in personas:
        # words of the name (an age band's numbers, "aged 25–34", are a fact, not words) and of the keywords
        words = {w for k in p.keywords for w in k.term.split()} | set(re.findall(r"[^\W\d][\w'-]*", p.name.lower()))
        assert not words & ids, p.name
        assert not words & MARKUP_WORDS, p.name
        assert not words & (TITLE_NOISE | GENERIC), p.name
        assert not any(re.search(r"\d", w) for w in words), p.name
        for k in p.keywords:
            assert k.contrast is None or k.contrast >= 1.0, k
            assert k.lift is not None and k.lift > 1.0, k
            assert set(k.term.split()) <= genres, k  # ml-100k users describe themselves by genres only


@pytest.fixture(scope="module")
def guided(ml100k: Dataset):
    texts = build_profiles(ml100k)
    encoder = TfidfEncoder().fit(texts)
    vectors = encoder.encode(texts)
    labels = KMeansGroups(k=8, seed=0).fit(vectors).labels_
    cards = describe_groups(labels, texts=texts, vectors=vectors, dataset=ml100k, encoder=encoder, text_vectors=vectors)
    return cards, labels, vectors, encoder


def test_guided_names_say_only_facts_on_their_card_and_point_at_their_members(guided) -> None:
    cards, labels, vectors, encoder = guided
    for p in cards:
        assert p.name_source == "composed" and p.name_facts, p
        assert compose_name(p.name_facts) == p.name
        for fact in p.name_facts:
            assert fact.label in p.name
            assert fact.lift > 1.0 and fact.share >= 0.1
            if fact.kind == "keyword":
                assert fact.source in {k.term for k in p.keywords}
                assert fact.contrast is None or fact.contrast >= 1.0
            elif fact.kind == "item":
                assert fact.source in {i.item_id for i in p.distinctive_items}
            else:
                assert fact.source in {f"{a.attribute} = {a.value}" for a in p.attribute_skew}
    assert len({p.name.lower() for p in cards}) == len(cards)  # distinct
    ranked = [name or p.name for (name, _), p in zip(composed_names(cards), cards, strict=True)]
    before = name_fidelity(ranked, labels, vectors, encoder=encoder).mean_auc
    after = name_fidelity([p.name for p in cards], labels, vectors, encoder=encoder).mean_auc
    assert after > before
