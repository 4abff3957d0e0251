"""raqib as users install it: a wheel (pip, pipx) that carries its migrations and templates and
runs from any directory, and commands that read a database never creating an empty one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, Mailbox, write

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("RAQIB_CONFIG", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env(),
                          timeout=timeout, check=False)


def test_every_package_is_listed_in_pyproject() -> None:
    """The packages are named in pyproject.toml (migrations/ is mapped into worker/, which
    discovery cannot do): a folder added under worker/ or migrations/ must be named too, or
    the wheel would ship without it."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {"worker", "worker.migrations"}
    for top, name in ((ROOT / "worker", "worker"), (ROOT / "migrations", "worker.migrations")):
        for folder in top.rglob("*"):
            if folder.is_dir() and "__pycache__" not in folder.parts and \
                    not any(p.startswith(".") for p in folder.relative_to(top).parts):
                on_disk.add(".".join([name, *folder.relative_to(top).parts]))
    assert on_disk == listed, "name every package in [tool.setuptools] packages"
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"worker.migrations": "migrations"}


# -- reading commands never create a database --------------------------------------------------


def desk(folder: Path, **extra: object) -> Path:
    """A desk's working folder: the shipped rules, entities and seeds, and a configuration
    whose database is the default relative path ``var/raqib.db``."""
    for part in ("config/rules", "config/entities", "seeds"):
        shutil.copytree(ROOT / part, folder / part)
    cfg = yaml.safe_load((ROOT / "config/raqib.yaml").read_text(encoding="utf-8"))
    cfg.update(extra)
    write(folder / "config/raqib.yaml", yaml.safe_dump(cfg, allow_unicode=True))
    return folder / "config/raqib.yaml"


def test_listings_say_there_is_no_database_and_make_none(tmp_path: Path) -> None:
    config_path = desk(tmp_path / "desk")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    raqib = [sys.executable, "-m", "worker", "--config", str(config_path)]
    for args in (["alerts"], ["articles", "--json"], ["backtest", str(ROOT / "config/rules")]):
        proc = run([*raqib, *args], cwd=elsewhere)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert f"no database at {elsewhere / 'var/raqib.db'}" in proc.stderr
        assert "raqib db upgrade" in proc.stderr
        assert proc.stdout == ""
    assert list(elsewhere.iterdir()) == []          # no var/, no raqib.db
    assert run([*raqib, "db", "upgrade"], cwd=elsewhere).returncode == 0
    assert (elsewhere / "var/raqib.db").is_file()  # db upgrade makes it, where it was told
    listed = run([*raqib, "alerts", "--json"], cwd=elsewhere)
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])


# -- the wheel ---------------------------------------------------------------------------------


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of this checkout, built offline from a copy of it (the checkout gets no
    build/ or egg-info from a test) with the setuptools of the running environment."""
    src = tmp_path / "src"
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("worker", "migrations"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--no-index", "--quiet", "-w", str(tmp_path / "dist"), str(src)], cwd=tmp_path,
               timeout=180)
    assert proc.returncode == 0, proc.stderr
    [wheel] = (tmp_path / "dist").glob("raqib-*.whl")
    return wheel


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A new virtualenv outside the checkout with the wheel installed (no dependencies from
    the network: those of the running environment are put on its path, after its own
    site-packages, and without running their .pth files, so the checkout's editable install
    is not among them)."""
    venv = tmp_path / "venv"
    proc = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin/python"
    proc = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                "--no-deps", "--no-index", str(wheel)], cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                     "['purelib'])"], cwd=tmp_path).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_raqib_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


@pytest.mark.wheel
@pytest.mark.timeout(300)
def test_the_wheel_carries_everything_and_runs_from_any_directory(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"worker/migrations/{p.relative_to(ROOT / 'migrations')}"
               for p in (ROOT / "migrations").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped <= names
    assert {"worker/migrations/env.py", "worker/migrations/script.py.mako",
            "worker/alerts/templates/subject.txt.j2", "worker/alerts/templates/email.txt.j2",
            "worker/alerts/templates/email.html.j2"} <= names
    assert not any(n.startswith(("migrations/", "tests/", "config/")) for n in names)

    venv = fresh_venv(tmp_path, wheel)
    raqib = str(venv / "bin/raqib")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run([str(venv / "bin/python"), "-c", "import worker, worker.db.engine as e; "
                 "print(worker.__file__); print(e.MIGRATIONS)"], cwd=elsewhere)
    module, migrations = where.stdout.split()
    assert Path(module).is_relative_to(venv) and Path(migrations).is_relative_to(venv)
    assert not Path(module).is_relative_to(ROOT)

    box = Mailbox().start()
    try:
        folder = tmp_path / "desk"
        desk(folder, channels={
            "local-log": {"type": "file", "path": "var/alerts.jsonl"},
            "mail": {"type": "email", "host": "127.0.0.1", "port": box.port, "security": "none",
                     "from": "raqib@desk.example", "to": ["analyst@desk.example"]}},
             defaults={"notify": ["local-log", "mail"]})
        upgrade = run([raqib, "db", "upgrade"], cwd=folder)
        assert upgrade.returncode == 0, upgrade.stderr
        assert (folder / "var/raqib.db").is_file()
        once = run([raqib, "once"], cwd=folder)
        assert once.returncode == 0, once.stderr
        assert "alerts 0" not in once.stdout
        alerts = json.loads(run([raqib, "alerts", "--json"], cwd=folder).stdout)
        assert alerts and all(a["schema"] == "raqib.alert/1" for a in alerts)
        assert len(box.messages) == len(alerts)     # rendered from the wheel's templates
        assert all(m["Subject"].startswith("[raqib] ") and m.get_body(("html",))
                   for m in box.messages)
    finally:
        box.stop()

    # From another directory: the same absolute configuration, a relative database path.
    listed = run([raqib, "--config", str(folder / "config/raqib.yaml"), "alerts"], cwd=elsewhere)
    assert listed.returncode == 1 and "no database at" in listed.stderr
    assert list(elsewhere.iterdir()) == []
    moved = desk(tmp_path / "desk2", database=f"sqlite:///{folder / 'var/raqib.db'}")
    listed = run([raqib, "--config", str(moved), "alerts", "--json"], cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == alerts
