"""Rendering alerts for people: email subject, plain text and HTML from Jinja2 templates, and
the shapes chat tools expect (Slack, Discord, Teams).

Every piece of article text is escaped (autoescape is on for HTML); snippets in Arabic, Persian,
Kurdish or Urdu are set right-to-left and the matched words highlighted. A channel can point
``templates:`` at a folder holding its own ``subject.txt.j2``, ``email.txt.j2`` or
``email.html.j2``; what it does not hold comes from raqib's own."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape
from markupsafe import Markup, escape

RTL_LANGUAGES = {"ar", "fa", "ur", "ckb", "ps", "he", "yi", "sd", "ug"}
_RTL_LETTERS = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_LTR_LETTERS = re.compile(r"[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]")
SEVERITY_COLOURS = {"low": "#5f6368", "medium": "#1a73e8", "high": "#e37400",
                    "critical": "#d93025"}


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


def plain_title(payload: dict[str, Any]) -> str:
    """The title to show: character references decoded (an HTML title stores ``Q&amp;A``),
    anything that looks like a tag kept as text, to be escaped where it is shown."""
    title = unescape(str(payload["article"]["title"] or "")) or \
        str(payload["article"]["url"] or "(untitled)")
    return " ".join(title.split())


class Renderer:
    def __init__(self, templates: str | None = None) -> None:
        loaders: list[Any] = [PackageLoader("worker.alerts", "templates")]
        if templates:
            loaders.insert(0, FileSystemLoader(Path(templates)))
        self.env = Environment(loader=ChoiceLoader(loaders), keep_trailing_newline=True,
                               autoescape=select_autoescape(enabled_extensions=("html.j2",),
                                                            default_for_string=False))
        # Plain text (subject and text part): nothing is HTML there, so nothing to escape.
        self.text_env = Environment(loader=ChoiceLoader(loaders), autoescape=False,  # noqa: S701
                                    keep_trailing_newline=True)

    def email(self, payload: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, plain text, HTML) for one alert payload."""
        title = plain_title(payload)
        context = {"alert": payload, "title": title}
        subject = " ".join(self.text_env.get_template("subject.txt.j2").render(context).split())
        text = self.text_env.get_template("email.txt.j2").render(context)
        rtl = (payload["article"]["language"] or "") in RTL_LANGUAGES
        matches = [{"term": m["term"], "field": m["field"],
                    "dir": "rtl" if rtl else direction(m["snippet"]),
                    "snippet": highlight(m["snippet"], m["text"])} for m in payload["matches"]]
        html = self.env.get_template("email.html.j2").render(
            context | {"matches": matches, "title_dir": "rtl" if rtl else direction(title),
                       "colour": SEVERITY_COLOURS.get(payload["rule"]["severity"], "#1a73e8")})
        return subject, text, html


DIGEST_TEXT = """raqib digest: {{ digest.alerts }} alert(s) since {{ digest.since }}
{% for rule in digest.rules %}
{{ rule.title }} ({{ rule.severity }}): {{ rule.alerts }} alert(s), {{ rule.stories }} story(ies)
{% for item in rule["items"] -%}
{{ "  - " }}{{ item.title | unescape }} [{{ item.source }}] {{ item.url or "" }}
{% endfor %}{% endfor %}"""

DIGEST_HTML = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="font-family: Arial, 'Noto Naskh Arabic', sans-serif;">
<h2>raqib digest: {{ digest.alerts }} alert(s)</h2>
{% for rule in digest.rules %}<h3>{{ rule.title }} <small>({{ rule.severity }}) ·
{{ rule.alerts }} alert(s), {{ rule.stories }} story(ies)</small></h3><ul>
{% for item in rule["items"] %}<li dir="auto">{% if item.url %}<a href="{{ item.url }}">{% endif %}
{{ item.title }}{% if item.url %}</a>{% endif %} <small>{{ item.source }}</small></li>
{% endfor %}</ul>{% endfor %}</body></html>"""


def digest_email(digest: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a digest; article text escaped in the HTML."""
    env = Environment(autoescape=True)
    text_env = Environment(autoescape=False)  # noqa: S701 (plain text: nothing to escape)
    text_env.filters["unescape"] = unescape
    subject = f"[raqib] digest: {digest['alerts']} alert(s) in {len(digest['rules'])} rule(s)"
    return (subject, text_env.from_string(DIGEST_TEXT).render(digest=digest),
            env.from_string(DIGEST_HTML).render(digest=digest))


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_body(payload: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The webhook body for *fmt*: the alert payload itself, or a Slack, Discord or Teams
    message."""
    if fmt == "generic":
        return payload
    rule, article = payload["rule"], payload["article"]
    title = plain_title(payload)
    why = "\n".join(f"• {m['term']} ({m['field']}): {m['snippet']}" for m in payload["matches"])
    if payload.get("held"):
        why += f"\n(+{payload['held']['count']} held back: " + "; ".join(
            payload["held"]["titles"]) + ")"
    headline = f"[{rule['severity']}] {rule['title']}"
    link = article["url"] or ""
    if fmt == "slack":   # mrkdwn: &, < and > are control characters there
        headline, title, why = (_slack(headline), _slack(title), _slack(why))
        text = f"*{headline}*\n<{link}|{title}>" if link else f"*{headline}*\n{title}"
        return {"text": f"{headline}: {title}",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
                           {"type": "context", "elements": [
                               {"type": "mrkdwn", "text": f"{article['source']} · {why}"[:2900]}]}]}
    if fmt == "discord":
        return {"content": headline[:2000],
                "embeds": [{"title": title[:256], "url": link or None,
                            "description": why[:4000],
                            "footer": {"text": f"{article['source']} · alert {payload['id']}"}}]}
    # teams: an Office 365 connector MessageCard
    return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
            "summary": f"{headline}: {title}"[:200], "title": headline,
            "text": f"**{title}**\n\n{why}",
            "potentialAction": [{"@type": "OpenUri", "name": "Open the article",
                                 "targets": [{"os": "default", "uri": link}]}] if link else []}
