"""The shape of the code: the composition root, the daemon in-process (warm and cold stops),
the layering of imports, and constants that must never drift."""

from __future__ import annotations

import ast
import hashlib
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from worker import config, minhash_constants, stories
from worker.app import build_app
from worker.daemon import Daemon
from worker.domain import Article

from conftest import ASAD_RULES, ROOT, Response, Server, wait_for, write

WORKER = ROOT / "worker"


# -- layering --------------------------------------------------------------------------------


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Our modules that *path* imports at run time (imports under ``if TYPE_CHECKING:`` are
    for the type checker only and left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("worker"))
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("worker"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in WORKER.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# (who, what it must not import): the layering README "Contributing" states.
FORBIDDEN = [
    ("worker.domain", ("worker",), ("worker.domain", "worker.htmltext")),
    ("worker.units", ("worker",), ("worker.units", "worker.errors")),
    ("worker.db", ("worker.alerts", "worker.rules", "worker.config", "worker.pipeline",
                   "worker.ingestor", "worker.daemon", "worker.cli", "worker.app"), ()),
    ("worker.rules", ("worker.config", "worker.db", "worker.alerts", "worker.pipeline"), ()),
    ("worker.alerts.policy", ("worker",), ("worker.alerts.policy", "worker.domain")),
    ("worker.alerts.ledger", ("worker",), ("worker.alerts.ledger", "worker.domain")),
    ("worker.alerts.raising", ("worker",), ("worker.alerts", "worker.domain")),
]


@pytest.mark.parametrize(("who", "banned", "allowed"), FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_layering(who: str, banned: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    graph = _graph()
    bad = sorted(f"{mod} imports {imp}" for mod, imps in graph.items() if _under(mod, who)
                 for imp in imps if _under(imp, *banned) and not _under(imp, *allowed))
    assert bad == []


def test_only_the_edge_sees_the_composition_root() -> None:
    users = sorted(mod for mod, imps in _graph().items()
                   if any(_under(i, "worker.app", "worker.daemon", "worker.cli") for i in imps))
    assert set(users) <= {"worker.cli", "worker.__main__", "worker.daemon", "worker.app"}


# -- constants -------------------------------------------------------------------------------


def test_minhash_constants_and_a_signature_never_change() -> None:
    """Stored signatures are compared with new ones across workers and releases: the
    permutations and the signature of a known text are golden values."""
    tables = hashlib.sha256(repr((minhash_constants.A, minhash_constants.B)).encode())
    assert tables.hexdigest() == \
        "c604f3086d1584d319bd360d3faeb2f67a20bcc7356ce88ef01faadfaa7acb18"
    assert all(a % 2 == 1 for a in minhash_constants.A)
    sig = stories.signature(Article(
        source="x", title="قصف قاعدة عين الأسد الجوية",
        body="Drones struck the Ain al-Asad air base in Anbar overnight, officials said."))
    assert list(map(int, sig.values[:4])) == [233622, 450542667, 167760253, 552041559]
    assert sig.tokens == 18 and sig.bands()[:2] == [3835442656, 5781077087]
    assert hashlib.sha256(sig.to_bytes()).hexdigest() == \
        "cfad9fd50d826d9e7268eef06869eff108fad84361da61cedac0344e86027f55"


# -- the daemon in-process -------------------------------------------------------------------


def _config(tmp_path: Path, feed_url: str) -> config.Config:
    rules = write(tmp_path / "rules.yaml", ASAD_RULES)
    write(tmp_path / "seeds" / "asad.txt", "Drones over Ain al-Asad\nA lede\n-\nThe body.\n")
    path = write(tmp_path / "raqib.yaml", f"""\
database: sqlite:///{tmp_path / 'raqib.db'}
seeds: [{tmp_path / 'seeds'}]
rules: [{rules}]
sources:
  - {{name: slow, url: '{feed_url}', timeout: 30s}}
channels:
  out: {{type: file, path: {tmp_path / 'alerts.jsonl'}}}
defaults: {{notify: [out]}}
http: {{listen: '127.0.0.1:0'}}
""")
    return config.load_config(str(path))


def test_daemon_runs_in_process_and_stops_warm(tmp_path: Path, http_server: Server) -> None:
    http_server.routes["/feed.xml"] = Response(200, b"<rss><channel></channel></rss>")
    app = build_app(_config(tmp_path, http_server.url("/feed.xml")))
    daemon = Daemon(app.pipeline, web=False, watch=False)
    handlers = {s: __import__("signal").getsignal(s) for s in (2, 15)}
    daemon.start()
    try:
        assert wait_for((tmp_path / "alerts.jsonl").exists)
        assert daemon.health() == (True, "running")
    finally:
        assert daemon.stop() is True
    assert {s: __import__("signal").getsignal(s) for s in (2, 15)} == handlers
    assert daemon.health()[0] is False
    app.close()


def test_a_cold_stop_does_not_wait_for_a_stuck_poll(tmp_path: Path,
                                                    http_server: Server) -> None:
    entered = threading.Event()

    def trickle(_handler: object) -> Response:
        entered.set()
        return Response(200, b"<rss>" + b" " * 200, trickle=0.1)   # 20 s of body

    http_server.routes["/feed.xml"] = trickle
    app = build_app(_config(tmp_path, http_server.url("/feed.xml")))
    daemon = Daemon(app.pipeline, web=False, watch=False, grace=timedelta(seconds=30))
    daemon.start()
    assert entered.wait(30)
    started = time.monotonic()
    assert daemon.stop(cold=True) is False           # the poll was still running
    assert time.monotonic() - started < 15           # and the stop did not wait for it
    app.close()
