"""Keywords that describe a group and names composed from its facts (issue 17): tiny data whose right answer
is known, and the check that keeps a generated name true to the card."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.describe import (
    AttributeSkew,
    ComposedNamer,
    DescribeConfig,
    FactsConfig,
    Keyword,
    KeywordConfig,
    KeywordNamer,
    NameFact,
    Persona,
    apply_namer,
    check_name,
    class_keywords,
    compose_name,
    composed_names,
    describe_groups,
    descriptive_texts,
    fold_plural,
)


def _movies(*, descriptions: bool = True) -> Dataset:
    """Twelve users: u0-u5 like sci-fi and action films (five of them men aged 18-24), u6-u11 romantic
    comedies (five women). Titles share words across the tastes ("Day", "Man", "ID4") and one title is an
    id-like code: none of that may reach a keyword."""
    items = pd.DataFrame(
        {
            "item_id": ["m1", "m2", "m3", "m4", "m5", "m6"],
            "title": ["Independence Day (ID4)", "Iron Man", "Alien Day", "Wedding Day", "Love Man", "Notting Hill"],
            "genres": ["Sci-Fi|Action", "Sci-Fi|Action", "Sci-Fi", "Romance|Comedy", "Romance|Comedies", "Romance"],
            "text": ["<br>aliens invade earth", "an armoured hero", "aliens on a ship", "", "", ""],
        }
    )
    rows = []
    for u in range(6):
        rows += [(f"u{u}", m, 5.0, t) for t, m in enumerate(("m1", "m2", "m3"))]
        rows.append((f"u{u}", "m4", 1.0, 9))  # disliked: not a fact about them
    for u in range(6, 12):
        rows += [(f"u{u}", m, 5.0, t) for t, m in enumerate(("m4", "m5", "m6"))]
    users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(12)],
            "gender": ["M"] * 5 + ["F"] + ["F"] * 5 + ["M"],
            "age": ["20", "21", "22", "23", "19", "40", "35", "36", "41", "38", "60", "30"],
        }
    )
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    if not descriptions:
        items = items.drop(columns="text")
    return Dataset.from_frames(inter, users=users, items=items, name="movies")


LABELS = np.array([0] * 6 + [1] * 6)
CONFIG = DescribeConfig(facts=FactsConfig(min_attribute_users=2))


def test_descriptive_texts_have_genres_and_descriptions_but_no_titles():
    texts = descriptive_texts(_movies())
    assert "Sci-Fi, Action" in texts[0] and "aliens invade earth" in texts[0]
    assert "<br>" not in texts[0]  # cleaned
    assert not any(t in texts[0] for t in ("Independence", "ID4", "Iron", "Wedding"))  # no titles, no dislikes


def test_an_items_tags_count_only_where_two_users_gave_them():
    base = _movies()
    tags = pd.DataFrame(
        {
            "user_id": ["u0", "u1", "u2", "u2"],
            "item_id": ["m1", "m1", "m2", "m3"],
            "tag": ["aliens", "Aliens", "ei muista", "ei muista"],  # u2's habit on everything it rates
        }
    )
    tagged = Dataset.from_frames(base.interactions(), users=base.users, items=base.items, tags=tags)
    texts = descriptive_texts(tagged)
    assert "aliens" in texts[3]  # m1's tag (two users), on everyone who liked m1
    assert "ei muista" not in texts[3] and "ei muista" in texts[2]  # only in u2's own tags


def test_sci_fi_fans_get_sci_fi_in_their_name_with_its_lift_on_the_card():
    sci_fi, romance = describe_groups(LABELS, dataset=_movies(descriptions=False), config=CONFIG)
    assert sci_fi.name.startswith("Sci-Fi & Action")  # sci-fi: 3 liked films per member, action: 2
    fact = next(f for f in sci_fi.name_facts if f.label == "Sci-Fi")
    # sci-fi is 3 of each member's 5 genre words (0.6) and 18 of all 60 (0.3); no romance fan has it
    assert fact.lift == pytest.approx(2.0)
    assert fact.share == pytest.approx(1.0) and fact.contrast is None
    assert fact.evidence == "Sci-Fi 2.0x, 100% of members"
    assert "mostly men" in sci_fi.name and "aged 18–24" in sci_fi.name
    assert romance.name.startswith("Romance") and "mostly women" in romance.name
    assert sci_fi.name_source == romance.name_source == "composed"
    # every name is exactly what its card's facts say
    assert all(compose_name(p.name_facts) == p.name for p in (sci_fi, romance))


def test_keywords_have_no_ids_titles_markup_or_words_another_group_uses_more():
    personas = describe_groups(LABELS, dataset=_movies(), config=CONFIG)
    terms = [k.term for p in personas for k in p.keywords]
    assert "sci-fi" in terms and "romance" in terms
    banned = {"id4", "day", "man", "independence", "iron", "br", "m1", "u0", "wedding", "notting"}
    assert not any(set(t.split()) & banned for t in terms)
    assert all(k.contrast is None or k.contrast >= 1 for p in personas for k in p.keywords)
    assert all(k.lift is not None and k.lift > 1 for p in personas for k in p.keywords)


def test_ids_digits_and_markup_are_never_keywords():
    texts = ["r2d2 b00xyz nbsp href rocket moon", "r2d2 b00xyz nbsp href rocket moon", "sea", "sea"]
    kw = class_keywords(texts, np.array([0, 0, 1, 1]), 2, KeywordConfig(min_df=1), ids=["u7", "rocket"])
    assert [k.term for k in kw[0]] == ["moon"]
    assert [k.term for k in kw[1]] == ["sea"]


def test_plurals_merge_into_the_form_used_most():
    assert fold_plural("comedies") == fold_plural("comedy") == "comedy"
    assert fold_plural("children's") == "children" and fold_plural("teas") == "tea"
    assert fold_plural("series") == "sery" and fold_plural("boss") == "boss"  # -ss stays whole
    texts = ["comedy, comedies", "comedy", "horror", "horrors, horror"]
    kw = class_keywords(texts, np.array([0, 0, 1, 1]), 2, KeywordConfig(min_df=1))
    assert [(k.term, k.support) for k in kw[0]] == [("comedy", 1.0)]
    assert [k.term for k in kw[1]] == ["horror"]


def test_a_word_a_kept_bigram_says_is_merged_into_it():
    texts = ["star wars", "star wars", "star wars", "green tea", "tea", "green tea and black tea"]
    kw = class_keywords(texts, np.array([0, 0, 0, 1, 1, 1]), 2, KeywordConfig(min_df=1))
    assert [k.term for k in kw[0]] == ["star wars"]  # "star" and "wars" are only ever said in it
    terms1 = [k.term for k in kw[1]]
    assert "tea" in terms1  # said on its own as often as in "green tea": kept beside it


def test_min_support_drops_one_members_word():
    texts = ["tea tea tea tea tea tea", "coffee", "coffee", "coffee", "juice", "juice"]
    labels = np.array([0, 0, 0, 0, 1, 1])
    loose = class_keywords(texts, labels, 2, KeywordConfig(min_df=1, min_support=0.0, ngram_max=1))
    assert "tea" in [k.term for k in loose[0]]
    strict = class_keywords(texts, labels, 2, KeywordConfig(min_df=1, min_support=0.5, ngram_max=1))
    assert [k.term for k in strict[0]] == ["coffee"]  # 3 of 4 members; tea: 1 of 4


def _card(group: int, size: int, keywords: list[tuple[str, float]], skew: list[tuple[str, str, float]]) -> Persona:
    return Persona(
        group=group,
        name="",
        size=size,
        share=0.5,
        keywords=[Keyword(term=t, score=1.0, contrast=2.0, lift=lift, support=0.6) for t, lift in keywords],
        attribute_skew=[
            AttributeSkew(
                attribute=a, value=v, users=5, share_in_group=share, share_overall=share / 1.5, lift=1.5, contrast=1.5
            )
            for a, v, share in skew
        ],
    )


def test_composed_names_are_distinct():
    # two groups whose first facts are the same: the smaller one says its next fact
    big = _card(0, 10, [("tea", 2.0), ("green", 1.5)], [("occupation", "student", 0.6)])
    small = _card(1, 5, [("tea", 2.0), ("oolong", 1.4)], [("occupation", "student", 0.6)])
    config = DescribeConfig().names.model_copy(update={"taste_terms": 1, "attributes": 1})
    (name0, _), (name1, facts1) = composed_names([big, small], config)
    assert name0 == "Tea · mostly students"
    assert name1 == "Tea & Oolong · mostly students"
    assert [f.label for f in facts1] == ["Tea", "Oolong", "students"]


def test_a_name_never_says_a_word_and_its_plural():
    # "cookies" folds to "cooky", not "cookie": the name must still say the word once ("Cookies & Cake")
    card = _card(0, 10, [("cookies", 3.0), ("cookie", 2.5), ("cake", 2.0)], [])
    ((name, facts),) = composed_names([card])
    assert name == "Cookies & Cake"
    assert [f.source for f in facts] == ["cookies", "cake"]


def test_namers_behind_the_protocol():
    personas = describe_groups(LABELS, dataset=_movies(), config=CONFIG)
    assert KeywordNamer().name(personas[0]) == personas[0].keyword_name
    assert ComposedNamer().name(personas[0]) == personas[0].name


SCI_FI = Persona(
    group=0,
    name="Sci-Fi & Action · mostly men",
    size=10,
    share=0.5,
    keywords=[Keyword(term="sci-fi", score=1.0, lift=2.0, support=0.9), Keyword(term="action", score=1.0, lift=1.5)],
    attribute_skew=[
        AttributeSkew(attribute="gender", value="M", users=9, share_in_group=0.9, share_overall=0.6, lift=1.5),
        AttributeSkew(attribute="age band", value="18-24", users=6, share_in_group=0.6, share_overall=0.3, lift=2.0),
    ],
    name_facts=[NameFact(kind="keyword", label="Sci-Fi", source="sci-fi", lift=2.0, share=0.9)],
)
ROMANCE = Persona(
    group=1,
    name="Romance",
    size=10,
    share=0.5,
    keywords=[Keyword(term="romance", score=1.0, lift=2.0, support=0.9)],
    attribute_skew=[
        AttributeSkew(attribute="gender", value="F", users=8, share_in_group=0.8, share_overall=0.4, lift=2.0)
    ],
)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Space Fans", "none of the group's facts"),  # says nothing the card has
        ("The Great Love", "none of the group's facts"),
        ("Sci-Fi Romance Lovers", "'romance', a fact of group 1"),  # another group's genre
        ("Sci-Fi Ladies", "'ladies' but women are not over-represented"),
        ("Senior Sci-Fi Buffs", "'senior' but no age"),
        ("Sci-Fi Fans in Their Thirties", "'thirties' but no age band"),  # the card says 18-24
        ("Jazz Sci-Fi", "copies 'jazz' from the prompt's example"),
        ("Sci-Fi Sci-Fi", "repeats a word"),
        ("Sci-Fi (2.0x as common as", "echoes the prompt"),
    ],
)
def test_the_check_refuses_a_name_that_contradicts_or_ignores_the_facts(name: str, reason: str):
    refused = check_name(name, SCI_FI, [SCI_FI, ROMANCE])
    assert refused is not None and reason in refused


@pytest.mark.parametrize("name", ["Sci-Fi Guys", "Young Action Fans", "scifi fans", "Action Heroes", "Sci-Fi Twenties"])
def test_the_check_accepts_a_name_true_to_the_facts(name: str):
    assert check_name(name, SCI_FI, [SCI_FI, ROMANCE]) is None


class _Fixed:
    def __init__(self, answers: dict[int, str]) -> None:
        self.answers = answers

    def name(self, persona: Persona) -> str | None:
        return self.answers.get(persona.group)


def test_a_refused_generated_name_falls_back_to_the_composed_name():
    named = apply_namer([SCI_FI, ROMANCE], _Fixed({0: "Sci-Fi Guys", 1: "Sci-Fi Ladies"}))
    assert named[0].display_name == "Sci-Fi Guys" and named[0].name_source == "generated"
    assert named[1].display_name == "Romance" and named[1].generated_name is None
    assert named[1].name_source == "keyword"  # what it had: the check leaves the source alone
    assert named[1].name_check is not None and "'sci-fi', a fact of group 0" in named[1].name_check
