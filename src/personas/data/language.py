"""Which language a corpus is in, and Chinese words for methods that count words.

- :func:`detect_language`: the corpus' main language by ``lingua-language-detector`` (75 languages; its
  low-accuracy mode, trigrams only, is fast and enough for a vote over up to ``sample`` texts). Encoders are
  chosen by it (``[encode] kind = "auto"``) and an English-only model warns on other languages.
- :func:`segment`: Chinese written without spaces becomes words separated by spaces (``jieba``), so TF-IDF
  and keywords count words, not whole sentences. Text in other scripts is left as it is.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LanguageReport", "detect_language", "has_han", "segment"]

# CJK unified ideographs (with extension A and the compatibility block): the script jieba segments.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# jieba part-of-speech tags of function words, left out when only content words are wanted: pronouns,
# adverbs, conjunctions, prepositions, particles, numerals, measure words, modal particles, interjections,
# onomatopoeia, locality and time words, non-words.
_FUNCTION_TAGS = frozenset("rdcpumqyeoftxw")

_lock = threading.Lock()
_detector: Any = None
_jieba_ready = False


@dataclass(frozen=True)
class LanguageReport:
    """The main language of a corpus: ISO 639-1 ``code`` ("en", "zh"; None when unknown), its English
    ``name``, the ``share`` of the ``checked`` texts written in it, and a ``note`` when detection could not run."""

    code: str | None
    name: str | None
    share: float
    checked: int
    note: str = ""

    @property
    def is_english(self) -> bool | None:
        """True/False, or None when the language is unknown."""
        return None if self.code is None else self.code == "en"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "share": round(self.share, 3), "checked": self.checked}


def has_han(text: str | None) -> bool:
    """Whether ``text`` contains Chinese characters."""
    return bool(text) and _HAN.search(text or "") is not None


def _lingua() -> Any:
    global _detector
    with _lock:
        if _detector is None:
            from lingua import LanguageDetectorBuilder

            _detector = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
        return _detector


def detect_language(texts: Sequence[str | None], *, sample: int = 200, max_chars: int = 400) -> LanguageReport:
    """The most common language among up to ``sample`` non-empty texts (evenly spaced through the corpus,
    each cut to ``max_chars``): deterministic, about a second for 200 texts."""
    docs = [t for t in texts if t and t.strip()]
    if not docs:
        return LanguageReport(None, None, 0.0, 0, note="no text")
    step = max(1, len(docs) // sample)
    chosen = [d[:max_chars] for d in docs[::step][:sample]]
    try:
        detector = _lingua()
    except ImportError:
        return LanguageReport(
            None, None, 0.0, 0, note="lingua-language-detector is not installed (pip install 'personas[text]')"
        )
    found = detector.detect_languages_in_parallel_of(chosen)
    votes = Counter((lang.iso_code_639_1.name.lower(), lang.name.title()) for lang in found if lang is not None)
    if not votes:
        return LanguageReport(None, None, 0.0, len(chosen), note="no language recognised")
    (code, name), n = votes.most_common(1)[0]
    return LanguageReport(code, name, n / len(chosen), len(chosen))


def _jieba() -> Any:
    global _jieba_ready
    import jieba
    import jieba.posseg

    with _lock:
        if not _jieba_ready:
            jieba.setLogLevel(60)  # its dictionary-loading messages go to stderr otherwise
            jieba.initialize()
            _jieba_ready = True
    return jieba


def segment(text: str, *, content_words: bool = False) -> str:
    """``text`` with each run of Chinese characters split into words by jieba, separated by spaces
    ("我喜欢烤面包" -> "我 喜欢 烤面包"); with ``content_words`` function words are dropped by their part of
    speech ("喜欢 烤面包"). Text without Chinese comes back unchanged."""
    if not has_han(text):
        return text
    jieba = _jieba()

    def words(match: re.Match[str]) -> str:
        run = match.group(0)
        if content_words:
            kept = [p.word for p in jieba.posseg.cut(run) if p.flag[:1] not in _FUNCTION_TAGS]
        else:
            kept = list(jieba.cut(run))
        return " " + " ".join(kept) + " "

    return _HAN.sub(words, text)
