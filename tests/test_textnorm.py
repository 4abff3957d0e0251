"""Normalization as rules.md gives it, for text and terms alike."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker import textnorm

from conftest import DATA

# The marks rules.md removes ("so they never split or hide a word"): ZWJ, LRM, RLM, ALM, soft
# hyphen, bidi embeddings and overrides, isolates, word joiner, BOM.
INVISIBLE = ["\u200d", "\u200e", "\u200f", "\u061c", "\u00ad", "\u202a", "\u202b", "\u202c",
             "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u2060", "\ufeff"]
# The marks that separate tokens as a space does: ZWNJ (rules.md) and the zero-width space.
SEPARATING = ["\u200c", "\u200b"]

# Examples from the tests of camel-tools and pyarabic (their repositories and commits are in the
# file's first columns), gathered in shared/testdata.
PAIRS = DATA / "arabic-normalization-pairs.tsv"


@pytest.mark.parametrize(("text", "expected"), [
    ("Élysée CAFÉ", ["elysee", "cafe"]),
    ("عَيْن الأَسَد", ["عين", "اسد"]),                      # harakat, sukun
    ("عيـــن الاسد", ["عين", "اسد"]),                       # tatweel
    ("أربيل إربيل آربيل ٱربيل", ["اربيل"] * 4),             # hamza forms and wasla
    ("مستشفى", ["مستشفي"]),                                 # alef maksura
    ("قاعدة", ["قاعده"]),                                   # teh marbuta
    ("مؤتمر رئيس", ["موتمر", "رييس"]),                      # hamza on waw and yeh
    ("٢٠٢٥ ۱۴۰۴", ["2025", "1404"]),                        # Arabic-Indic, Eastern digits
    ("الشّمسيّة", ["شمسيه"]),                                # shadda; article stripped
    ("«عين الأسد»، هل؟", ["عين", "اسد", "هل"]),             # guillemets, Arabic comma, ؟
    ("al-Asad", ["al", "asad"]),                              # the hyphen separates
    ("می\u200cشود", ["مي", "شود"]),                          # ZWNJ separates, as a space does
])
def test_keys(text: str, expected: list[str]) -> None:
    assert textnorm.keys(text) == expected


def test_persian_letters_map_to_arabic() -> None:
    assert textnorm.normalize_text("ایران کرکوک") == "ايران كركوك"


@pytest.mark.parametrize(("token", "key"), [
    ("والقاعدة", "قاعده"), ("بالقاعدة", "قاعده"), ("لقاعدة", "قاعده"), ("فالقاعدة", "قاعده"),
    ("للبيان", "بيان"), ("البيان", "بيان"), ("وللبيان", "بيان"),
    ("كالبحر", "بحر"),
    ("ولا", "لا"),            # two letters must remain: و goes, لا stays
    ("بل", "بل"),             # nothing to strip below two letters
    ("Walid", "walid"),       # Latin tokens keep their letters
])
def test_proclitics(token: str, key: str) -> None:
    assert textnorm.keys(token) == [key]


def test_optional_proclitics_give_every_reading() -> None:
    # بغداد begins with a letter that could be a preposition; with another ب in front the
    # reading بغداد is shared, so the two match.
    assert "بغداد" in textnorm.key_variants("بغداد")
    assert textnorm.keys("ببغداد") == ["بغداد"]
    assert textnorm.keys("بغداد")[0] in textnorm.key_variants("بغداد")


def _agreeing_pairs() -> list[tuple[str, str, str]]:
    """camel-tools and pyarabic examples whose expectation rules.md shares: marks, tatweel,
    alef forms, alef maksura, teh marbuta. Hamza-to-ء and keeping harakat are their own
    conventions, not ours."""
    wanted = {"strip_harakat", "strip_tashkeel", "strip_tatweel", "strip_shadda", "strip_small",
              "normalize_alef_ar", "normalize_alef_maksura_ar", "normalize_teh_marbuta_ar",
              "araby.strip_tashkeel", "araby.strip_tatweel", "araby.strip_shadda",
              "araby.strip_small", "araby.normalize_teh"}
    rows = []
    with PAIRS.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["function"] in wanted and row["input"]:
                rows.append((row["function"], row["input"], row["expected"].strip("'")))
    return rows


@pytest.mark.parametrize(("function", "text", "expected"), _agreeing_pairs())
def test_reference_pairs(function: str, text: str, expected: str) -> None:
    # Their output, normalized our way, is what ours gives for their input.
    assert textnorm.normalize_text(text) == textnorm.normalize_text(expected), function


@given(st.text())
def test_normalization_is_idempotent(text: str) -> None:
    once = textnorm.normalize_text(text)
    assert textnorm.normalize_text(once) == once


@given(st.text())
def test_every_token_comes_from_its_span(text: str) -> None:
    """Positions are stable: each token's span in the original text, normalized on its own,
    gives that very token, and spans come in order without overlapping."""
    tokens = textnorm.tokenize(text)
    previous_end = 0
    for key, (start, end) in zip(tokens.keys, tokens.spans, strict=True):
        assert key in textnorm.keys(text[start:end])
        assert start >= previous_end or end == previous_end   # or a ligature's second word
        previous_end = end


@given(st.lists(st.sampled_from(["عين", "الأسد", "قاعدة", "Erbil", "base", "٢٠"]), max_size=8),
       st.sampled_from(["ً", "ـ", "َ", "ّ", *INVISIBLE]))
def test_marks_never_move_positions(words: list[str], mark: str) -> None:
    plain = " ".join(words)
    marked = " ".join(w[:1] + mark + w[1:] for w in words)
    assert textnorm.keys(marked) == textnorm.keys(plain)


# -- invisible marks -------------------------------------------------------------------------


@pytest.mark.parametrize("mark", INVISIBLE)
@pytest.mark.parametrize(("word", "key"), [("أربيل", "اربيل"), ("Erbil", "erbil"),
                                           ("والقاعدة", "قاعده")])
def test_invisible_marks_are_removed(mark: str, word: str, key: str) -> None:
    inside = word[:2] + mark + word[2:]
    assert textnorm.keys(inside) == [key]                      # never splits a word
    assert textnorm.keys(f"{mark}{word}{mark} x") == [key, "x"]  # never hides one
    assert textnorm.keys(f"a{mark} {word}") == ["a", key]
    assert textnorm.norms(inside) == textnorm.norms(word)     # terms are written the same way


@pytest.mark.parametrize("mark", SEPARATING)
def test_zwnj_separates_tokens(mark: str) -> None:
    assert textnorm.keys(f"می{mark}شود") == ["مي", "شود"]
    assert textnorm.keys(f"عین{mark}الاسد") == ["عين", "اسد"]
    assert textnorm.norms(f"بین{mark}المللی") == ["بين", "المللي"]   # a term's tokens too
    assert textnorm.normalize_text(f"a{mark}b") == "a b"                 # and re: text


def test_tokens_keep_their_spans_around_marks() -> None:
    text = "\u200fأربيل\u200f و\u200cكركوك"
    tokens = textnorm.tokenize(text)
    assert tokens.norms == ("اربيل", "و", "كركوك")
    assert [tokens.source(i, i) for i in range(3)] == ["\u200fأربيل\u200f", "و", "كركوك"]
