"""A user's own CSV files in another shape, and helpers to run the pipeline on them quietly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from personas.config import Settings
from personas.pipeline import Pipeline, load_config

TASTES = {
    "space": ["Star Voyage", "Alien Planet", "Robot Wars", "Galaxy Quest", "Moon Base", "Mars Colony"],
    "romance": ["Paris Love", "Wedding Bells", "First Kiss", "Summer Romance", "Love Letters", "Sweet Hearts"],
    "crime": ["Heist Night", "Mafia Boss", "Detective Noir", "Bank Job", "Cold Case", "Crime City"],
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A user's own CSVs: other column names, string ids, no timestamps, three obvious tastes."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "shop"
    folder.mkdir()
    lines = ["customer;product;stars"]
    about = ["customer;bio"]
    for taste_index, (taste, titles) in enumerate(TASTES.items()):
        for j in range(12):
            customer = f"cust-{taste}-{j}"
            about.append(f"{customer};I mostly enjoy {taste} stories and {taste} films")
            for title in rng.choice(titles, size=5, replace=False):
                lines.append(f"{customer};sku-{title.replace(' ', '-').lower()};{rng.integers(3, 6)}")
            other = list(TASTES.values())[(taste_index + 1) % 3]
            lines.append(f"{customer};sku-{other[j % 6].replace(' ', '-').lower()};2")
    (folder / "orders.csv").write_text("\n".join(lines) + "\n")
    (folder / "customers.csv").write_text("\n".join(about) + "\n")
    products = ["sku;name"] + [f"sku-{t.replace(' ', '-').lower()};{t}" for ts in TASTES.values() for t in ts]
    (folder / "products.csv").write_text("\n".join(products) + "\n")
    return folder


def write_config(folder: Path, extra: str = "", **sections: str) -> Path:
    text = f"""
[data]
interactions = "orders.csv"
users = "customers.csv"
items = "products.csv"
delimiter = ";"
[data.columns.interactions]
user_id = "customer"
item_id = "product"
rating = "stars"
[data.columns.users]
user_id = "customer"
text = "bio"
[data.columns.items]
item_id = "sku"
title = "name"

[encode]
kind = "tfidf"
{sections.get("encode", "")}
[discover]
k = 3
[output]
dir = "{folder / "run"}"
report = {sections.get("report", "false")}
{extra}
"""
    path = folder / "run.toml"
    path.write_text(text)
    return path


def run(config_path: Path, tmp_path: Path) -> Pipeline:
    pipeline = Pipeline(
        load_config(config_path), settings=Settings(home=tmp_path / "home"), console=Console(quiet=True)
    )
    pipeline.result = pipeline.run()  # type: ignore[attr-defined]
    return pipeline


@pytest.fixture
def make_config() -> object:
    return write_config


@pytest.fixture
def run_pipeline() -> object:
    return run
