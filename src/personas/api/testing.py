"""Helpers to try the service for real: a small run folder with obvious tastes, and the server in a process.

Used by the API and dashboard tests and by ``bench/serve.py``::

    folder = write_example_run(tmp / "run")
    with ServerProcess(folder, database_url="sqlite:///" + str(tmp / "db.sqlite")) as server:
        httpx.get(server.url + "/personas", headers=server.headers)   # an admin key made for this server
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rich.console import Console

from personas.config import Settings
from personas.pipeline import Pipeline, load_config

__all__ = [
    "PRODUCTS",
    "SUB_TASTES",
    "TASTES",
    "PostgresCluster",
    "ServerProcess",
    "ServerThread",
    "free_port",
    "key_headers",
    "keyed_client",
    "write_example_run",
    "write_review_run",
    "write_tree_run",
]

#: Three tastes with six titles each; each user mostly takes items of one taste and says so in their bio.
TASTES: dict[str, list[str]] = {
    "space": ["Star Voyage", "Alien Planet", "Robot Wars", "Galaxy Quest", "Moon Base", "Mars Colony"],
    "romance": ["Paris Love", "Wedding Bells", "First Kiss", "Summer Romance", "Love Letters", "Sweet Hearts"],
    "crime": ["Heist Night", "Mafia Boss", "Detective Noir", "Bank Job", "Cold Case", "Crime City"],
}


def item_id(title: str) -> str:
    return "sku-" + title.replace(" ", "-").lower()


def write_example_run(
    folder: Path,
    *,
    users_per_taste: int = 12,
    seed: int = 0,
    home: Path | None = None,
    encoder: str = "tfidf",
) -> Path:
    """Run the pipeline (TF-IDF text, or ``encoder``, e.g. "minilm"; k=3, router among the models) on synthetic
    CSVs; returns ``folder``."""
    folder = Path(folder)
    data = folder.parent / f"{folder.name}-data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    orders = ["user,item,rating"]
    bios = ["user,bio"]
    tastes = list(TASTES)
    for index, taste in enumerate(tastes):
        titles = TASTES[taste]
        for j in range(users_per_taste):
            user = f"{taste}-{j}"
            bios.append(f"{user},I mostly enjoy {taste} stories and {taste} films")
            for title in rng.choice(titles, size=4, replace=False):
                orders.append(f"{user},{item_id(str(title))},{rng.integers(3, 6)}")
            other = TASTES[tastes[(index + 1) % len(tastes)]]
            orders.append(f"{user},{item_id(other[j % len(other)])},2")
    products = ["item,title"] + [f"{item_id(t)},{t}" for titles in TASTES.values() for t in titles]
    return _write_and_run(folder, data, orders, bios, products, f"k = 3\nseed = {seed}", home=home, encoder=encoder)


def _write_and_run(
    folder: Path,
    data: Path,
    orders: list[str],
    bios: list[str],
    products: list[str],
    discover: str,
    *,
    home: Path | None,
    report: bool = False,
    encoder: str = "tfidf",
) -> Path:
    """Write the CSVs (user,item,rating / user,bio / item,title) and a run config (TF-IDF text unless
    ``encoder`` says otherwise) with the given ``[discover]`` lines, run it quietly into ``folder``; returns
    ``folder``."""
    (data / "interactions.csv").write_text("\n".join(orders) + "\n", encoding="utf-8")
    (data / "users.csv").write_text("\n".join(bios) + "\n", encoding="utf-8")
    (data / "items.csv").write_text("\n".join(products) + "\n", encoding="utf-8")
    config = data / "run.toml"
    config.write_text(
        f"""
[data]
interactions = "interactions.csv"
users = "users.csv"
items = "items.csv"
[data.columns.interactions]
user_id = "user"
item_id = "item"
[data.columns.users]
user_id = "user"
text = "bio"
[data.columns.items]
item_id = "item"
title = "title"

[encode]
kind = "{encoder}"
[discover]
{discover}
[recommend]
models = ["most-popular", "group-popular", "ease", "router"]
[evaluate]
enabled = false
[output]
dir = "{folder.as_posix()}"
report = {str(report).lower()}
""",
        encoding="utf-8",
    )
    _run_quietly(config, Settings(home=home or data / "home"))
    return folder


def _run_quietly(config: Path, settings: Settings) -> None:
    with warnings.catch_warnings():
        # Tiny data: the encoders say they reduce their dimensions, as expected here.
        warnings.filterwarnings("ignore", message=".*reduced to", category=UserWarning)
        Pipeline(load_config(config), settings=settings, console=Console(quiet=True)).run()


#: Three kinds of product and the words their reviewers use (see :func:`write_review_run`).
PRODUCTS: dict[str, list[str]] = {
    "coffee": ["dark roast coffee beans", "espresso coffee with a rich crema", "smooth coffee for my morning cup"],
    "catfood": ["my cats love this cat food", "dry cat food my kitten eats", "cat treats my cats beg for"],
    "sauce": ["hot sauce with chili peppers", "tomato sauce for pasta", "spicy sauce for grilled meat"],
}
# Each review starts with its kind's words, so that TF-IDF k-means finds the three kinds on 50 short reviews.
_KIND_WORDS = {"coffee": "coffee coffee", "catfood": "cat food cat food", "sauce": "sauce sauce"}


def write_review_run(folder: Path, *, products_per_kind: int = 10, seed: int = 0, home: Path | None = None) -> Path:
    """A run shaped like product reviews (issue 16's fine-food reviews): one review per user, so no two items
    were ever taken together; products have ids and no titles; cat food has three reviewers per product, the
    others one. TF-IDF text, k=3, the router among the models. Returns ``folder``."""
    folder = Path(folder)
    data = folder.parent / f"{folder.name}-data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = ["reviewer,product,review"]
    for kind, phrases in PRODUCTS.items():
        for i in range(products_per_kind):
            for r in range(3 if kind == "catfood" else 1):
                rows.append(
                    f"{kind}-fan-{i}-{r},{kind}-{i:02d},{_KIND_WORDS[kind]} {phrases[int(rng.integers(len(phrases)))]}"
                )
    (data / "reviews.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = data / "run.toml"
    config.write_text(
        f"""
[data]
interactions = "reviews.csv"
[data.columns.interactions]
user_id = "reviewer"
item_id = "product"
review = "review"
[encode]
kind = "tfidf"
behaviour_weight = 0.0  # one item per user: behaviour says nothing about taste here
[discover]
k = 3
seed = {seed}
[recommend]
models = ["most-popular", "group-popular", "ease", "router"]
[evaluate]
enabled = false
[output]
dir = "{folder.as_posix()}"
report = false
""",
        encoding="utf-8",
    )
    _run_quietly(config, Settings(home=home or data / "home"))
    return folder


#: Two broad tastes, each with two sub-tastes of five titles (see :func:`write_tree_run`).
SUB_TASTES: dict[str, dict[str, list[str]]] = {
    "space": {
        "robots": ["Robot Wars", "Steel Giants", "Android Dawn", "Mech Force", "Circuit Heart"],
        "aliens": ["Alien Planet", "First Contact", "Green Visitors", "Mothership", "Crop Circles"],
    },
    "crime": {
        "heists": ["Heist Night", "Bank Job", "Vault Raid", "Casino Score", "Getaway Car"],
        "detectives": ["Detective Noir", "Cold Case", "Murder Clue", "Private Eye", "Whodunit Manor"],
    },
}


def write_tree_run(
    folder: Path,
    *,
    users_per_sub_taste: int = 10,
    seed: int = 0,
    home: Path | None = None,
    report: bool = False,
    k: int | None = 4,
) -> Path:
    """A two-level run (``[discover] hierarchy = true``): users of four sub-tastes nested in two tastes, their bios
    naming both ("I love space stories ... robots most of all"); fine k = ``k`` (None: "auto", by validation among
    2, 4 and 6), coarse k chosen among 2 and 3. Returns ``folder``."""
    folder = Path(folder)
    data = folder.parent / f"{folder.name}-data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    orders = ["user,item,rating"]
    bios = ["user,bio"]
    products = ["item,title"]
    for taste, subs in SUB_TASTES.items():
        names = list(subs)
        for index, sub in enumerate(names):
            products += [f"{item_id(t)},{t}" for t in subs[sub]]
            sibling = subs[names[1 - index]]
            for j in range(users_per_sub_taste):
                user = f"{sub}-{j}"
                bios.append(f"{user},I love {taste} stories and {taste} films and {taste} books; {sub} most of all")
                taken = rng.choice(subs[sub], 4, replace=False)
                mine = [f"{user},{item_id(str(t))},{rng.integers(4, 6)}" for t in taken]
                mine += [f"{user},{item_id(sibling[(j + s) % len(sibling)])},4" for s in (0, 1)]
                orders += [mine[i] for i in rng.permutation(len(mine))]  # file order is the time order here
    auto = '"auto"'
    discover = (
        f"k = {k if k is not None else auto}\ncandidates = [2, 4, 6]\nseed = {seed}\nhierarchy = true\n"
        "coarse_candidates = [2, 3]"
    )
    return _write_and_run(folder, data, orders, bios, products, discover, home=home, report=report)


def key_headers(database_url: str, scopes: str = "admin", *, run_users: bool = False) -> dict[str, str]:
    """A new API key in that database (tables made when missing), as the header that sends it."""
    from personas.api.auth import create_key
    from personas.api.storage import Storage

    storage = Storage(database_url)
    try:
        storage.create_schema()
        _, key = create_key(storage, scopes, name="testing", run_users=run_users)
    finally:
        storage.close()
    return {"Authorization": f"Bearer {key}"}


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: ServeSettings fields that turn the rate limits off (an empty limit is no limit): for tests about something
#: else, which send requests faster than a client would and would meet the default 20 per second on a fast machine.
UNLIMITED: dict[str, str] = {"rate_limit_per_key": "", "rate_limit_per_address": ""}
#: The same as environment variables, for a server in its own process.
NO_RATE_LIMITS = {f"PERSONAS_SERVE_{name.upper()}": value for name, value in UNLIMITED.items()}


class ServerProcess:
    """``personas serve`` in a child process on a loopback port; ready when ``/health`` answers 200.

    ``key_scopes`` (default admin; None: none): a key made in the server's database before it starts, sent by
    ``headers``. Without ``database_url`` the database is the default one as this process resolves it.
    ``rate_limits`` (default off): the served rate limits; a test about something else turns them off, or a
    burst of its own requests on a fast machine meets the default 20 per second (``env`` still overrides).
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        database_url: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        extra_args: tuple[str, ...] = ("--no-access-log", "--log-level", "warning"),
        env: dict[str, str] | None = None,
        startup_timeout: float = 120.0,
        key_scopes: str | None = "admin",
        rate_limits: bool = False,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.rate_limits = rate_limits
        self.key_scopes = key_scopes
        self.headers: dict[str, str] = {}
        self.database_url = database_url
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = extra_args
        self.env = env
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> ServerProcess:
        if self.key_scopes is not None:
            from personas.api.settings import ServeSettings

            url = self.database_url or ServeSettings(model_dir=self.model_dir).resolved_database_url()
            self.headers = key_headers(url, self.key_scopes)
        command = [
            sys.executable,
            "-c",
            "from personas.cli import main; main()",
            "serve",
            "--model",
            str(self.model_dir),
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        if self.database_url:
            command += ["--db", self.database_url]
        self._log = tempfile.NamedTemporaryFile("w+", prefix="personas-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **({} if self.rate_limits else NO_RATE_LIMITS), **(self.env or {})},
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log()
                self._close_log()
                raise RuntimeError(f"personas serve exited with code {self.process.returncode}:\n{log[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2.0) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise TimeoutError(f"personas serve did not answer /health within {self.startup_timeout:.0f} s")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # uvicorn shuts down gracefully on SIGTERM
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._close_log()

    def _close_log(self) -> None:
        if hasattr(self, "_log") and not self._log.closed:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)


class ServerThread:
    """The real uvicorn server for an app object, in a thread of this process, on a loopback port.

    Cheaper to start than :class:`ServerProcess` (no new interpreter); the browser tests use it.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        import uvicorn

        self.host = host
        self.port = port or free_port(host)
        from personas.api.edge import uvicorn_options

        # The edge settings of the app's service, as `personas serve` would pass them.
        settings = getattr(getattr(app, "state", None), "service", None)
        edge = uvicorn_options(settings.settings) if settings is not None else {}
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", access_log=False, **edge)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="personas-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.05)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free loopback port (Debian's binaries), for tests: ``start()``,
    ``stop()`` (immediate, like a crash or an outage), ``start()`` again on the same data, ``remove()``.

    PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` OS user.
    """

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
        if not found:
            raise FileNotFoundError(
                "PostgreSQL is not installed; `make test` installs it (scripts/ensure-system-deps)."
            )
        self.bin = Path(found[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="personas-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> bool:
        return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def start(self) -> PostgresCluster:
        try:
            if not self.data.exists():
                initdb = str(self.bin / "initdb")
                self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
            )
            log = str(self.root / "log")
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", options, "start"
            )
        except subprocess.CalledProcessError as exc:
            log_path = self.root / "log"
            log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
            self.remove()
            raise RuntimeError(f"could not start PostgreSQL: {exc.stderr!r} {log_text[-2000:]}") from exc
        return self

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: like a crash (this cluster acknowledges commits before they are on disk, so the last
        ones may be lost); ``fast``: a clean shutdown that keeps every commit."""
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop"], capture_output=True
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def keyed_client(app: Any, scopes: str = "admin") -> Any:
    """A TestClient of ``app`` as a trusted caller: an allowed Host (localhost) and a new key of those scopes
    in every request (enter it with ``with``)."""
    from fastapi.testclient import TestClient

    from personas.api.auth import create_key

    _, key = create_key(app.state.service.storage, scopes, name="testing")
    return TestClient(app, base_url="http://localhost", headers={"Authorization": f"Bearer {key}"})
