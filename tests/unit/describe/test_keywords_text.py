"""Keywords, names and quotes read words: no generic words, no words another group uses more, Chinese as
words, quotes only from what users wrote (issue 16, problems 6 and 7)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset, build_profiles
from personas.describe import KeywordConfig, class_keywords, describe_groups, distinct_names

pytest.importorskip("jieba")
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_generic_words_are_never_keywords():
    coffee = [
        "I like the taste, it's a dark roast coffee",
        "it's my coffee, I like the taste of espresso",
        "coffee beans and espresso",
        "dark roast coffee beans",
    ]
    tea = ["green tea leaves", "a pot of green tea", "oolong tea leaves", "jasmine tea"]
    kw = class_keywords(coffee + tea, np.array([0] * 4 + [1] * 4), 2, KeywordConfig(min_df=1))
    terms = {k.term for group in kw for k in group}
    assert {"coffee", "espresso", "tea"} <= terms
    assert not terms & {"like", "taste", "it's", "like the", "taste it's"}
    assert not any(w in t.split() for t in terms for w in ("like", "taste", "it's"))


def test_praise_every_review_group_shares_is_not_a_keyword():
    coffee = ["great coffee, the best espresso", "I love this coffee", "great dark roast coffee", "best espresso"]
    tea = ["great green tea", "I love oolong tea", "the best jasmine tea", "great tea leaves"]
    kw = class_keywords(coffee + tea, np.array([0] * 4 + [1] * 4), 2, KeywordConfig(min_df=1))
    terms = {k.term for group in kw for k in group}
    assert {"coffee", "tea"} <= terms
    assert not any(w in t.split() for t in terms for w in ("great", "best", "love"))


def test_a_word_another_group_uses_more_is_not_this_groups_keyword():
    texts = [
        "coffee with milk",
        "coffee beans",
        "coffee roast",
        "tea with milk",
        "milk tea",
        "tea leaves",
        "dog food",
        "dog treats",
        "dog kibble",
        "puppy food",
        "puppy treats",
        "puppy kibble",
    ]
    # "milk": 1 of group 0's 6 words (lift 1.33 over its 3 of 24 overall), but 2 of group 1's 6
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    loose = KeywordConfig(min_df=1, ngram_max=1, min_contrast=0.0)
    assert "milk" in {k.term for k in class_keywords(texts, labels, 3, loose)[0]}  # the rule is what drops it
    kw = class_keywords(texts, labels, 3, KeywordConfig(min_df=1, ngram_max=1))
    assert "milk" not in {k.term for k in kw[0]}  # tea drinkers say "milk" twice as often
    assert "milk" in {k.term for k in kw[1]}
    assert all(k.contrast is None or k.contrast >= 1.0 for group in kw for k in group)


CHINESE = {
    "烘焙": ["我周末在家用烤箱烤面包和蛋糕。", "最近在学做蛋糕，烤箱每天都开着。", "烤面包的时候满屋子都是麦香。"],
    "跑步": ["我每天早上去公园跑步。", "为了跑马拉松我每天跑步十公里。", "新买的跑鞋很适合长跑和马拉松。"],
    "宠物": ["我家的猫咪每天都要吃猫粮。", "给猫咪买了新的猫粮和猫砂。", "周末带猫咪和狗狗去宠物医院。"],
}


def test_chinese_groups_get_chinese_keywords_and_names():
    texts = [t for group in CHINESE.values() for t in group]
    labels = np.repeat(np.arange(3), 3)
    kw = class_keywords(texts, labels, 3, KeywordConfig(min_df=2))
    assert {"烤箱", "蛋糕", "面包"} & {k.term for k in kw[0]}
    assert {"跑步", "马拉松"} & {k.term for k in kw[1]}
    assert {"猫咪", "猫粮"} & {k.term for k in kw[2]}
    assert all(HAN.search(k.term) for group in kw for k in group)
    names = distinct_names(kw, [3, 3, 3])
    assert not any(n.startswith("group ") for n in names)
    assert all(HAN.search(n) for n in names)


def test_quotes_are_the_users_own_words_never_generated_profile_parts():
    """A user who wrote about weekend snacks and bought an oven: the keyword "烤箱" is in "liked: 烤箱", but
    the quote is the sentence the user wrote."""
    texts = {f"u{i}": t for i, t in enumerate([t for group in CHINESE.values() for t in group])}
    texts["u0"] = "周末喜欢在家做点心给孩子吃。"
    users = pd.DataFrame({"user_id": list(texts), "text": list(texts.values())})
    oven = [(u, "oven") for u in ("u0", "u1", "u2")]
    inter = pd.DataFrame(oven + [(f"u{i}", "shoes") for i in range(3, 9)], columns=["user_id", "item_id"])
    items = pd.DataFrame({"item_id": ["oven", "shoes"], "title": ["烤箱", "跑鞋"]})
    dataset = Dataset.from_frames(inter, users=users, items=items)
    profiles = build_profiles(dataset)
    assert profiles[0].endswith("liked: 烤箱")
    labels = np.repeat(np.arange(3), 3)
    vectors = np.eye(3, dtype=np.float32)[labels] + 0.01 * np.arange(9, dtype=np.float32)[:, None]
    personas = describe_groups(labels, texts=profiles, vectors=vectors, dataset=dataset)
    quotes = {r.user_id: r.quote for p in personas for r in p.representatives}
    assert quotes["u0"] == "周末喜欢在家做点心给孩子吃。"
    assert all(q in texts[u] for u, q in quotes.items())
    assert not any("liked" in q for q in quotes.values())


def test_users_who_wrote_nothing_get_no_quote(tiny: Dataset):
    plain = Dataset.from_frames(tiny.interactions()[["user_id", "item_id", "rating"]], items=tiny.items)
    labels = np.array([0, 0, 0, 1, 1, 1])
    personas = describe_groups(labels, texts=build_profiles(plain), vectors=np.eye(2)[labels], dataset=plain)
    assert [r.quote for p in personas for r in p.representatives] == [""] * 6
