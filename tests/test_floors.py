"""Dependency floors that hold at run time. pyproject.toml allows each dependency from a floor
up; the floor must be a version the code works with, not only one it imports. `.ci/floors`
installs every floor and runs the suite on them; these tests keep the declarations honest in
every run: what is installed satisfies them, what the code imports is declared, and the floors
of the APIs we know were added late are at least the version that added them."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def floor(name: str) -> Version:
    [req] = [r for r in RUNTIME if canonical(r.name) == canonical(name)]
    [low] = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return low


# What the code needs, and the first release that has it. A floor below these fails at run time.
NEEDS = {
    # worker/decode.py inflates brotli a slice at a time. brotli's CHANGELOG, 1.2.0 (2025-10-27):
    # "python: added Decompressor::can_accept_more_data method and optional
    # output_buffer_limit argument Decompressor::process". On 1.1 every brotli body fails.
    "brotli": "1.2",
    # psycopg 3.2.0's metadata pins its [binary] extra to psycopg-binary==3.2.0.dev1, which was
    # never published: `psycopg[binary]==3.2.0` cannot be installed.
    "psycopg": "3.2.1",
    # lxml 5.2 moved lxml.html.clean (which jusText, under trafilatura, imports) out into
    # lxml_html_clean; jusText asks for it as lxml[html_clean], an extra older pips do not match
    # to lxml's "html-clean" and skip. Declared directly, any release serves.
    "lxml_html_clean": "0.1",
    # APScheduler 3.10.1 and older import pkg_resources, which setuptools no longer ships: the
    # daemon would not start in a fresh virtualenv (pipx).
    "APScheduler": "3.10.2",
    # feedparser 6.0.11 raises AssertionError from sgmllib on some HTML content (its own test
    # suite, tests/test_feedparser_suite.py, fails on it).
    "feedparser": "6.0.12",
    # Alerts raised in one pass share a time; their ULIDs (worker.alerts.raising.ulid_at) must
    # still sort in the order they were raised, which python-ulid does from 3.2 (monotonic).
    "python-ulid": "3.2",
    # The file watcher runs in a daemon thread that the daemon does not join (worker/watch.py):
    # killed at exit inside watchfiles' Rust code, watchfiles before 1.3 aborts the process
    # ("FATAL: exception not rethrown", exit -6) after a clean stop, often (0.21: every time).
    "watchfiles": "1.3",
}


def test_every_runtime_dependency_has_a_floor() -> None:
    for req in RUNTIME:
        assert any(s.operator == ">=" for s in req.specifier), f"{req}: give it a floor (>=)"


@pytest.mark.parametrize("req", RUNTIME, ids=lambda r: r.name)
def test_installed_versions_satisfy_the_declared_range(req: Requirement) -> None:
    installed = metadata.version(req.name)
    assert req.specifier.contains(installed, prereleases=True), \
        f"{req.name} {installed} is installed but pyproject.toml asks for {req}"


@pytest.mark.parametrize(("name", "needed"), NEEDS.items())
def test_floors_are_at_least_what_the_code_needs(name: str, needed: str) -> None:
    assert floor(name) >= Version(needed)


def test_the_brotli_api_the_decoder_uses_exists() -> None:
    import brotli  # noqa: PLC0415

    from worker.decode import decoded  # noqa: PLC0415

    d = brotli.Decompressor()
    assert d.process(b"", output_buffer_limit=1) == b""
    assert d.can_accept_more_data()
    body = brotli.compress("عين الأسد ".encode() * 1000)
    assert b"".join(decoded([body[:7], body[7:]], "br")) == "عين الأسد ".encode() * 1000


def test_a_large_brotli_body_decodes_whole() -> None:
    """brotli 1.2.1's can_accept_more_data() says True while output is still pending (1.2.0's
    does not): the decoder asks until a call gives nothing, on either."""
    import brotli  # noqa: PLC0415

    from worker.decode import SLICE, decoded  # noqa: PLC0415

    bomb = brotli.compress(b"\0" * (8 * SLICE))
    pieces = list(decoded([bomb], "br"))
    assert b"".join(pieces) == b"\0" * (8 * SLICE)
    assert len(pieces) > 1                 # inflated a slice at a time, not all at once


def test_alert_ids_raised_at_one_time_sort_in_order() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    from worker.alerts.raising import ulid_at  # noqa: PLC0415

    now = datetime.now(UTC)
    ids = [ulid_at(now) for _ in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50


def test_the_scheduler_imports_without_pkg_resources() -> None:
    import apscheduler  # noqa: PLC0415

    assert "pkg_resources" not in (Path(apscheduler.__file__).read_text(encoding="utf-8"))


def test_a_process_that_stops_its_file_watcher_exits_cleanly(tmp_path: Path) -> None:
    """What `raqib run` does on SIGTERM, reduced: the watcher stopped, the interpreter exits."""
    import subprocess  # noqa: PLC0415

    script = ("import time\nfrom worker.watch import Watcher\n"
              f"w = Watcher(lambda: [{str(tmp_path)!r}], lambda changes: None)\n"
              "w.start()\ntime.sleep(0.3)\nw.stop()\n")
    for _ in range(5):
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=60, check=False, cwd=ROOT)
        assert (proc.returncode, proc.stderr) == (0, "")


def test_full_text_extraction_has_what_it_imports() -> None:
    """trafilatura → jusText → lxml.html.clean → lxml_html_clean: the full_text path works."""
    import lxml.html.clean  # noqa: F401, PLC0415

    from worker.parse import main_text  # noqa: PLC0415

    page = ("<html><head><title>t</title></head><body><nav>menu</nav><article><h1>عنوان</h1>"
            + "<p>" + "سقطت صواريخ على قاعدة عين الأسد الجوية فجر اليوم. " * 12 + "</p>"
            + "<p>" + "The coalition confirmed the attack on the base this morning. " * 8
            + "</p></article></body></html>").encode()
    text = main_text(page, "https://example.org/a")
    assert text and "عين الأسد" in text


def imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "worker").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return {n for n in names if n != "worker" and n not in sys.stdlib_module_names
            and not n.startswith("_")}


def test_what_the_code_imports_is_declared() -> None:
    """A package imported by worker/ but installed only because something else pulls it in
    (MarkupSafe came with Jinja2) has no floor of ours: declare it."""
    declared = {canonical(r.name) for r in RUNTIME}
    distributions = metadata.packages_distributions()
    missing = {}
    for module in sorted(imported_top_levels()):
        dists = {canonical(d) for d in distributions.get(module, [])}
        assert dists, f"worker imports {module!r}, which no installed distribution provides"
        if not dists & declared:
            missing[module] = sorted(dists)
    assert missing == {}, "declare these in [project] dependencies"
