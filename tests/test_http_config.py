"""The daemon's endpoint and what `check` catches before `run` would: a listen address that is
no address, a dashboard open to the network without a token, an empty configuration, a seed
folder that is not there; and the token asked of every request but /healthz."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from worker import config
from worker.db import Database
from worker.errors import ConfigError
from worker.web import WebServer

from conftest import write

TOKEN = "s3cret-token-of-the-desk"


def load(tmp: Path, data: object) -> config.Config:
    path = write(tmp / "raqib.yaml", data if isinstance(data, str) else yaml.safe_dump(data))
    return config.load_config(str(path), env={"RAQIB_HTTP_TOKEN": TOKEN})


@pytest.mark.parametrize(("http", "message"), [
    ({"listen": "nonsense"}, "listen is HOST:PORT"),
    ({"listen": "127.0.0.1:99999"}, "listen is HOST:PORT"),
    ({"listen": "bad host!:8780"}, "is not a host name or address"),
    ({"listen": "0.0.0.0:8780"}, "http.token is required when listen (0.0.0.0:8780)"),
    ({"listen": "desk.example.org:8780"}, "http.token is required"),
    ({"listen": "0.0.0.0:8780", "token": "short"}, "at least 16 characters"),
])
def test_bad_http_settings_name_the_line(tmp_path: Path, http: dict[str, str],
                                         message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, {"sources": [], "http": http})
    text = "\n".join(str(p) for p in err.value.problems)
    assert f"{tmp_path / 'raqib.yaml'}:" in text and message in text


@pytest.mark.parametrize("listen", ["127.0.0.1:8780", "localhost:0", "[::1]:8780"])
def test_loopback_needs_no_token(tmp_path: Path, listen: str) -> None:
    assert load(tmp_path, {"http": {"listen": listen}}).main.http.token is None


def test_beyond_loopback_with_a_token(tmp_path: Path) -> None:
    cfg = load(tmp_path, "http:\n  listen: 0.0.0.0:8780\n  token: ${RAQIB_HTTP_TOKEN}\n")
    assert cfg.main.http.token == TOKEN


def test_an_empty_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "")
    assert "the configuration file is empty" in str(err.value.problems[0])


def test_a_missing_seed_folder_is_a_warning(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"seeds": [str(tmp_path / "no-such-folder")]})
    assert any("does not exist" in str(w) for w in cfg.warnings)


def get(url: str, auth: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_token_guards_everything_but_healthz(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    db.migrate()
    web = WebServer("127.0.0.1:0", health=lambda: (True, "ok"), metrics=lambda: b"",
                    store=db, token=TOKEN)
    web.start()
    base = f"http://127.0.0.1:{web.httpd.server_address[1]}"
    basic = "Basic " + base64.b64encode(f"desk:{TOKEN}".encode()).decode()
    try:
        assert get(base + "/healthz") == 200
        assert get(base + "/") == 401
        assert get(base + "/metrics") == 401
        assert get(base + "/", "Bearer wrong-token-wrong-token") == 401
        assert get(base + "/", "Basic !!!") == 401
        assert get(base + "/", f"Bearer {TOKEN}") == 200
        assert get(base + "/metrics", basic) == 200
    finally:
        web.stop()
        db.close()
