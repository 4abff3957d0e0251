"""Rendering alerts for people: email subject, plain text and HTML from Jinja2 templates, and
the shapes chat tools expect (Slack, Discord, Teams).

Every piece of article and source text is escaped (autoescape is on for HTML); snippets in
Arabic, Persian, Kurdish or Urdu are set right-to-left and the matched words highlighted. A
channel can point ``templates:`` at a folder holding its own ``subject.txt.j2``,
``email.txt.j2`` or ``email.html.j2``; what it does not hold comes from raqib's own.

Alerts come in five kinds (``match``, ``window``, ``spike``, ``first_seen``, ``quiet``). What a
kind adds to the article is said once, in plain text, by `headline` and `summary_lines`; email,
the chat presets and digests all show those. A ``quiet`` alert is about a source: it has no
article, no story and no matches."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

from jinja2 import (
    ChainableUndefined,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    select_autoescape,
)
from markupsafe import Markup, escape

RTL_LANGUAGES = {"ar", "fa", "ur", "ckb", "ps", "he", "yi", "sd", "ug"}
_RTL_LETTERS = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_LTR_LETTERS = re.compile(r"[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]")
SEVERITY_COLOURS = {"low": "#5f6368", "medium": "#1a73e8", "high": "#e37400",
                    "critical": "#d93025"}
_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def direction(text: str) -> str:
    """"rtl" when right-to-left letters outnumber left-to-right ones."""
    return "rtl" if len(_RTL_LETTERS.findall(text)) > len(_LTR_LETTERS.findall(text)) else "ltr"


def highlight(snippet: str, matched: str) -> Markup:
    """The snippet escaped, with the matched words wrapped in <mark>."""
    if not matched or matched not in snippet:
        return escape(snippet)
    before, _, after = snippet.partition(matched)
    return Markup("{}<mark style=\"background: #fde293;\">{}</mark>{}").format(
        escape(before), escape(matched), escape(after))


def duration(seconds: float) -> str:
    """A span for people: the largest unit that says it in at most one decimal (3600: "1 h",
    90: "1.5 min", 100: "100 s", 604800: "7 d", 129600: "1.5 d", 90000: "25 h")."""
    for unit, size in _UNITS:
        tenths = seconds * 10 / size
        if seconds >= size and abs(tenths - round(tenths)) < 1e-9:
            return f"{number(round(tenths) / 10)} {unit}"
    return f"{number(seconds)} s"


def number(value: float) -> str:
    """A count or rate for people: whole numbers bare (4.0: "4"), others to one decimal
    (2.45: "2.5") or, below 1, one significant digit (0.42: "0.4", 0.006: "0.006")."""
    if value == int(value):
        return str(int(value))
    if abs(value) >= 1:
        return f"{value:.1f}".removesuffix(".0")
    small = f"{value:.1g}"
    return "0" if "e" in small else small


def _clean(text: Any) -> str:
    """Stored text as shown: character references decoded, whitespace collapsed."""
    return " ".join(unescape(str(text or "")).split())


def kind_of(payload: dict[str, Any]) -> str:
    """The alert's kind; payloads stored before kinds existed are ``window`` or ``match``."""
    return str(payload.get("kind") or ("window" if payload.get("window") else "match"))


def is_resolved(payload: dict[str, Any]) -> bool:
    """Whether the payload is a notice that a quiet spell ended."""
    return kind_of(payload) == "quiet" and bool(payload.get("resolved"))


def plain_title(payload: dict[str, Any]) -> str:
    """The title to show: character references decoded (an HTML title stores ``Q&amp;A``),
    anything that looks like a tag kept as text, to be escaped where it is shown. An alert
    with no article (``quiet``) is titled by its `headline`."""
    article = payload.get("article")
    if not article:
        return headline(payload)
    return _clean(article.get("title")) or _clean(article.get("url")) or "(untitled)"


def source_name(payload: dict[str, Any]) -> str:
    """The source the alert is about: the article's, or a quiet alert's."""
    article = payload.get("article")
    if article:
        return str(article.get("source") or "")
    return str((payload.get("source") or {}).get("name") or "")


def first_article(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The article that ended a quiet spell (a resolved notice), if it is known."""
    if not is_resolved(payload):
        return None
    article = (payload.get("quiet") or {}).get("article")
    return article if isinstance(article, dict) else None


def link(payload: dict[str, Any]) -> str | None:
    """Where the alert points: the article; for a quiet alert the source, or the article that
    ended its spell."""
    article = payload.get("article") or first_article(payload)
    if article and article.get("url"):
        return str(article["url"])
    if kind_of(payload) == "quiet":
        return (payload.get("source") or {}).get("url") or None
    return None


def _labels(new: list[dict[str, Any]]) -> str:
    return ", ".join(_clean(n.get("label") or n.get("key")) for n in new)


def _stories(count: Any) -> str:
    return f"{count} story" if count == 1 else f"{count} stories"


def headline(payload: dict[str, Any]) -> str:
    """One line saying what the alert is about, for subjects and chat notifications: the
    article's title (``match``, ``window``), led by what a spike or a first sighting is, or
    for a ``quiet`` alert what became of the source."""
    kind = kind_of(payload)
    if kind == "quiet":
        name = source_name(payload) or "a source"
        if is_resolved(payload):
            return f"{name} has news again"
        quiet = payload.get("quiet") or {}
        failing = ", every poll failing" if quiet.get("failing") else ""
        return f"{name}: no new article since {quiet.get('since') or '?'}{failing}"
    title = plain_title(payload)
    if kind == "spike":
        spike = payload.get("spike") or {}
        count = spike.get("count", payload.get("count"))
        return f"Spike, {_stories(count)} in {duration(spike.get('within_seconds') or 0)}: {title}"
    if kind == "first_seen":
        seen = payload.get("first_seen") or {}
        within = duration(seen.get("within_seconds") or 0)
        if seen.get("by") == "rule" or not seen.get("new"):
            return f"The rule's first story in {within}: {title}"
        return f"First time in {within} for {_labels(seen['new'])}: {title}"
    return title


def summary_lines(payload: dict[str, Any]) -> list[str]:
    """What the alert's kind adds to the article, as plain sentences: a spike's count against
    its baseline, what a first sighting found new, a quiet source's silence or its end.
    ``match`` and ``window`` alerts add none here (the email says a window's count itself)."""
    kind = kind_of(payload)
    if kind == "spike":
        spike = payload.get("spike") or {}
        within = duration(spike.get("within_seconds") or 0)
        count = spike.get("count", payload.get("count"))
        baseline = spike.get("baseline", payload.get("baseline")) or 0
        return [f"{_stories(count)} in {within}, against a baseline of {number(baseline)} per "
                f"{within} over {duration(spike.get('baseline_seconds') or 0)}; threshold "
                f"{number(spike.get('threshold') or 0)}."]
    if kind == "first_seen":
        seen = payload.get("first_seen") or {}
        within = duration(seen.get("within_seconds") or 0)
        new = seen.get("new") or []
        if seen.get("by") == "rule" or not new:
            return [f"The rule's first story in {within}."]
        noun = {"entity": ("entity", "entities"), "term": ("term", "terms")}.get(
            str(seen.get("by")), ("key", "keys"))[len(new) > 1]
        return [f"New {noun}: {_labels(new)} (first time in {within})."]
    if kind == "quiet":
        return _quiet_lines(payload)
    return []


def _quiet_lines(payload: dict[str, Any]) -> list[str]:
    quiet, source = payload.get("quiet") or {}, payload.get("source") or {}
    name, since = source_name(payload) or "The source", quiet.get("since") or "?"
    if is_resolved(payload):
        lines = [f"Resolved: {name} has news again since {quiet.get('resolved_at') or '?'}; "
                 f"it had stored no new article since {since}."]
        article = first_article(payload)
        if article:
            lines.append("First new article: "
                         f"{_clean(article.get('title')) or _clean(article.get('url')) or '?'}")
        return lines
    lines = [f"{name} has stored no new article since {since} "
             f"({duration(quiet.get('within_seconds') or 0)} of raqib running)."]
    if quiet.get("failing"):
        error = source.get("last_error")
        lines.append("Every poll since then failed" +
                     (f"; last error: {_clean(error)}" if error else "") + ".")
        if source.get("last_success"):
            lines.append(f"Last successful poll: {source['last_success']}.")
    elif source.get("last_success"):
        lines.append(f"Its polls succeed (last at {source['last_success']}) but bring "
                     "nothing new.")
    if not source.get("last_article"):
        lines.append("raqib has stored no article from it yet.")
    return lines


class Renderer:
    def __init__(self, templates: str | None = None) -> None:
        loaders: list[Any] = [PackageLoader("worker.alerts", "templates")]
        if templates:
            loaders.insert(0, FileSystemLoader(Path(templates)))
        # ChainableUndefined: a channel's own template written for article alerts shows
        # nothing, rather than failing, for ``alert.article.url`` on a quiet alert.
        self.env = Environment(loader=ChoiceLoader(loaders), keep_trailing_newline=True,
                               undefined=ChainableUndefined,
                               autoescape=select_autoescape(enabled_extensions=("html.j2",),
                                                            default_for_string=False))
        # Plain text (subject and text part): nothing is HTML there, so nothing to escape.
        self.text_env = Environment(loader=ChoiceLoader(loaders), autoescape=False,  # noqa: S701
                                    undefined=ChainableUndefined, keep_trailing_newline=True)

    def email(self, payload: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, plain text, HTML) for one alert payload."""
        title = plain_title(payload)
        context = {"alert": payload, "title": title, "headline": headline(payload),
                   "kind": kind_of(payload), "summary": summary_lines(payload),
                   "resolved": is_resolved(payload), "link": link(payload),
                   "first_article": first_article(payload)}
        subject = " ".join(self.text_env.get_template("subject.txt.j2").render(context).split())
        text = self.text_env.get_template("email.txt.j2").render(context)
        rtl = ((payload.get("article") or {}).get("language") or "") in RTL_LANGUAGES
        matches = [{"term": m["term"], "field": m["field"],
                    "dir": "rtl" if rtl else direction(m["snippet"]),
                    "snippet": highlight(m["snippet"], m["text"])}
                   for m in payload.get("matches") or []]
        html = self.env.get_template("email.html.j2").render(
            context | {"matches": matches, "title_dir": "rtl" if rtl else direction(title),
                       "colour": SEVERITY_COLOURS.get(payload["rule"]["severity"], "#1a73e8")})
        return subject, text, html


DIGEST_TEXT = """raqib digest: {{ digest.alerts }} alert(s) since {{ digest.since }}
{% for rule in digest.rules %}
{{ rule.title }} ({{ rule.severity }}): {{ rule.alerts }} alert(s)
{%- if rule.stories %}, {{ rule.stories }} story(ies){% endif %}
{% for item in rule["items"] -%}
{{ "  - " }}{% if item.resolved %}RESOLVED {% endif %}{{ item.title | unescape }} \
[{{ item.source }}] {{ item.url or "" }}
{% for line in item.summary %}{{ "    " }}{{ line }}
{% endfor %}{% if item.silenced_by %}{{ "    " }}(silenced by {{ item.silenced_by }})
{% endif %}{% endfor %}{% endfor %}"""

DIGEST_HTML = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="font-family: Arial, 'Noto Naskh Arabic', sans-serif;">
<h2>raqib digest: {{ digest.alerts }} alert(s)</h2>
{% for rule in digest.rules %}<h3>{{ rule.title }} <small>({{ rule.severity }}) ·
{{ rule.alerts }} alert(s){% if rule.stories %}, {{ rule.stories }} story(ies){% endif %}\
</small></h3><ul>
{% for item in rule["items"] %}<li dir="auto">\
{% if item.resolved %}<strong>RESOLVED</strong> {% endif %}\
{% if item.url %}<a href="{{ item.url }}">{% endif %}
{{ item.title }}{% if item.url %}</a>{% endif %} <small>{{ item.source }}</small>\
{% for line in item.summary %}<br><small dir="auto">{{ line }}</small>{% endfor %}\
{% if item.silenced_by %}<br><small>silenced by {{ item.silenced_by }}</small>{% endif %}</li>
{% endfor %}</ul>{% endfor %}</body></html>"""


def digest_email(digest: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a digest; article and source text escaped in the
    HTML."""
    env = Environment(autoescape=True)
    text_env = Environment(autoescape=False)  # noqa: S701 (plain text: nothing to escape)
    text_env.filters["unescape"] = lambda s: unescape(str(s or ""))
    subject = f"[raqib] digest: {digest['alerts']} alert(s) in {len(digest['rules'])} rule(s)"
    return (subject, text_env.from_string(DIGEST_TEXT).render(digest=digest),
            env.from_string(DIGEST_HTML).render(digest=digest))


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_body(payload: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The webhook body for *fmt*: the alert payload itself, or a Slack, Discord or Teams
    message. Each shows the alert's `headline` and `summary_lines`, and the matches."""
    if fmt == "generic":
        return payload
    rule = payload["rule"]
    title = plain_title(payload)
    lead = headline(payload)
    summary = "\n".join(summary_lines(payload))
    why = "\n".join(f"• {m['term']} ({m['field']}): {m['snippet']}"
                    for m in payload.get("matches") or [])
    if payload.get("held"):
        why += f"\n(+{payload['held']['count']} held back: " + "; ".join(
            payload["held"]["titles"]) + ")"
    rule_head = ("RESOLVED " if is_resolved(payload) else "") + \
        f"[{rule['severity']}] {rule['title']}"
    url = link(payload) or ""
    source = source_name(payload)
    if fmt == "slack":   # mrkdwn: &, < and > are control characters there
        rule_head, title, lead, why, summary, source = (
            _slack(rule_head), _slack(title), _slack(lead), _slack(why), _slack(summary),
            _slack(source))
        text = f"*{rule_head}*\n<{url}|{title}>" if url else f"*{rule_head}*\n{title}"
        context = f"{source} · {why}" if why or kind_of(payload) != "quiet" else source
        return {"text": f"{rule_head}: {lead}",
                "blocks": [{"type": "section", "text": {
                               "type": "mrkdwn", "text": (text + "\n" + summary if summary
                                                          else text)[:2900]}},
                           {"type": "context", "elements": [
                               {"type": "mrkdwn", "text": context[:2900]}]}]}
    if fmt == "discord":
        return {"content": rule_head[:2000],
                "embeds": [{"title": title[:256], "url": url or None,
                            "description": "\n".join(p for p in (summary, why) if p)[:4000],
                            "footer": {"text": f"{source} · alert {payload['id']}"}}]}
    # teams: an Office 365 connector MessageCard
    action = ("Open the source" if kind_of(payload) == "quiet" and not first_article(payload)
              else "Open the article")
    body = "\n\n".join(p for p in (summary.replace("\n", "\n\n"), why) if p)
    return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
            "summary": f"{rule_head}: {lead}"[:200], "title": rule_head,
            "text": f"**{title}**\n\n{body}",
            "potentialAction": [{"@type": "OpenUri", "name": action,
                                 "targets": [{"os": "default", "uri": url}]}] if url else []}
