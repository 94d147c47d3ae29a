"""What a typed taste asks for and what it rules out: "comedies, but no horror" -> ("comedies", "horror").

A sentence encoder puts "anything but horror" next to horror films (the words are about horror), so a typed
taste is split before it is encoded: the clauses (or clause tails) after a negation cue are what the user wants
to avoid, the rest is what they want. A handful of English cues cover what people type into a search box; a
full parser (spaCy's dependency negation) would need a language model download that this project cannot make.
"""

from __future__ import annotations

import re

__all__ = ["split_negation"]

# Longest first, so "anything but" wins over "but" and "do not like" over "not".
_CUES = (
    "anything but",
    "anything except",
    "everything but",
    "everything except",
    "anything other than",
    "other than",
    "apart from",
    "except for",
    "except",
    "excluding",
    "without",
    "do not like",
    "don't like",
    "dont like",
    "do not want",
    "don't want",
    "can't stand",
    "cannot stand",
    "not into",
    "not",
    "no more",
    "no",
    "nothing",
    "never",
    "hate",
    "hates",
    "dislike",
    "dislikes",
    "avoid",
)
_EDGE = r"(?<![\w'-])"
_END = r"(?![\w'-])"
# "not too scary" and "not very long" soften a wish rather than rule something out.
_SOFT_NOT = r"not(?!\s+(?:too|very|so|overly|that)\b)"
_CUE = re.compile(
    _EDGE + "(" + "|".join(_SOFT_NOT if c == "not" else re.escape(c) for c in _CUES) + ")" + _END, re.IGNORECASE
)
# Clause breaks: punctuation, and a contrastive "but" that is not part of "anything but" / "all but".
_CLAUSE = re.compile(r"[,;.!?\n]+|" + _EDGE + r"(?<!anything )(?<!everything )(?<!all )but" + _END, re.IGNORECASE)
_FILLER = re.compile(_EDGE + r"(please|thanks|thank you|and|or|i|me|my|also|really|any|at all)" + _END, re.IGNORECASE)


def _meaningful(text: str) -> str:
    """``text`` trimmed; empty when only filler words are left ("please", "and", "I")."""
    text = " ".join(text.split())
    return text if _FILLER.sub(" ", text).strip(" -'\"") else ""


def split_negation(text: str) -> tuple[str, str]:
    """(wanted, avoided): the parts of a typed taste that ask for something and the parts after a negation cue,
    each joined with ", " (empty when there is none). Text without a cue comes back whole as wanted.

    >>> split_negation("romantic comedies, but no horror please")
    ('romantic comedies', 'horror please')
    >>> split_negation("anything but westerns")
    ('', 'westerns')
    """
    wanted: list[str] = []
    avoided: list[str] = []
    for clause in _CLAUSE.split(text):
        cue = _CUE.search(clause)
        if cue is None:
            wanted.append(_meaningful(clause))
            continue
        wanted.append(_meaningful(clause[: cue.start()]))
        avoided.append(_meaningful(clause[cue.end() :]))
    return ", ".join(w for w in wanted if w), ", ".join(a for a in avoided if a)
