"""The HTML-to-text fast path against its definition, BeautifulSoup's ``get_text(" ")``
(``soup_text``): equal on every fragment, up to ``clean_space``, which is how the module
compares text. Fragments are built the way feeds write them — Arabic and English words,
the usual tags with attributes, character references complete or not — and the way they
break them: ``</br>``, a leading doctype, unclosed tags, stray ``<`` and ``&``."""

from __future__ import annotations

import random
import timeit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker.htmltext import clean_space, fast_text, html_to_text, soup_text

WORDS = ["عين", "الأسد", "قاعدة", "التحالف", "بین\u200cالمللی", "Erbil", "coalition", "the",
         "Q", "A", "123", "«", "»", "،", "-", ".", ":", "AT", "T"]
TAGS = ["p", "b", "i", "a", "br", "div", "span", "img", "strong", "em", "ul", "li", "table",
        "tr", "td", "h1", "P", "BR", "font", "hr", "figure", "figcaption", "sup", "o:p", "a:b",
        "pre", "title", "script", "style", "textarea", "svg", "body", "html", "head", "meta"]
ATTRIBUTES = ["", ' href="https://example.org/?a=1&amp;b=2"', ' href="http://x/?a=1&b=2"',
              " class='c'", ' alt="a > b"', " title=x", ' data-x="<b>"', " /", ' dir="rtl"',
              " href=http://x/a>b", " \n", '\nhref="x"', ' a="x\ny"', " a='\"'", " a=b/",
              " checked", "/ "]
REFERENCES = ["&amp;", "&lt;", "&gt;", "&quot;", "&nbsp;", "&#1593;", "&#x639;", "&#X639;",
              "&#39;", "&apos;", "&hellip;", "&rlm;", "&zwnj;", "&AMP;", "&copy;", "&#65533;",
              "&#128;", "&#129;", "&#150;", "&#0;", "&#13;", "&#10;", "&#xD800;", "&#1114112;",
              "&#99999999999999999999;", "&#xFFFE;", "&#65535;", "&#xFDD0;", "&#1114111;",
              "&#x10FFFF;", "&#00;", "&#x0000;", "&#12345;", "&#x1F6A8;", "&#xdfff;",
              "&amp", "&lt", "&copy", "&#1593", "&#x", "&#", "&",
              "& ", "&notit;", "&ampx;", "&amp-x;", "&Copy;", "&ltx", "&Q", "&T"]
ODDITIES = ["<!DOCTYPE html>", "</br>", "<br/>", "<br />", "</ br>", "<p/>", "</img>", "<",
            ">", "< b", "a<b", "<3", "<!-- c -->", "<?xml version='1.0'?>", "<![CDATA[x]]>",
            "</>", "<>", "<a", "</p", "</p<b>", "<a/b>", "<br/ >", "<p\n>", "</p >",
            "</P foo=bar>", "\n", "\n\n", "\n \n", " \r\n \r\n ", "\t", "\r", "\f", "\x0b",
            "\x00", "\u00a0", "  "]


@st.composite
def fragments(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.one_of(
        st.sampled_from(WORDS).map(lambda w: w + " "),
        st.sampled_from(WORDS),
        st.builds(lambda t, a: f"<{t}{a}>", st.sampled_from(TAGS), st.sampled_from(ATTRIBUTES)),
        st.sampled_from(TAGS).map(lambda t: f"</{t}>"),
        st.sampled_from(REFERENCES),
        st.sampled_from(ODDITIES),
    ), min_size=1, max_size=14))
    return "".join(pieces)


def random_fragment(rng: random.Random) -> str:
    """The same kind of fragment from a seeded generator (hypothesis shrinks; this counts)."""
    out = []
    for _ in range(rng.randint(1, 12)):
        k = rng.random()
        if k < 0.35:
            out.append(rng.choice(WORDS) + rng.choice([" ", "", "\n", ""]))
        elif k < 0.55:
            out.append(f"<{rng.choice(TAGS)}{rng.choice(ATTRIBUTES)}>")
        elif k < 0.7:
            out.append(f"</{rng.choice(TAGS)}>")
        elif k < 0.85:
            out.append(rng.choice(REFERENCES))
        else:
            out.append(rng.choice(ODDITIES))
    return "".join(out)


@settings(max_examples=600, deadline=None)
@given(fragments())
@example("&#1593;</br>&#1593;")
@example("<br>&#1593;</br>&#1593;")
@example("<!DOCTYPE html><p>عين الأسد</p>")
@example("&#1593&copyA")
@example("a&notit;b")
@example("<td>\n\n</td><td>x</td>")
@example("</p<em>x</em>")
@example("<?xml version='1.0'?><rss>x</rss>")
def test_fast_path_reads_as_beautifulsoup(html: str) -> None:
    assert html_to_text(html) == soup_text(html)
    fast = fast_text(html)
    assert fast is None or fast == soup_text(html)


@given(st.text(alphabet=st.sampled_from("<>&#;/!?=\"' \n\tab1ع") | st.characters(),
               max_size=40))
@settings(max_examples=500, deadline=None)
def test_any_text_reads_as_beautifulsoup(html: str) -> None:
    assert html_to_text(html) == soup_text(html)


def test_twenty_thousand_fragments_agree() -> None:
    """The count the fault was measured by: it was about 25 in 20,000."""
    rng = random.Random(20_000)
    wrong = [h for h in (random_fragment(rng) for _ in range(20_000))
             if html_to_text(h) != soup_text(h)]
    assert wrong == []


@pytest.mark.parametrize(("html", "text"), [
    ("&#1593;</br>&#1593;", "ع ع"),
    ("<br>&#1593;</br>&#1593;", "عع"),            # BeautifulSoup: the second </br> ends nothing
    ("<!DOCTYPE html><html><body><p>عين الأسد</p></body></html>", "عين الأسد"),
    ("AT&T", "AT&T"),                               # not "ATT" (html.parser at end of input)
    ("Q&A session", "Q&A session"),
    ("&copy 2026 &#1593", "© 2026 ع"),
    ("<?xml version='1.0'?><p>x</p>", "x"),         # no warning either (warnings are errors)
    ("https://example.org/?a=1&b=2", "https://example.org/?a=1&b=2"),
    ("<p>&#xD800;x</p>", "\ufffdx"),              # never a lone surrogate, whatever bs4 gives
    ("news.html", "news.html"),
])
def test_known_faults(html: str, text: str) -> None:
    assert html_to_text(html) == text


SUMMARIES = [
    "<p>Rockets hit <b>Ain al-Asad</b> &amp; Erbil</p><p>Second&nbsp;paragraph</p>",
    "<div><img src=x.jpg alt='a'>caption<br/>next</div>",
    '<p>قصف <strong>عين الأسد</strong> &quot;الجوية&quot; <a href="https://x.example/a?b=1&amp;'
    'c=2">التفاصيل</a></p>\n<p>&#1593;&#1610;&#1606; &hellip;</p>',
    "plain &lt;not a tag&gt; &#1593;&#1610;&#1606;",
    "<ul><li>one</li><li>two</li></ul>",
    "Text with no markup at all, قاعدة عين الأسد",
]


@pytest.mark.parametrize("html", SUMMARIES)
def test_usual_summaries_stay_on_the_fast_path(html: str) -> None:
    assert fast_text(html) is not None
    assert fast_text(html) == soup_text(html)


def test_the_fast_path_is_still_fast() -> None:
    """A ratio measured in the same run, never an absolute time: several times cheaper than
    BeautifulSoup on the usual summaries."""
    def fast() -> None:
        for h in SUMMARIES:
            html_to_text(h)

    def slow() -> None:
        for h in SUMMARIES:
            soup_text(h)

    t_fast = min(timeit.repeat(fast, number=50, repeat=5))
    t_slow = min(timeit.repeat(slow, number=50, repeat=5))
    assert t_slow / t_fast > 3


def test_clean_space_is_the_equality() -> None:
    assert clean_space(" a \u00a0 b \n\n\n c ") == "a b\n\nc"
