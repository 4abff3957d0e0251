"""Configuration: the spec's examples load; every kind of mistake is reported as FILE:LINE."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from worker import config, units
from worker.errors import ConfigError

from conftest import DATA, write

ENV = {"SMTP_USER": "desk", "SMTP_PASSWORD": "hunter2", "WEBHOOK_SECRET": "whsec_c2VjcmV0"}


@pytest.fixture
def spec_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(DATA / "spec-config.yaml", tmp_path / "raqib.yaml")
    write(tmp_path / "rules/spec.yaml", (DATA / "spec-rules.yaml").read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems_of(path: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.load_config(path, env=ENV if env is None else env)
    return [str(p) for p in info.value.problems]


def test_spec_examples_load_as_written(spec_dir: Path) -> None:
    cfg = config.load_config("raqib.yaml", env=ENV)
    src = cfg.main.sources[0]
    assert (src.interval, src.timeout, src.max_bytes) == (timedelta(minutes=10),
                                                           timedelta(seconds=30), 10_000_000)
    email = cfg.main.channels["analysts-email"]
    assert isinstance(email, config.EmailChannel)
    assert (email.username, email.password, email.from_) == ("desk", "hunter2",
                                                             "raqib@example.org")
    assert [r.rule.id for r in cfg.ruleset.rules] == ["coalition-withdrawal", "named-bases",
                                                      "asad-surge"]
    surge = cfg.ruleset.by_id["asad-surge"].rule
    assert surge.when == config.When(count=3, within=timedelta(hours=6), distinct_sources=True)
    assert cfg.notify_of(cfg.ruleset.by_id["named-bases"].rule) == ["local-log"]
    # `rudaw` is no configured source: a warning, not an error.
    assert any("rudaw" in str(w) for w in cfg.warnings)


def test_secrets_stay_out_of_reprs(spec_dir: Path) -> None:
    cfg = config.load_config("raqib.yaml", env=ENV)
    assert "hunter2" not in repr(cfg.main)
    assert "whsec_" not in repr(cfg.main)


def test_misspelt_key_names_file_and_line(spec_dir: Path) -> None:
    text = (spec_dir / "raqib.yaml").read_text().replace("    interval: 10m", "    intervall: 10m")
    (spec_dir / "raqib.yaml").write_text(text)
    [problem] = problems_of("raqib.yaml")
    assert problem == "raqib.yaml:8: unknown key 'intervall' (did you mean 'interval'?)"


def test_every_problem_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", """\
rules: [rules/]
channels:
  log: {type: file, path: out.jsonl}
  mail: {type: email, host: h, from: a@b, to: [c@d], password: "${NOPE}"}
defaults:
  notify: [log, missing-channel]
sources:
  - {name: a, url: "ftp://x"}
  - {name: b, url: "http://x", interval: soon}
""")
    write(tmp_path / "rules/a.yaml", """\
entities:
  base: {names: [Base]}
rules:
  - id: one
    match: "@nobody"
  - id: one
    match: x
  - id: two
    match: {any: [x], nar: [y]}
    notify: [nowhere]
  - id: three
    match: "re:("
  - id: four
    sevrity: high
    match: x
""")
    found = problems_of("raqib.yaml", env={})
    assert "raqib.yaml:4: environment variable NOPE is not set" in found
    assert "raqib.yaml:6: unknown channel 'missing-channel'" in found
    assert "raqib.yaml:8: sources.0.url: url must start with http://, https:// or file://" in found
    assert any(p.startswith("raqib.yaml:9: sources.1.interval: not a duration") for p in found)
    assert "rules/a.yaml:5: unknown entity '@nobody'" in found
    assert "rules/a.yaml:6: duplicate rule id 'one' (first at rules/a.yaml:4)" in found
    assert any(p.startswith("rules/a.yaml:9: unknown expression key 'nar'") for p in found)
    assert "rules/a.yaml:10: unknown channel 'nowhere'" in found
    assert any(p.startswith("rules/a.yaml:12: term 're:(': bad regular expression") for p in found)
    assert "rules/a.yaml:14: unknown key 'sevrity' (did you mean 'severity'?)" in found


def test_duplicate_ids_across_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", "rules: [r/]\n")
    write(tmp_path / "r/1.yaml", "entities:\n  e: {names: [x]}\nrules:\n  - {id: a, match: x}\n")
    write(tmp_path / "r/2.yaml", "entities:\n  e: {names: [y]}\nrules:\n  - {id: a, match: y}\n")
    found = problems_of("raqib.yaml")
    assert "r/2.yaml:2: duplicate entity id 'e' (first in r/1.yaml:2)" in found
    assert "r/2.yaml:4: duplicate rule id 'a' (first at r/1.yaml:4)" in found


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("rules:\n  - id: a\n    match: [x, y]\n", "3: a list is not an expression"),
    ("rules:\n  - id: a\n    match: {near: [x], within: 3}\n", "3: 'near' needs at least two"),
    ("rules:\n  - id: a\n    match: {near: [x, y], within: -1}\n", "3: 'within' is a whole"),
    ("rules:\n  - id: a\n    match: {within: 3, any: [x]}\n", "3: 'within' needs 'near'"),
    ("rules:\n  - id: a\n    match: {at_least: 3, of: [x, y]}\n", "3: 'at_least' is a whole"),
    ("rules:\n  - id: a\n    match: {field: head, match: x}\n", "3: 'field' is one of"),
    ("rules:\n  - id: a\n    match: \"with*draw\"\n", "3: term 'with*draw': '*' may only end"),
    ("rules:\n  - id: a\n    match: \"«»\"\n", "3: term '«»' has no words"),
    ("rules:\n  - id: a\n    severity: urgent\n    match: x\n", "3: rules.0.severity: Input should be"),
    ("rules:\n  - id: a\n    match: x\n  bad: [\n", "4: invalid YAML"),
    ("rules:\n  - id: a\n    match: x\n    match: y\n", "4: duplicate key 'match'"),
    ("rules:\n  - id: a\n    match: x\n    languages: [ar, arabic]\n",
     "4: rules.0.languages.1: unknown language 'arabic' (did you mean 'ar'?): use a code"),
    ("rules:\n  - id: a\n    match: \"=with*\"\n", "3: term '=with*': an exact term"),
])
def test_rule_mistakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml_text: str,
                       message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", "rules: [r.yaml]\n")
    write(tmp_path / "r.yaml", yaml_text)
    found = problems_of("raqib.yaml")
    assert any(p.startswith("r.yaml:" + message) for p in found), found


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("6h", 21600),
                                               ("7d", 604800), ("1h30m", 5400), (45, 45)])
def test_durations(text: str | int, seconds: int) -> None:
    assert config.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize(("text", "size"), [("10MB", 10_000_000), ("512KiB", 524288),
                                            (2048, 2048), ("1 GB", 10**9)])
def test_sizes(text: str | int, size: int) -> None:
    assert config.parse_size(text) == size


def test_check_command_exit_codes(spec_dir: Path) -> None:
    env = {**ENV, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "worker", "check", "--config", "raqib.yaml"],
                        capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0, ok.stderr
    rules = spec_dir / "rules/spec.yaml"
    rules.write_text(rules.read_text().replace("    severity: high", "    severty: high"))
    bad = subprocess.run([sys.executable, "-m", "worker", "check", "--config", "raqib.yaml"],
                         capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 2
    assert "rules/spec.yaml:13: unknown key 'severty' (did you mean 'severity'?)" in bad.stderr
    assert "hunter2" not in bad.stderr + bad.stdout


def test_check_command_refuses_unknown_languages(spec_dir: Path) -> None:
    """`languages: [arabic, english]` used to pass `raqib check` and match nothing."""
    rules = spec_dir / "rules/spec.yaml"
    text = rules.read_text()
    assert "    languages: [ar, en]" in text
    rules.write_text(text.replace("    languages: [ar, en]", "    languages: [arabic, english]"))
    bad = subprocess.run([sys.executable, "-m", "worker", "check", "--config", "raqib.yaml"],
                         capture_output=True, text=True, env={**ENV, "PATH": "/usr/bin:/bin"},
                         check=False)
    assert bad.returncode == 2
    lines = bad.stderr.splitlines()
    assert any(line.startswith("rules/spec.yaml:25: rules.1.languages.0: unknown language "
                               "'arabic' (did you mean 'ar'?): use a code language detection "
                               "gives (ar, ckb, de, en, es, fa, fr, tr, ur)") for line in lines)
    assert any(line.startswith("rules/spec.yaml:25: rules.1.languages.1: unknown language "
                               "'english' (did you mean 'en'?)") for line in lines), lines


def test_shipped_rules_and_entities_load(project: Path) -> None:
    cfg = config.load_config("config/raqib.yaml", env={})
    assert len(cfg.ruleset) > 5
    assert not [w for w in cfg.warnings if "warning" not in w.message]


def test_channels_hold_typed_rates_and_digests(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", """\
channels:
  hook: {type: webhook, url: "https://h.example/x", rate: 30/min, digest: hourly}
  log: {type: file, path: out.jsonl, rate: 500 / hour, digest: "daily 08:05 Asia/Baghdad"}
  plain: {type: file, path: plain.jsonl}
""")
    channels = config.load_config("raqib.yaml", env={}).main.channels
    hook, log, plain = channels["hook"], channels["log"], channels["plain"]
    assert hook.rate == units.Rate(30, timedelta(minutes=1))
    assert hook.digest == units.DigestSchedule("hourly", 0, 0, "UTC")
    assert log.rate == units.Rate(500, timedelta(hours=1))
    assert log.digest == units.DigestSchedule("daily", 8, 5, "Asia/Baghdad")
    assert plain.rate is None and plain.digest is None
    assert hook.rate.seconds == 60.0 and str(log.digest.tzinfo) == "Asia/Baghdad"


@pytest.mark.parametrize(("setting", "message"), [
    ("rate: 30/fortnight", "channels.c.rate: not a rate: '30/fortnight'"),
    ("rate: 0/min", "channels.c.rate: not a rate: '0/min'"),
    ("digest: weekly", "channels.c.digest: not a digest schedule: 'weekly'"),
    ("digest: daily 25:00", "channels.c.digest: not a time of day: 25:00"),
    ("digest: daily 08:00 Mars/Olympus", "channels.c.digest: unknown time zone 'Mars/Olympus'"),
])
def test_bad_rates_and_digests_name_file_and_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  setting: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", f"channels:\n  c:\n    type: file\n    path: x\n"
                                   f"    {setting}\n")
    [problem] = problems_of("raqib.yaml")
    assert problem.startswith(f"raqib.yaml:5: {message}")


def test_the_rules_package_does_not_import_config() -> None:
    code = ("import sys, worker.rules, worker.rules.load, worker.units; "
            "print(sorted(m for m in sys.modules if m.startswith('worker')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "worker.config" not in out
    units = subprocess.run([sys.executable, "-c", "import sys, worker.units; print(sorted("
                            "m for m in sys.modules if m.startswith('worker.')))"],
                           capture_output=True, text=True, check=True).stdout
    assert units.strip() == "['worker.units']"


def test_config_keeps_the_rule_names_it_had() -> None:
    from worker.rules import load, model  # noqa: PLC0415

    assert config.Rule is model.Rule and config.When is model.When
    assert config.Entity is model.Entity and config.FIELDS is model.FIELDS
    assert config.load_rules is load.load_rules and config.LoadedRules is load.LoadedRules
    assert callable(config.paused_gc)


@pytest.mark.parametrize(("url", "message"), [
    ("http://[::1/feed", "not a valid URL"),
    ("http://host:99999/feed", "not a valid URL"),
    ("https:///feed", "an http(s) URL needs a host"),
    ("file://www/x.xml", "a file URL is file:///absolute/path"),
    ("ftp://example.org/feed", "url must start with"),
])
def test_source_urls_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str,
                                 message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", f"sources:\n  - name: s\n    url: '{url}'\n")
    [problem] = problems_of("raqib.yaml")
    assert problem.startswith("raqib.yaml:3: sources.0.url:") and message in problem


@pytest.mark.parametrize(("database", "ok"), [
    ("sqlite:///var/x.db", True), ("postgresql://u@127.0.0.1/db", True),
    ("postgresql+psycopg://u@127.0.0.1/db", True), ("foo://bar", False), ("var/x.db", False),
])
def test_database_urls_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   database: str, ok: bool) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", f"database: '{database}'\n")
    if ok:
        config.load_config("raqib.yaml", env={})
    else:
        assert problems_of("raqib.yaml")[0].startswith("raqib.yaml:1: database:")


def test_feed_and_seed_folder_cannot_share_a_name(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", "seeds: [seeds/]\nsources:\n"
                                   "  - {name: seeds, url: 'file:///tmp/x.xml'}\n")
    assert problems_of("raqib.yaml") == [
        "raqib.yaml:3: duplicate source name 'seeds' (also a seed folder)"]


def test_keys_are_names_not_yaml_booleans(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", "rules: [r.yaml]\n")
    write(tmp_path / "r.yaml", "entities:\n  no: {names: [Norway]}\n  on: {names: [Ontario]}\n"
                               "rules:\n  - {id: r, match: {any: ['@no', '@on']}}\n")
    cfg = config.load_config("raqib.yaml", env={})
    assert len(cfg.ruleset) == 1


def test_names_fit_their_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "raqib.yaml", f"sources:\n  - {{name: {'s' * 201}, url: 'file:///x'}}\n")
    assert "at most 200 characters" in problems_of("raqib.yaml")[0]
