"""OPML subscription lists: `raqib sources import FILE.opml` gives a sources: block the
configuration accepts (names, tags from folders and categories), `raqib sources export` writes
the configured sources back as OPML; what is not OPML is refused with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from worker import cli, config, opml

from conftest import write

# As feed readers export it (Miniflux, Feedly, NetNewsWire): folders of feeds, a category
# attribute, a feed outside any folder, a title in Arabic, one URL twice, one not a feed URL.
EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Desk subscriptions</title></head>
  <body>
    <outline text="Iraq" title="Iraq">
      <outline type="rss" text="Rudaw عربي" title="Rudaw عربي"
               xmlUrl="https://www.rudawarabia.net/rss" htmlUrl="https://www.rudawarabia.net/"/>
      <outline text="Kurdistan">
        <outline type="rss" text="Kurdistan24 English" xmlUrl="https://www.kurdistan24.net/en/rss"
                 category="/english,wire"/>
      </outline>
      <outline type="rss" text="Rudaw again" xmlUrl="https://www.rudawarabia.net/rss"/>
    </outline>
    <outline type="rss" text="Shafaq News" xmlUrl="https://shafaq.com/en/rss"/>
    <outline type="rss" text="Shafaq News" xmlUrl="https://shafaq.com/ar/rss"/>
    <outline type="rss" text="Broken" xmlUrl="javascript:alert(1)"/>
  </body>
</opml>
"""


def run(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(cfg), "--log-level", "error", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write(tmp_path / "raqib.yaml", yaml.safe_dump({
        "database": f"sqlite:///{tmp_path}/raqib.db",
        "sources": [{"name": "shafaq-news", "url": "https://shafaq.com/en/rss",
                     "tags": ["english"]}]}))


def test_import_gives_sources_the_configuration_accepts(tmp_path: Path, cfg: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    subs = write(tmp_path / "subs.opml", EXPORT)
    code, out, err = run(capsys, cfg, "sources", "import", str(subs))
    assert code == 0
    sources = yaml.safe_load(out)["sources"]
    assert sources == [
        {"name": "rudaw-عربي", "url": "https://www.rudawarabia.net/rss", "tags": ["iraq"]},
        {"name": "kurdistan24-english", "url": "https://www.kurdistan24.net/en/rss",
         "tags": ["iraq", "kurdistan", "english", "wire"]},
        # the configured shafaq-news is taken: its English URL is skipped, the Arabic one
        # gets another name
        {"name": "shafaq-news-2", "url": "https://shafaq.com/ar/rss"},
    ]
    assert f"{subs}:12: feed 'Rudaw again' skipped: https://www.rudawarabia.net/rss is " \
           "already a source" in err
    assert f"{subs}:14: feed 'Shafaq News' skipped" in err
    assert f"{subs}:16: feed 'Broken' skipped: url must start with" in err
    # pasted under sources:, they load
    data = yaml.safe_load(cfg.read_text())
    data["sources"] += sources
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True))
    loaded = config.load_config(str(cfg), env={})
    assert [s.name for s in loaded.main.sources][1:] == [s["name"] for s in sources]


def test_export_then_import_round_trips(tmp_path: Path, cfg: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(cfg.read_text())
    data["sources"].append({"name": "a&b <x>", "url": "https://x.example/rss?a=1&b=2",
                            "tags": ["arabic", "iraq"]})
    cfg.write_text(yaml.safe_dump(data))
    out_file = tmp_path / "out.opml"
    code, _, _ = run(capsys, cfg, "sources", "export", "--out", str(out_file))
    assert code == 0
    feeds, problems = opml.read(out_file.read_bytes(), str(out_file))
    assert problems == []
    assert [(f.title, f.url, f.tags) for f in feeds] == [
        ("shafaq-news", "https://shafaq.com/en/rss", ["english"]),
        ("a&b <x>", "https://x.example/rss?a=1&b=2", ["arabic", "iraq"])]


@pytest.mark.parametrize(("text", "message"), [
    ("<opml><body><outline", "invalid XML"),
    ("<rss version='2.0'><channel/></rss>", "the document is <rss>, not <opml>"),
    ("", "invalid XML"),
    # an entity-expansion bomb: expat refuses it
    ("<?xml version='1.0'?><!DOCTYPE o [<!ENTITY a 'aaaaaaaaaa'>"
     + "".join(f"<!ENTITY {c} '{('&' + p + ';') * 10}'>" for p, c in zip("abcdefg", "bcdefgh",
                                                                         strict=True))
     + "]><opml><body><outline text='&h;'/></body></opml>", "invalid XML"),
])
def test_what_is_not_opml_is_refused(tmp_path: Path, cfg: Path, text: str, message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path / "bad.opml", text)
    code, out, err = run(capsys, cfg, "sources", "import", str(bad))
    assert code == 2
    assert f"{bad}:" in err and message in err
    assert out == ""


def test_import_of_a_missing_file(tmp_path: Path, cfg: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, cfg, "sources", "import", str(tmp_path / "none.opml"))
    assert code == 2 and "cannot read" in err
