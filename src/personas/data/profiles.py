"""One profile text per user, built from what the dataset knows about them.

Parts, in the configured order: the user's own text, their review texts, their tags, a demographics
sentence ("a 24-year-old male technician") and behaviour as text ("liked: Star Wars (1977) [Sci-Fi]; ...",
highest-rated items, most recent first). The whole text stays within a token budget.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from personas.data._profile_config import ProfileConfig, count_tokens
from personas.data._profile_config import within as _within
from personas.data._template import fill_template
from personas.data.columnar import profile_texts
from personas.data.dataset import Dataset
from personas.data.items import item_texts

__all__ = ["ProfileConfig", "build_profiles", "build_profiles_loop", "count_tokens"]


def build_profiles(
    dataset: Dataset,
    config: ProfileConfig | None = None,
    *,
    counter: Callable[[str], int] = count_tokens,
) -> list[str]:
    """A profile text for every user row (an empty string where nothing is known).

    Built per column (:func:`personas.data.columnar.profile_texts`: no Python per interaction) with the
    default token counter; a custom ``counter``, or separators that could merge tokens, take the per-user
    loop (:func:`build_profiles_loop`), which gives the same texts."""
    config = config or ProfileConfig()
    if counter is count_tokens:
        texts = profile_texts(dataset, config)
        if texts is not None:
            return texts
    return build_profiles_loop(dataset, config, counter=counter)


def build_profiles_loop(
    dataset: Dataset,
    config: ProfileConfig | None = None,
    *,
    counter: Callable[[str], int] = count_tokens,
) -> list[str]:
    """:func:`build_profiles` one user at a time: the reference the columnar builder is tested against."""
    config = config or ProfileConfig()
    users = dataset.users
    texts = item_texts(dataset, "template", template=config.item_template, value_maps=config.value_maps)
    order = np.lexsort((dataset.item_rows, -dataset.timestamps, dataset.user_rows))  # per user, newest first
    bounds = np.searchsorted(dataset.user_rows[order], np.arange(dataset.n_users + 1))
    tags_by_user: dict[int, list[str]] = {}
    tag_frame = dataset.tags
    if tag_frame is not None:
        for user, tag in zip(tag_frame["user"].to_numpy(), tag_frame["tag"].to_numpy(), strict=True):
            tags_by_user.setdefault(int(user), []).append(str(tag))
    own = dataset.user_texts()
    user_records = users.to_dict("records")
    profiles = []
    for row in range(dataset.n_users):
        mine = order[bounds[row] : bounds[row + 1]]
        pieces: list[str] = []
        for part in config.parts:
            piece = ""
            if part == "text":
                piece = own[row] or ""
            elif part == "reviews":
                reviews = [r for r in dataset.reviews[mine] if r]
                piece = " ".join(reviews[: config.max_reviews])
            elif part == "tags" and row in tags_by_user:
                unique = list(dict.fromkeys(tags_by_user[row]))[: config.max_tags]
                piece = "tags: " + ", ".join(unique)
            elif part == "demographics":
                piece = fill_template(config.demographics_template, user_records[row], config.value_maps)
            elif part == "behaviour" and len(mine):
                piece = _behaviour(dataset, mine, texts, config, pieces, counter)
            if piece:
                pieces.append(piece)
        profiles.append(_within(_join(pieces, config.part_separator), config.max_tokens, counter))
    return profiles


def _join(pieces: list[str], separator: str) -> str:
    """Parts joined by ``separator``, whose full stop is left out after a part that already ends a sentence
    ("I love tea." + ". " + "liked: ..." is "I love tea. liked: ...", not "tea.. liked")."""
    out = pieces[0] if pieces else ""
    for piece in pieces[1:]:
        ends = out.rstrip()[-1:] in (".", "!", "?", "。", "！", "？")
        out += (separator[1:] if ends and separator.startswith(".") else separator) + piece
    return out


def _behaviour(
    dataset: Dataset,
    mine: np.ndarray,
    item_texts: list[str],
    config: ProfileConfig,
    before: list[str],
    counter: Callable[[str], int],
) -> str:
    chosen = mine
    ratings = dataset.ratings[mine]
    if config.min_rating is not None and not np.isnan(ratings).all():
        liked = mine[ratings >= config.min_rating]
        # Users who never rated that high: take their highest-rated items instead.
        chosen = liked if len(liked) else mine[ratings == np.nanmax(ratings)]
    used = counter(config.part_separator.join(before)) if before else 0
    budget = config.max_tokens - used - counter(config.behaviour_template.replace("{items}", ""))
    names: list[str] = []
    seen: set[int] = set()
    for item in dataset.item_rows[chosen]:
        if item in seen or not item_texts[item]:
            continue
        seen.add(int(item))
        candidate = config.item_separator.join([*names, item_texts[item]])
        if counter(candidate) > budget:
            break
        names.append(item_texts[item])
    if not names:
        return ""
    return config.behaviour_template.replace("{items}", config.item_separator.join(names))
