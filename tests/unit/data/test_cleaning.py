"""Text cleaning: markup, broken Unicode, links, addresses, @mentions and "RT" out; the words kept."""

from __future__ import annotations

import pandas as pd
import pytest

from personas.data import CleanConfig, CleanReport, Dataset, clean_dataset, clean_text, clean_texts
from personas.errors import ConfigError


def test_review_html_becomes_plain_text_with_line_breaks():
    raw = (
        'Great coffee!<br /><br />Bought it at <a href="http://www.amazon.com/gp/product/B0001">Amazon</a>.'
        '<span class="tiny"> Length:: 0:26 Mins<br /></span> Smooth &amp; rich, I <3 it.'
    )
    out = clean_text(raw)
    assert out == "Great coffee!\nBought it at Amazon. Length:: 0:26 Mins\nSmooth & rich, I <3 it."


def test_links_addresses_mentions_and_retweets_go_words_stay():
    raw = "RT @BeanBarn: new roast http://bit.ly/x1 at www.beanbarn.com/shop or amazon.com, mail me@beanbarn.com"
    assert clean_text(raw) == "new roast at or, mail"
    # a Weibo-style post: the mention and link go, the Chinese text and its punctuation stay as written
    assert clean_text("我最喜欢烤面包，https://weibo.com/123 @小明 你也来！") == "我最喜欢烤面包， 你也来！"


def test_what_is_not_a_link_or_mention_stays():
    text = "I love this tea.It arrived fast, 5.5 stars; mail a@b in the RTX review. Don't RTFM."
    assert clean_text(text) == text  # "tea.It" is a missing space, "RT" inside a word is a word


def test_mojibake_is_repaired():
    assert clean_text("The Mona Lisa doesnâ€™t have eyebrows; cafÃ©") == "The Mona Lisa doesn’t have eyebrows; café"


def test_each_step_can_be_turned_off_and_none_passes_through():
    raw = "RT @bob: see http://x.io <br />now"
    assert clean_text(raw, CleanConfig(enabled=False)) == raw
    assert clean_text(raw, CleanConfig(urls=False)) == "see http://x.io\nnow"
    assert clean_text(raw, CleanConfig(mentions=False, retweets=False)) == "RT @bob: see\nnow"
    assert clean_texts([None, "", "plain"]) == [None, "", "plain"]


def test_report_counts_changed_texts_by_step():
    report = CleanReport()
    clean_texts(["<b>x</b>", "plain", "@a hi", "see www.x.com"], report=report)
    assert (report.texts, report.changed) == (4, 3)
    assert dict(report.steps) == {"html": 1, "mentions": 1, "urls": 1}
    assert report.summary() == "cleaned 3 of 4 texts (html 1, mentions 1, urls 1)"


def test_clean_dataset_cleans_texts_and_reviews_but_not_ids_or_titles_as_links():
    inter = pd.DataFrame(
        {"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "review": ["Nice<br />tea http://t.co/x", None]}
    )
    users = pd.DataFrame({"user_id": ["u1", "u2"], "text": ["RT @tea: green tea", "plain"]})
    items = pd.DataFrame({"item_id": ["i1", "i2"], "title": ["Amazon.com Gift Card &amp; Tea", "Tea"]})
    dataset = Dataset.from_frames(inter, users=users, items=items)
    cleaned, report = clean_dataset(dataset)
    assert list(cleaned.reviews) == ["Nice\ntea", None]
    assert cleaned.user_texts() == ["green tea", "plain"]
    assert list(cleaned.items["title"]) == ["Amazon.com Gift Card & Tea", "Tea"]  # a title keeps its domain name
    assert report.changed == 3
    assert list(dataset.reviews) == ["Nice<br />tea http://t.co/x", None]  # the input is unchanged
    assert cleaned.fingerprint() == dataset.fingerprint()


def test_config_refuses_unknown_switches():
    with pytest.raises(ConfigError, match="html_tags"):
        CleanConfig(html_tags=True)  # type: ignore[call-arg]
