"""Text cleaning before anything reads the texts: markup, broken Unicode, links, e-mail addresses, @mentions
and retweet markers out, the words kept.

Review sites and social posts carry text that says who posted rather than what about: ``<br />`` and
``<span class="tiny">`` from review HTML, links (``http://www.amazon.com/gp/...``), @mentions and "RT". Left
in, they become keywords and names ("br · just · quality", "www amazon · http · com gp") and TF-IDF groups
users by their link shortener. :func:`clean_dataset` cleans a dataset's user texts, reviews and item texts
once, after loading, so profiles, keywords, names and quotes all read the cleaned text.

Each step is a maintained library where one exists:

- HTML to text: ``selectolax`` (the Lexbor HTML5 parser). Only texts that look like markup (a tag or an
  entity) are parsed; ``<br>`` and block elements become line breaks, scripts and styles are dropped.
- Unicode repair: ``ftfy`` (mojibake such as ``doesnâ€™t``, HTML entities left in plain text). Full-width
  characters are kept as written (Chinese punctuation is part of the user's text).
- Links and e-mail addresses: ``urlextract`` (a public-suffix-aware URL finder: it also finds links without a
  scheme, ``amazon.com/gp/...``). A match without scheme, ``www.`` or path whose second part starts with a
  capital is a missing space after a full stop ("great tea.It arrived"), not a link, and stays.
- @mentions and "RT": no maintained library covers them (``twitter-text-parser`` 3.0, the port of Twitter's
  own rules, fails to import on setuptools >= 81; ``tweet-preprocessor`` is unmaintained since 2020 and is
  itself a regex), so two small patterns below: a mention is ``@`` plus a handle, not preceded by a word
  character (``a@b.com`` is an address, not a mention); "RT" is the upper-case token alone, with its colon.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from personas.config import ComponentConfig
from personas.data.dataset import Dataset
from personas.errors import ConfigError

__all__ = ["CleanConfig", "CleanReport", "clean_dataset", "clean_text", "clean_texts"]


class CleanConfig(ComponentConfig):
    """Which cleaning steps run (all by default). ``[data.clean]`` in a pipeline TOML."""

    enabled: bool = True
    html: bool = True
    unicode: bool = True
    urls: bool = True
    emails: bool = True
    mentions: bool = True
    retweets: bool = True


@dataclass
class CleanReport:
    """How many texts each step changed (a text changed by two steps counts in both)."""

    texts: int = 0
    changed: int = 0
    steps: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """``"cleaned 812 of 5,000 texts (html 790, urls 95, mentions 3)"``."""
        detail = ", ".join(f"{step} {n:,}" for step, n in sorted(self.steps.items(), key=lambda s: (-s[1], s[0])))
        return f"cleaned {self.changed:,} of {self.texts:,} texts" + (f" ({detail})" if detail else "")


# A tag start (<br, </p, <!--) or an entity (&amp; &#39; &#x27;): only such texts go through the HTML parser.
_MARKUP = re.compile(r"<[A-Za-z/!]|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]{2,8});")
_BLOCKS = "br, p, div, li, tr, h1, h2, h3, h4, h5, h6, blockquote, pre, hr, table, ul, ol"
# "@handle" (Twitter: letters, digits, underscore; Weibo handles may be Chinese, so \w), not inside a word or
# an address; "RT" alone, upper case, with its colon. Their trailing ':' ("RT @bob: ...") goes with them.
_MENTION = re.compile(r"(?<![\w@.])@\w+:?")
_RETWEET = re.compile(r"(?<!\S)RT\b:?")
_SPACES = re.compile(r"[^\S\n]+")
_LINES = re.compile(r"\s*\n\s*")
_SPACE_PUNCT = re.compile(r" +([.,;:!?])")
_MIN_PART = re.compile(r"^[A-Z]")
# urlextract matches ~1,500 top-level domains in one regex (~12 ms per review); most texts have no dot inside a
# word, so they skip it.
_DOT_WORD = re.compile(r"[^\s.]\.[^\W\d_]")

_lock = threading.Lock()
_extractor: Any = None


def _missing_library(name: str) -> ConfigError:
    return ConfigError(
        f"Text cleaning needs the {name!r} package: pip install {name} (it comes with personas), or turn the "
        "step off in [data.clean]."
    )


def _urls() -> Any:
    global _extractor
    with _lock:
        if _extractor is None:
            try:
                from urlextract import URLExtract
            except ImportError:
                raise _missing_library("urlextract") from None
            _extractor = URLExtract(extract_email=True)
        return _extractor


def _html_to_text(text: str) -> str:
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError:
        raise _missing_library("selectolax") from None
    tree = LexborHTMLParser(text)
    tree.strip_tags(["script", "style", "noscript", "template"])
    for node in tree.css(_BLOCKS):
        node.insert_after("\n")
    for node in tree.css("a"):  # a link's text is a title of its own: "truffles<a>Fresh White ..." is not one word
        node.insert_before(" ")
        node.insert_after(" ")
    root = tree.body if tree.body is not None else tree.root
    return "" if root is None else str(root.text(separator="", strip=False))


def _fix_unicode(text: str) -> str:
    try:
        import ftfy
    except ImportError:
        raise _missing_library("ftfy") from None
    return str(ftfy.fix_text(text, fix_character_width=False, uncurl_quotes=False))


def _is_link(match: str) -> bool:
    """Whether urlextract's ``match`` is a link rather than two sentences missing a space ("tea.It")."""
    if "://" in match or match.lower().startswith("www.") or "/" in match:
        return True
    parts = match.split(".")
    return len(parts) < 2 or not _MIN_PART.match(parts[1])


def _strip_links(text: str, *, urls: bool, emails: bool) -> tuple[str, bool, bool]:
    if not _DOT_WORD.search(text):  # every link and address has a dot between two words ("amazon.com")
        return text, False, False
    found = _urls().find_urls(text, get_indices=True, only_unique=False)
    pieces: list[str] = []
    at = 0
    url_hit = email_hit = False
    for match, (start, end) in found:
        is_email = "@" in match and "://" not in match and "/" not in match
        wanted = emails if is_email else urls and _is_link(match)
        if not wanted:
            continue
        pieces.append(text[at:start])
        pieces.append(" ")
        at = end
        email_hit |= is_email
        url_hit |= not is_email
    pieces.append(text[at:])
    return "".join(pieces), url_hit, email_hit


def _tidy(text: str) -> str:
    """Runs of spaces as one, no space before punctuation (where a removed link or tag left one), one line
    break between lines."""
    text = _SPACES.sub(" ", text)
    text = _SPACE_PUNCT.sub(r"\1", text)
    text = _LINES.sub("\n", text)
    return text.strip(" \n:")


def clean_text(text: str | None, config: CleanConfig | None = None, *, report: CleanReport | None = None) -> str | None:
    """One text cleaned by the steps ``config`` turns on (None and "" come back unchanged)."""
    config = config or CleanConfig()
    if text is None or not text or not config.enabled:
        return text
    out = text
    steps: list[str] = []
    if config.html and _MARKUP.search(out):
        out = _html_to_text(out)
        steps.append("html")
    if config.unicode:
        fixed = _fix_unicode(out)
        if fixed != out:
            out = fixed
            steps.append("unicode")
    if config.urls or config.emails:
        out, url_hit, email_hit = _strip_links(out, urls=config.urls, emails=config.emails)
        steps += ["urls"] * url_hit + ["emails"] * email_hit
    if config.retweets and "RT" in out:
        out, n = _RETWEET.subn(" ", out)
        steps += ["retweets"] * bool(n)
    if config.mentions and "@" in out:
        out, n = _MENTION.subn(" ", out)
        steps += ["mentions"] * bool(n)
    out = _tidy(out) if steps else out
    if report is not None:
        report.texts += 1
        report.changed += out != text
        report.steps.update(steps)
    return out


def clean_texts(
    texts: Sequence[str | None], config: CleanConfig | None = None, *, report: CleanReport | None = None
) -> list[str | None]:
    """:func:`clean_text` on each text."""
    config = config or CleanConfig()
    return [clean_text(t, config, report=report) for t in texts]


def _clean_column(frame: pd.DataFrame, column: str, config: CleanConfig, report: CleanReport) -> None:
    if column in frame:
        values = frame[column].to_numpy(dtype=object)
        frame[column] = [v if not isinstance(v, str) else clean_text(v, config, report=report) for v in values]


def clean_dataset(dataset: Dataset, config: CleanConfig | None = None) -> tuple[Dataset, CleanReport]:
    """The dataset with cleaned user texts, reviews and item texts (every step of ``config``), and item titles
    and tags (markup and Unicode only: "Amazon.com Gift Card" is a title, not a link). Ids, interactions and
    every other column are unchanged; the input is not modified."""
    config = config or CleanConfig()
    report = CleanReport()
    if not config.enabled:
        return dataset, report
    light = config.model_copy(update={"urls": False, "emails": False, "mentions": False, "retweets": False})
    users, items = dataset.users, dataset.items
    _clean_column(users, "text", config, report)
    _clean_column(items, "text", config, report)
    _clean_column(items, "title", light, report)
    reviews = np.empty(len(dataset.reviews), dtype=object)
    reviews[:] = [r if r is None else clean_text(str(r), config, report=report) for r in dataset.reviews]
    reviews.setflags(write=False)
    tags = dataset.tags
    if tags is not None:
        _clean_column(tags, "tag", light, report)
    cleaned = replace(dataset, _users=users, _items=items, reviews=reviews, _tags=tags)
    return cleaned, report
