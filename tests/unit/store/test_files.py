"""personas._files: atomic file writes (whole file or nothing, no temporary file left behind)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from personas._files import atomic_path, write_atomic


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_atomic_writes_bytes_and_text(tmp_path: Path) -> None:
    assert write_atomic(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    write_atomic(tmp_path / "b.md", "héllo\r\nworld\n")
    write_atomic(tmp_path / "c.txt", "é", encoding="latin-1")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.md").read_bytes() == "héllo\r\nworld\n".encode()  # no newline translation
    assert (tmp_path / "c.txt").read_bytes() == b"\xe9"
    assert _names(tmp_path) == ["a.bin", "b.md", "c.txt"]


def test_write_atomic_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    write_atomic(target, "new", fsync=True)
    assert target.read_text() == "new"
    assert _names(tmp_path) == ["r.json"]


def test_new_files_get_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    write_atomic(tmp_path / "atomic", "x")
    assert (tmp_path / "atomic").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_atomic_path_lets_a_library_write_the_file(tmp_path: Path) -> None:
    target = tmp_path / "v.npy"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".v.npy.") and tmp.name.endswith(".tmp")
        assert not target.exists()  # nothing visible under the real name before the block ends
        with tmp.open("wb") as handle:
            np.save(handle, np.arange(3), allow_pickle=False)
    assert np.array_equal(np.load(target), np.arange(3))
    assert _names(tmp_path) == ["v.npy"]


def test_prefix_and_suffix_name_the_temporary_file(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "shard-1.npz", prefix=".tmp-", suffix=".npz") as tmp:
        assert tmp.name.startswith(".tmp-") and tmp.name.endswith(".npz")
        tmp.write_bytes(b"z")
    assert _names(tmp_path) == ["shard-1.npz"]


def test_a_failure_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")

    def write_half() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half of the n")
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_half()
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["report.md"]


def test_a_failure_before_anything_exists_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "new.parquet"):
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
