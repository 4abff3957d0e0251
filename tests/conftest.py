"""Shared fixtures: real SQLite files, the local PostgreSQL, a real HTTP server on 127.0.0.1,
a controllable clock, and a project folder laid out like a checkout."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PG_DSN = os.environ.get("RAQIB_TEST_PG_DSN", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("RAQIB_REQUIRE_PG") == "1"


# -- clock -----------------------------------------------------------------------------------


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 28, 21, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


# -- HTTP ------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0     # seconds between bytes: a slow peer (the body is sent byte by byte)
    stream: Callable[[], Iterator[bytes]] | None = None   # a chunked body, possibly endless


Route = Response | Callable[[BaseHTTPRequestHandler], Response]


@dataclass
class Server:
    """A real HTTP server on 127.0.0.1; tests set routes and read the requests it got."""

    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


@pytest.fixture
def http_server() -> Iterator[Server]:
    server_state = Server(base="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True   # headers and body go out as separate writes

        def do_GET(self) -> None:
            state = server_state
            with state.lock:
                state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                state.in_flight += 1
                state.most_in_flight = max(state.most_in_flight, state.in_flight)
            try:
                self._answer()
            finally:
                with state.lock:
                    state.in_flight -= 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.body = body
            with server_state.lock:
                server_state.posts.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self._answer()

        def _answer(self) -> None:
            route = server_state.routes.get(self.path)
            resp = Response(404, b"not found") if route is None else (
                route(self) if callable(route) else route)
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            if resp.stream is not None:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in resp.stream():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass   # the client stopped reading, as it should
                return
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if not resp.trickle:
                with contextlib.suppress(OSError):   # the client may stop reading, as it should
                    self.wfile.write(resp.body)
                return
            for i in range(len(resp.body)):
                try:
                    self.wfile.write(resp.body[i:i + 1])
                    self.wfile.flush()
                except OSError:
                    return   # the client gave up, as it should
                time.sleep(resp.trickle)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state
    httpd.shutdown()
    httpd.server_close()


# -- databases -------------------------------------------------------------------------------


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_DSN)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


@pytest.fixture(scope="session")
def pg_base() -> str:
    reason = _pg_available()
    if reason is not None:
        message = f"PostgreSQL not reachable at {PG_DSN}: {reason}"
        if REQUIRE_PG:
            pytest.fail(message + " (RAQIB_REQUIRE_PG=1)")
        pytest.skip(message)
    return PG_DSN


@pytest.fixture
def pg_url(pg_base: str) -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_base)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_base else "?"
    yield f"{pg_base}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'raqib.db'}"
    return str(request.getfixturevalue("pg_url"))


# -- a project folder ------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the shipped rules, entities and seeds, as the cwd."""
    for part in ("config/rules", "config/entities", "seeds"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "config/raqib.yaml", tmp_path / "config/raqib.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAQIB_CONFIG", raising=False)
    return tmp_path


# One entity and one rule on it: what many tests match against.
ASAD_RULES = """\
entities:
  ain-al-asad: {names: ["Ain al-Asad", "عين الأسد"]}
rules:
  - id: asad
    title: Ain al-Asad
    severity: high
    match: "@ain-al-asad"
"""


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> bool:
    """Poll *predicate* until it holds or *timeout* passes: for waiting on another process,
    never for measuring time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


# -- SMTP ------------------------------------------------------------------------------------


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller  # noqa: PLC0415

        self.messages: list[Any] = []
        self.port = port or free_port()
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                from email import message_from_bytes, policy  # noqa: PLC0415

                mailbox.messages.append(message_from_bytes(envelope.content,
                                                           policy=policy.default))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox().start()
    yield box
    box.stop()
