"""The run checks its groups: every finder knob from the TOML, HDBSCAN without groups falls back (and the
router still fits), the check is in the manifest and on the console."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personas.discover import AgglomerativeConfig, HDBSCANConfig, LeidenConfig
from personas.errors import ConfigError
from personas.pipeline import load_config

QUICK = '[evaluate]\nenabled = false\n[recommend]\nmodels = ["most-popular", "router"]\n'


def _with_discover(path: Path, discover: str) -> Path:
    path.write_text(path.read_text().replace("[discover]\nk = 3", f"[discover]\n{discover}"))
    return path


def test_hdbscan_that_finds_no_group_falls_back_and_the_router_fits(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any
) -> None:
    # 36 users in three tastes of 12: no group of at least 20 exists, so HDBSCAN finds none (once: a raw
    # "Found array with 0 sample(s)" from the router, or "0 personas" without it).
    path = _with_discover(make_config(shop, extra=QUICK, report="true"), 'method = "hdbscan"\nmin_group_size = 20')
    pipeline = run_pipeline(path, tmp_path)
    labels = pipeline.result.labels
    assert len(np.unique(labels)) >= 2 and (labels >= 0).all()
    manifest = json.loads((shop / "run" / "manifest.json").read_text())
    grouping = manifest["grouping"]
    assert grouping["fallback"].startswith("HDBSCAN found no group of at least min_group_size = 20 users")
    assert grouping["n_groups"] == len(np.unique(labels)) and grouping["unassigned_share"] == 1.0
    assert any("k-means" in w for w in grouping["warnings"])
    quality = json.loads((shop / "run" / "quality.json").read_text())
    assert quality["quality"]["grouping"] == grouping
    assert "router" in pipeline.result.models
    report = (shop / "run" / "report.html").read_text()
    assert "Warnings:</p><ul><li>HDBSCANGroups: HDBSCAN found no group" in report


@pytest.mark.parametrize(
    ("discover", "expected"),
    [
        (
            'method = "hdbscan"\nmin_group_size = 5\nmin_samples = 3\nnoise = "nearest"\nselection = "leaf"\n'
            'fallback = "one-group"',
            HDBSCANConfig(min_group_size=5, min_samples=3, noise="nearest", selection="leaf", fallback="one-group"),
        ),
        ('method = "agglomerative"\nlinkage = "average"\nk = 4', AgglomerativeConfig(k=4, linkage="average")),
        (
            'method = "agglomerative"\ndistance_threshold = 0.4\nlinkage = "complete"',
            AgglomerativeConfig(distance_threshold=0.4, linkage="complete"),
        ),
        (
            'method = "leiden"\nresolution = 2.0\nmin_group_size = 3\nn_neighbors = 5\nseed = 4',
            LeidenConfig(resolution=2.0, min_group_size=3, n_neighbors=5, seed=4),
        ),
    ],
)
def test_every_finder_knob_reaches_the_finder(tmp_path: Path, discover: str, expected: Any) -> None:
    path = tmp_path / "run.toml"
    path.write_text(f'[data]\ndataset = "ml-100k"\n[discover]\n{discover}\n')
    section = load_config(path).discover
    assert section.finder_config(section.k if isinstance(section.k, int) else 8) == expected
    assert not section.chooses_k  # hdbscan and leiden have no k; the others were given k or a threshold


def test_a_knob_of_another_method_names_that_method(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[data]\ndataset = "ml-100k"\n[discover]\nnoise = "nearest"\n')
    with pytest.raises(ConfigError, match=r"no parameter 'noise' with method = 'kmeans'; .* method = 'hdbscan'"):
        load_config(path)


def test_a_distance_threshold_from_the_toml_cuts_the_tree(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any
) -> None:
    """Once refused: k = "auto" chose a k, and the finder then had both k and a threshold."""
    discover = 'method = "agglomerative"\nlinkage = "average"\ndistance_threshold = 0.9'
    pipeline = run_pipeline(_with_discover(make_config(shop, extra=QUICK), discover), tmp_path)
    assert pipeline.result.k_choice is None
    assert len(np.unique(pipeline.result.labels)) >= 2
