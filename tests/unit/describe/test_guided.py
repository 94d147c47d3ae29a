"""Guided names (issue 17, name fidelity): among the card's facts, the ones whose text points at the members in
the encoder's space, not the ones every user shares. Tiny data with a known answer, a real (TF-IDF) encoder."""

from __future__ import annotations

import numpy as np
import pytest

from personas.describe import (
    DescribeConfig,
    DistinctiveItem,
    Keyword,
    NameConfig,
    NameFact,
    Persona,
    compose_name,
    composed_names,
    contrast_directions,
    describe_groups,
    guided_names,
    item_facts,
    name_fidelity,
)
from personas.encode import TfidfEncoder
from personas.errors import DataError

# Every user liked a drama (the word every profile says); group 0 also space films, group 1 love stories.
TEXTS = [f"drama drama space rocket {w}" for w in ("alpha", "beta", "gamma", "delta", "eps", "zeta")] + [
    f"drama drama love wedding {w}" for w in ("eta", "theta", "iota", "kappa", "lam", "mu")
]
LABELS = np.array([0] * 6 + [1] * 6)


def _keyword(term: str, lift: float, support: float) -> Keyword:
    return Keyword(term=term, score=1.0, lift=lift, support=support, contrast=1.1)


def _cards() -> list[Persona]:
    # By lift x share "drama" ranks first on both cards (as "Romance" did on ml-100k): it is what everyone says.
    drama = _keyword("drama", 1.3, 1.0)
    space, love = _keyword("space", 2.0, 0.2), _keyword("love", 2.0, 0.2)
    return [
        Persona(group=0, name="", size=6, share=0.5, keywords=[drama, space]),
        Persona(group=1, name="", size=6, share=0.5, keywords=[drama, love]),
    ]


@pytest.fixture(scope="module")
def encoder() -> TfidfEncoder:
    return TfidfEncoder(n_components=11, min_df=1).fit(TEXTS)


def test_contrast_direction_is_members_mean_minus_the_others() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    d = contrast_directions(x, np.array([0, 0, 1, -1]), 3)
    assert d[0] == pytest.approx([1.0, -1.0])  # unit rows: (1, 0) - (0, 1); the noise row counts nowhere
    assert d[1] == pytest.approx([-1.0, 1.0])
    assert d[2] == pytest.approx([0.0, 0.0])  # no member: no direction


def test_the_name_says_the_fact_that_sets_the_group_apart_not_the_one_everyone_shares(encoder) -> None:
    cards = _cards()
    config = NameConfig(taste_terms=1, attributes=0, items=0)
    ranked = [name for name, _ in composed_names(cards, config)]
    assert ranked[0] == "Drama"  # by lift x share; the second card says one more fact to differ
    guided = guided_names(cards, LABELS, encoder.encode(TEXTS), encoder, config)
    assert [name for name, _ in guided] == ["Space", "Love"]
    for (name, facts), card in zip(guided, cards, strict=True):
        assert name == compose_name(facts)
        assert all(f.source in {k.term for k in card.keywords} for f in facts)  # only the card's facts
    # and the measure agrees: the guided names pick out their members, the shared word does not
    vectors = encoder.encode(TEXTS)
    good = name_fidelity([n for n, _ in guided], LABELS, vectors, encoder=encoder)
    shared = name_fidelity(["Drama", "Drama"], LABELS, vectors, encoder=encoder)
    assert good.mean_auc == 1.0 and shared.mean_auc == pytest.approx(0.5)


def test_guided_names_are_distinct(encoder) -> None:
    # both cards' only distinctive fact is "space": the second (smaller) one takes its next fact to differ
    space = _keyword("space", 2.0, 0.5)
    cards = [
        Persona(group=0, name="", size=7, share=0.6, keywords=[space]),
        Persona(group=1, name="", size=5, share=0.4, keywords=[space, _keyword("love", 1.5, 0.3)]),
    ]
    names = [n for n, _ in guided_names(cards, LABELS, encoder.encode(TEXTS), encoder, NameConfig())]
    assert names[0] == "Space"
    assert names[1] != "Space" and "Love" in names[1]


def test_titles_and_attributes_join_the_name_in_their_own_parts() -> None:
    facts = [
        NameFact(kind="keyword", label="Sci-Fi", source="sci-fi", lift=2.0, share=0.8),
        NameFact(kind="keyword", label="Action", source="action", lift=1.5, share=0.7),
        NameFact(kind="item", label="Star Wars", source="m1", lift=3.0, share=0.5),
        NameFact(kind="item", label="Alien", source="m2", lift=3.0, share=0.4),
        NameFact(kind="attribute", label="men", source="gender = M", lift=1.3, share=0.9),
    ]
    assert compose_name(facts) == "Sci-Fi & Action · Star Wars, Alien · mostly men"
    assert compose_name(facts[2:4]) == "Star Wars, Alien"
    third = NameFact(kind="keyword", label="Horror", source="horror", lift=1.5, share=0.5)
    assert compose_name([*facts[:2], third]) == "Sci-Fi, Action & Horror"
    assert compose_name([]) == ""


def test_item_facts_need_contrast_unless_none_has_it() -> None:
    def item(i: str, contrast: float | None, share: float = 0.3) -> DistinctiveItem:
        return DistinctiveItem(
            item_id=i,
            title=f"{i}, The (1995)",
            users=3,
            share_in_group=share,
            share_overall=0.1,
            lift=share / 0.1,
            contrast=contrast,
        )

    card = Persona(
        group=0, name="", size=10, share=0.5, distinctive_items=[item("a", 0.8), item("b", 1.5), item("c", None)]
    )
    assert [f.label for f in item_facts(card)] == ["The b", "The c"]  # a: another group likes it more
    assert item_facts(card)[0].contrast == 1.5
    weaker = Persona(group=0, name="", size=10, share=0.5, distinctive_items=[item("a", 0.8), item("d", 0.9, 0.05)])
    assert [f.label for f in item_facts(weaker)] == ["The a"]  # none has contrast: over-represented ones (share >= 0.1)


def test_describe_groups_guides_names_with_the_runs_encoder(encoder) -> None:
    vectors = encoder.encode(TEXTS)
    cards = describe_groups(LABELS, texts=TEXTS, vectors=vectors, encoder=encoder, text_vectors=vectors)
    for card in cards:
        assert card.name_source == "composed" and card.name == compose_name(card.name_facts)
        assert card.name_facts and all(f.label in card.name for f in card.name_facts)
        kinds = [f.kind for f in card.name_facts]  # listed on the card in the order the name says them
        assert kinds == sorted(kinds, key=["keyword", "item", "attribute"].index)
    assert name_fidelity([c.name for c in cards], LABELS, vectors, encoder=encoder).mean_auc == 1.0
    again = describe_groups(LABELS, texts=TEXTS, vectors=vectors, encoder=encoder, text_vectors=vectors)
    assert [c.name for c in again] == [c.name for c in cards]  # deterministic
    off = DescribeConfig(names=NameConfig(guided=False))
    ranked = describe_groups(LABELS, texts=TEXTS, encoder=encoder, text_vectors=vectors, config=off)
    assert [c.name for c in ranked] == [c.name for c in describe_groups(LABELS, texts=TEXTS)]
    with pytest.raises(DataError, match="text_vectors has 3 rows"):
        describe_groups(LABELS, texts=TEXTS, encoder=encoder, text_vectors=vectors[:3])
