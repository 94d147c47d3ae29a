"""personas.store: arrays + JSON round trip, checksums, atomic replacement, no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from personas import store
from personas.errors import DataError


def test_round_trip_is_exact(tmp_path: Path) -> None:
    arrays = {
        "weights": np.random.default_rng(0).normal(size=(5, 3)),
        "ids": np.array(["a", "bé", "c"]),
        "flags": np.array([True, False]),
        "scalar": np.array(1.5),
    }
    meta = {"class": "EASE", "config": {"l2": 300.0}, "nested": [1, 2, {"x": None}]}
    folder = store.save(tmp_path / "m", arrays, meta)
    loaded, loaded_meta = store.load(folder)
    assert loaded_meta == meta
    assert set(loaded) == set(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
    manifest = json.loads((folder / store.MANIFEST).read_text())
    assert set(manifest["files"]) == {f"{n}.npy" for n in arrays}


def test_a_changed_file_is_detected(tmp_path: Path) -> None:
    folder = store.save(tmp_path / "m", {"w": np.arange(10.0)}, {})
    data = bytearray((folder / "w.npy").read_bytes())
    data[-1] ^= 0xFF
    (folder / "w.npy").write_bytes(bytes(data))
    with pytest.raises(DataError, match="sha256 does not match"):
        store.load(folder)


def test_a_missing_file_or_manifest_is_reported(tmp_path: Path) -> None:
    folder = store.save(tmp_path / "m", {"w": np.arange(3)}, {})
    (folder / "w.npy").unlink()
    with pytest.raises(DataError, match="missing"):
        store.load(folder)
    with pytest.raises(DataError, match=r"no manifest\.json"):
        store.load(tmp_path / "nowhere")


def test_saving_again_replaces_the_folder_and_leaves_no_temporaries(tmp_path: Path) -> None:
    store.save(tmp_path / "m", {"old": np.zeros(2)}, {"v": 1})
    store.save(tmp_path / "m", {"new": np.ones(2)}, {"v": 2})
    arrays, meta = store.load(tmp_path / "m")
    assert set(arrays) == {"new"} and meta == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_object_arrays_and_unsafe_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Python objects"):
        store.save(tmp_path / "m", {"x": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(DataError, match="safe file name"):
        store.save(tmp_path / "m", {"../evil": np.zeros(1)}, {})
    assert not (tmp_path / "m").exists()


def test_a_failed_save_keeps_the_previous_artefact(tmp_path: Path) -> None:
    store.save(tmp_path / "m", {"w": np.arange(3)}, {"v": 1})
    with pytest.raises(TypeError):
        store.save(tmp_path / "m", {"w": np.arange(3)}, {"v": object()})  # not JSON
    arrays, meta = store.load(tmp_path / "m")
    assert meta == {"v": 1} and np.array_equal(arrays["w"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
