"""The server edge against a real `personas serve` process over raw sockets: streamed body limits with bounded
memory, the header limit, slow requests cut after the request timeout; and, in process, hosts, CORS, security
headers and the offline /docs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fastapi.testclient import TestClient

from personas.api import ServeSettings, create_app
from personas.api.auth import create_key
from personas.api.testing import UNLIMITED, ServerProcess, item_id

REQUEST_TIMEOUT = 1.5
MAX_HEADER_BYTES = 8_192


@pytest.fixture(scope="module")
def server(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("edge")
    env = {
        "PERSONAS_HOME": str(home),
        "PERSONAS_SERVE_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "PERSONAS_SERVE_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    }
    with ServerProcess(run_dir, database_url=f"sqlite:///{home / 'edge.sqlite'}", env=env) as process:
        yield process


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=15)


def _read_response(sock: socket.socket) -> bytes:
    """One response (headers and a Content-Length body), or what came before the server closed."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        while length and len(body) < int(length.group(1)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body
    except OSError:  # reset after the answer: the rest of the body was refused
        return data


def _peak_rss_growth(pid: int, action: threading.Thread) -> int:
    """The largest RSS of the process while ``action`` runs, minus its RSS before."""
    process = psutil.Process(pid)
    before = peak = process.memory_info().rss
    action.start()
    while action.is_alive():
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.002)
    return peak - before


def _post_chunked(server: ServerProcess, path: str, total_bytes: int) -> tuple[bytes, float]:
    """POST a JSON list of ``total_bytes`` of item ids with chunked transfer encoding (no Content-Length)."""
    sock = _connect(server)
    one = f'"{item_id("Bank Job")}",'.encode()
    chunk = one * (65536 // len(one))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()

    def send() -> None:
        try:
            opening = b'{"items": ['
            sock.sendall(head + b"%x\r\n%s\r\n" % (len(opening), opening))
            for _ in range(total_bytes // len(chunk)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b'7\r\n"x"]}  \r\n0\r\n\r\n')
        except OSError:  # the server answered and closed
            pass

    sender = threading.Thread(target=send)
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(_read_response(sock)))
    sender.start()
    growth = _peak_rss_growth(server.process.pid, reader)  # type: ignore[union-attr]
    sender.join(timeout=30)
    sock.close()
    return result[0], float(growth)


@pytest.mark.slow
def test_a_chunked_10_mb_body_is_refused_with_bounded_memory(server: ServerProcess) -> None:
    # Warm up the paths a refusal takes (a small refusal and a small accepted post), so growth is the body's.
    for _ in range(2):
        _post_chunked(server, "/users/crime-1/events", 70_000)
    response, growth = _post_chunked(server, "/users/crime-1/events", 10_000_000)
    # The 10 MB list of ids is neither buffered nor parsed: the server grows by far less than the body.
    assert growth < 3_000_000, f"server RSS grew by {growth / 1e6:.1f} MB for a 10 MB body"
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"payload_too_large"' in response and b"connection: close" in response.lower()

    # Same for POST /users (text and items): its limit is larger, still far below 10 MB.
    response, growth = _post_chunked(server, "/users", 10_000_000)
    assert response.startswith(b"HTTP/1.1 413") and growth < 3_000_000, (response[:200], growth)


@pytest.mark.slow
def test_a_content_length_over_the_limit_is_refused_before_the_body_is_sent(server: ServerProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(
            f"POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**9}\r\n\r\n".encode()
        )
        sock.settimeout(REQUEST_TIMEOUT / 2)  # answered at once, not after a read or a timeout
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]


@pytest.mark.slow
def test_headers_over_the_limit_are_refused(server: ServerProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 400"), response[:200]
    assert f"limited to {MAX_HEADER_BYTES} bytes".encode() in response
    with _connect(server) as sock:  # headers within the limit are fine
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Small: " + b"a" * 2_000 + b"\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200")


@pytest.mark.slow
@pytest.mark.parametrize(
    "partial",
    [
        b"",  # connected, says nothing
        b"POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic",  # half the headers
        b"POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"text": "sl',  # half the body
    ],
    ids=["idle", "half-headers", "half-body"],
)
def test_an_unfinished_request_is_closed_after_the_request_timeout(server: ServerProcess, partial: bytes) -> None:
    with _connect(server) as sock:
        sock.sendall(partial)
        started = time.monotonic()
        sock.settimeout(REQUEST_TIMEOUT + 5)
        try:
            while sock.recv(65536):
                pass
        except TimeoutError:
            pytest.fail(f"the server held an unfinished request open for {REQUEST_TIMEOUT + 5} s")
        except OSError:
            pass
        waited = time.monotonic() - started
    assert REQUEST_TIMEOUT - 0.5 < waited < REQUEST_TIMEOUT + 2


@pytest.mark.slow
def test_a_request_being_answered_is_not_cut_and_keep_alive_works(server: ServerProcess) -> None:
    with _connect(server) as sock:
        for _ in range(3):  # three requests on one connection, each within the deadline
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(REQUEST_TIMEOUT / 3)


# -- in process ---------------------------------------------------------------------------------------------
@pytest.fixture
def edge_client(run_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = ServeSettings(
        model_dir=run_dir,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        cors_origins=["https://app.example.com"],
        **UNLIMITED,
    )
    app = create_app(settings)
    _, key = create_key(app.state.service.storage, "admin", name="tests")
    with TestClient(app, base_url="http://localhost", headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


def test_a_host_not_allowed_gets_400(edge_client: TestClient) -> None:
    # DNS rebinding: a page on attacker.example resolving to 127.0.0.1 sends its own name as Host.
    assert edge_client.get("/health", headers={"host": "attacker.example"}).status_code == 400
    refused = edge_client.get("/health", headers={"host": "attacker.example:8000"})
    assert refused.status_code == 400 and refused.headers["x-content-type-options"] == "nosniff"
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert edge_client.get("/health", headers={"host": host}).status_code == 200, host


def test_allowed_hosts_and_bind_host_from_settings(run_dir: Path) -> None:
    assert "10.0.0.5" in ServeSettings(model_dir=run_dir, host="10.0.0.5").resolved_allowed_hosts()
    assert "0.0.0.0" not in ServeSettings(model_dir=run_dir, host="0.0.0.0").resolved_allowed_hosts()
    assert ServeSettings(model_dir=run_dir, allowed_hosts=["api.example.com"]).resolved_allowed_hosts() == [
        "api.example.com"
    ]


def test_cors_answers_only_the_listed_origins(edge_client: TestClient, client: TestClient) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    allowed = edge_client.options("/users", headers={"origin": "https://app.example.com", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = edge_client.get("/health", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    # By default no origin is allowed.
    default = client.get("/health", headers={"origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in default.headers


@pytest.mark.parametrize("path", ["/", "/health", "/users/nobody/persona", "/static/dashboard.js"])
def test_security_headers_on_every_response(edge_client: TestClient, path: str) -> None:
    headers = edge_client.get(path).headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "script-src 'self';" in csp  # no inline script, no eval
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"


def test_docs_use_only_local_assets(edge_client: TestClient) -> None:
    page = edge_client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert edge_client.get(asset).status_code == 200, asset
    # The page's one inline script is allowed by its hash, not by 'unsafe-inline'.
    assert "'sha256-" in page.headers["content-security-policy"]
    assert edge_client.get("/redoc").status_code == 404  # ReDoc needs a CDN: not served


def test_an_unavailable_database_gives_503_with_retry_after(edge_client: TestClient) -> None:
    edge_client.app.state.service.storage.drop_schema()  # type: ignore[attr-defined]  # the tables are gone
    response = edge_client.post("/users", json={"text": "space stories"})
    assert response.status_code == 503 and response.json()["error"] == "unavailable"
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--db", "nonsense://x"], {}, "The database cannot be used"),
        (["--db", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"], {}, "The database cannot be used"),
        ([], {"PERSONAS_SERVE_MAX_N": "many"}, "PERSONAS_SERVE_MAX_N"),
    ],
    ids=["unknown-dialect", "unreachable-database", "bad-setting"],
)
def test_a_bad_setting_or_database_at_start_is_one_line(
    run_dir: Path, tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    command = [sys.executable, "-c", "from personas.cli import main; main()", "serve", "--model", str(run_dir)]
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PERSONAS_HOME": str(tmp_path), "COLUMNS": "400", **env},
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode != 0
    assert len(lines) == 1 and expected in lines[0] and "secret" not in lines[0], lines[:5]


def test_the_h11_fallback_has_the_same_deadline_and_header_limit(run_dir: Path, tmp_path: Path) -> None:
    """Without httptools, uvicorn's h11 protocol gets the request deadline, and h11 itself limits the headers."""
    import uvicorn

    from personas.api.edge import _deadline_h11, uvicorn_options
    from personas.api.testing import free_port

    settings = ServeSettings(model_dir=run_dir, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", request_timeout=1.0)
    options = {**uvicorn_options(settings), "http": _deadline_h11(settings)}
    port = free_port()
    config = uvicorn.Config(create_app(settings), port=port, log_level="warning", access_log=False, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            started = time.monotonic()
            assert sock.recv(1024) == b""  # closed by the deadline, not by the 10 s socket timeout
            assert time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
            response = _read_response(sock)
            assert (
                response.startswith(b"HTTP/1.1 400") and f"limited to {settings.max_header_bytes}".encode() in response
            )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # a normal request still works
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_connections_over_the_cap_get_503(run_dir: Path, tmp_path: Path) -> None:
    from personas.api.testing import ServerThread

    settings = ServeSettings(model_dir=run_dir, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", max_connections=2)
    with ServerThread(create_app(settings)) as server:
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
        try:
            time.sleep(0.2)  # both accepted
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert _read_response(sock).startswith(b"HTTP/1.1 503")
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:  # room again
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")


def test_host_and_origin_lists_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, run_dir: Path) -> None:
    monkeypatch.setenv("PERSONAS_SERVE_ALLOWED_HOSTS", "api.example.com, *.example.org")
    monkeypatch.setenv("PERSONAS_SERVE_CORS_ORIGINS", '["https://app.example.com"]')
    settings = ServeSettings(model_dir=run_dir)
    assert settings.resolved_allowed_hosts() == ["api.example.com", "*.example.org"]
    assert settings.cors_origins == ["https://app.example.com"]
