"""Persona cards on tiny data whose right description is obvious."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from personas.describe import (
    DescribeConfig,
    FactsConfig,
    Keyword,
    KeywordConfig,
    Persona,
    age_band,
    attribute_skew,
    class_keywords,
    describe_groups,
    distinct_names,
    distinctive_items,
    keyword_name,
    personas_from_json,
    personas_to_json,
    quote,
)
from personas.errors import DataError

SPACE = ["space opera with starships", "starships and aliens in space", "aliens, space and starships"]
ROMANCE = ["romantic comedy about a wedding", "a wedding and a romantic kiss", "romantic wedding drama"]


def test_class_keywords_find_each_groups_own_terms():
    texts = SPACE + ROMANCE + ["the end"]  # a noise user still counts in the corpus
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    kw = class_keywords(texts, labels, 2, KeywordConfig(min_df=2, max_df=1.0, ngram_max=1))
    assert {k.term for k in kw[0][:3]} == {"space", "starships", "aliens"}
    assert {k.term for k in kw[1][:2]} == {"romantic", "wedding"}
    assert not {k.term for k in kw[0]} & {k.term for k in kw[1]}
    assert all(k.term not in {"and", "the", "a", "with"} for g in kw for k in g)  # stop words removed
    assert [k.score for k in kw[0]] == sorted((k.score for k in kw[0]), reverse=True)


def test_class_keywords_count_ngrams_and_drop_boilerplate():
    texts = [
        f"liked: {t}" for t in ["star wars", "star wars again", "star wars", "love story", "love story", "a love story"]
    ]
    labels = np.array([0, 0, 0, 1, 1, 1])
    kw = class_keywords(texts, labels, 2, KeywordConfig(max_df=0.9))
    terms0 = [k.term for k in kw[0]]
    assert "star wars" in terms0
    # "liked" is in every text (more than max_df of them): gone, from n-grams too
    assert not any("liked" in t for t in terms0)
    assert keyword_name(kw[0], 2) == "star wars"


def test_ngrams_stay_inside_a_phrase():
    texts = ["Toy Story (1995) [Animation Comedy]; Heat", "Toy Story [Animation]. Heat", "Alien [Horror]", "Alien"]
    kw = class_keywords(texts, np.array([0, 0, 1, 1]), 2, KeywordConfig(min_df=1, max_df=1.0, min_lift=0.0))
    terms = {k.term for k in kw[0]}
    assert {"toy story", "animation", "heat"} <= terms
    assert not terms & {"story animation", "comedy heat", "animation heat"}  # across ( ) [ ] ; and a full stop


def test_keyword_contrast_is_the_share_over_the_largest_other_share():
    texts = ["space space", "space", "space wedding", "wedding", "wedding", "wedding", "alien"]
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    kw = class_keywords(texts, labels, 3, KeywordConfig(min_df=1, max_df=1.0, min_lift=0.0, ngram_max=1))
    space = next(k for k in kw[0] if k.term == "space")
    # group 0: space is 3/3 of its words; group 1: 1/3 -> contrast 3
    assert space.contrast == pytest.approx(3.0)
    alien = next(k for k in kw[2] if k.term == "alien")
    assert alien.contrast is None  # no other group uses it


def test_distinct_names_never_reuse_a_term_of_a_bigger_group():
    def kws(*pairs):
        return [Keyword(term=t, score=s, contrast=c) for t, s, c in pairs]

    keywords = [
        kws(("horror", 1.0, 1.5), ("scream", 0.8, 3.0), ("slasher", 0.5, 4.0)),  # 10 users
        kws(("horror", 2.0, 1.2), ("scream horror", 1.5, 2.0), ("zombie", 0.4, None), ("gore", 0.3, 2.0)),  # 30
        kws(("comedy", 1.0, 2.0), ("wedding", 0.9, 2.0)),  # 20
    ]
    names = distinct_names(keywords, [10, 30, 20], n_terms=2)
    # group 1 (biggest) is named first; score x contrast ranks "scream horror" (3.0) above "horror" (2.4)
    assert names[1] == "scream horror · zombie"
    assert names[2] == "comedy · wedding"
    # group 0 may not use "horror" or "scream" (inside "scream horror"): what is left of its own
    assert names[0] == "slasher"
    used = [set(n.split(" · ")) for n in names]
    assert not (used[0] & used[1]) and not (used[0] & used[2]) and not (used[1] & used[2])
    # a group whose every keyword is taken gets a plain name, never a reused one
    assert distinct_names([kws(("horror", 1.0, 2.0)), kws(("horror", 1.0, 2.0))], [2, 1]) == ["horror", "group 1"]


def test_class_keywords_with_no_usable_text():
    assert class_keywords(["", None, "the a"], np.array([0, 0, 1]), 2) == [[], []]


def test_keyword_name_skips_terms_it_already_says():
    kws = [Keyword(term=t, score=1.0) for t in ["star wars", "star", "sci-fi", "wars", "action"]]
    assert keyword_name(kws, 3) == "star wars · sci-fi · action"
    assert keyword_name([], 3) == "unnamed group"
    later = [Keyword(term=t, score=1.0) for t in ["star", "wars", "star wars", "action", "drama", "war"]]
    assert keyword_name(later, 3) == "star wars · action · drama"
    series = [Keyword(term=t, score=1.0) for t in ["star trek", "trek vi", "sci-fi", "undiscovered country"]]
    assert keyword_name(series, 3) == "star trek · sci-fi · undiscovered country"  # "trek vi" says "trek" again


def test_quote_picks_the_segment_with_keywords_and_cuts_it():
    text = "I am 40. I love starships and aliens in deep space. Also cooking."
    kws = [Keyword(term="starships", score=1), Keyword(term="space", score=1)]
    assert quote(text, kws, 30) == "I love starships and aliens in deep space."
    assert quote(text, kws, 3) == "I love starships …"
    assert quote(None, kws) == ""


def test_age_bands():
    bands = age_band(pd.Series(["7", "18", "24", "25", "60", None]), (18, 25, 35, 45, 55))
    assert bands.tolist()[:5] == ["under 18", "18-24", "18-24", "25-34", "55+"]
    assert pd.isna(bands.iloc[5])


def test_distinctive_items_by_lift_with_minimum_support(tiny):
    labels = np.array([0, 0, 0, 1, 1, 1])  # u1-u3 like a-c, u4-u6 like d-f
    cfg = FactsConfig(min_item_users=2, min_item_share=0.0, min_rating=4.0)
    items = distinctive_items(tiny, labels, 2, cfg)
    assert {i.title for i in items[0]} == {"Star Wars", "Alien", "Solaris"}
    assert {i.title for i in items[1]} == {"Notting Hill", "Amelie", "Casablanca"}
    # every sci-fi film has lift 2; Alien (liked by all 3 members, 3 of 6 users) wins on support
    top = items[0][0]
    assert (top.title, top.users) == ("Alien", 3)
    assert top.share_in_group == pytest.approx(1.0)
    assert top.share_overall == pytest.approx(0.5)
    assert [i.lift for i in items[0]] == pytest.approx([2.0, 2.0, 2.0])
    # u1's rating-1 interaction with d is not a like: d is liked by 2 of 6 users, lift (2/3) / (2/6) = 2
    d = next(i for i in items[1] if i.title == "Notting Hill")
    assert d.share_overall == pytest.approx(2 / 6)
    assert d.lift == pytest.approx(2.0)
    # a support floor of 3 keeps only the films every member liked
    floor = distinctive_items(tiny, labels, 2, FactsConfig(min_item_users=3, min_item_share=0.0))
    assert [[i.title for i in g] for g in floor] == [["Alien"], ["Amelie"]]


def test_attribute_skew_finds_over_represented_values():
    users = pd.DataFrame(
        {
            "user_id": [str(i) for i in range(8)],
            "age": ["20", "21", "22", "23", "50", "51", "52", "53"],
            "occupation": ["student"] * 3 + ["nurse"] + ["nurse"] * 3 + ["student"],
        }
    )
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    skew = attribute_skew(users, labels, 2, FactsConfig(min_attribute_users=3))
    young = {(s.attribute, s.value): s for s in skew[0]}
    assert young[("age band", "18-24")].lift == pytest.approx(2.0)
    assert young[("occupation", "student")].share_in_group == pytest.approx(0.75)
    assert ("occupation", "nurse") not in young
    assert {(s.attribute, s.value) for s in skew[1]} == {("age band", "45-54"), ("occupation", "nurse")}


def test_describe_groups_builds_a_full_card(tiny):
    labels = np.array([0, 0, 0, 1, 1, 1])
    texts = list(tiny.users["text"])
    vectors = np.array([[1, 0.1], [1, 0], [1, -0.1], [0, 1], [0.1, 1], [-0.1, 1]], dtype=np.float32)
    cfg = DescribeConfig(
        keywords=KeywordConfig(min_df=1, max_df=1.0),
        facts=FactsConfig(min_item_users=2, min_item_share=0.0, min_attribute_users=2, n_representatives=2),
    )
    personas = describe_groups(labels, texts=texts, vectors=vectors, dataset=tiny, config=cfg)
    assert [p.size for p in personas] == [3, 3]
    assert personas[0].share == pytest.approx(0.5)
    assert personas[0].representatives[0].user_id == "u2"  # exactly on the group's direction
    assert personas[0].representatives[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert personas[1].representatives[0].user_id == "u4" or personas[1].representatives[0].similarity < 1
    assert {i.title for i in personas[1].distinctive_items} == {"Notting Hill", "Amelie", "Casablanca"}
    assert any(k.term.startswith("romance") or k.term == "love" for k in personas[1].keywords)
    assert personas[0].name != personas[1].name
    # JSON round trip
    again = personas_from_json(personas_to_json(personas))
    assert again == personas
    assert json.loads(personas_to_json(personas))[0]["group"] == 0


def test_describe_groups_with_only_labels_and_noise():
    personas = describe_groups(np.array([0, 0, -1, 1]))
    assert [p.name for p in personas] == ["group 0", "group 1"]
    assert personas[0].share == pytest.approx(0.5)
    assert describe_groups(np.array([-1, -1])) == []


def test_describe_groups_rejects_misaligned_inputs(tiny):
    with pytest.raises(DataError, match="texts has 2 rows but there are 3 labels"):
        describe_groups(np.array([0, 1, 1]), texts=["a", "b"])
    with pytest.raises(DataError, match="dataset's users"):
        describe_groups(np.array([0, 1]), dataset=tiny)


class _FailingNamer:
    def name(self, persona: Persona) -> str | None:
        return None


class _UpperNamer:
    def name(self, persona: Persona) -> str | None:
        return persona.name.upper()


def test_namer_adds_a_generated_name_and_falls_back_to_the_keyword_name():
    texts = SPACE + ROMANCE
    labels = np.array([0, 0, 0, 1, 1, 1])
    cfg = DescribeConfig(keywords=KeywordConfig(max_df=1.0))
    named = describe_groups(labels, texts=texts, namer=_UpperNamer(), config=cfg)
    assert named[0].generated_name == named[0].name.upper()
    assert named[0].display_name == named[0].generated_name
    plain = describe_groups(labels, texts=texts, namer=_FailingNamer(), config=cfg)
    assert plain[0].generated_name is None
    assert plain[0].display_name == plain[0].name
