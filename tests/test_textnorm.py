"""Normalization as rules.md gives it, for text and terms alike."""

from __future__ import annotations

import csv
import itertools

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


def test_a_term_is_found_under_every_key_its_text_may_have() -> None:
    # بغداد begins with a letter that could be a preposition: greedy stripping keys the text
    # بغداد as غداد and ببغداد as بغداد, and the term is looked up under both.
    assert textnorm.key_variants("بغداد") == {"بغداد", "غداد"}
    assert textnorm.keys("ببغداد") == ["بغداد"]
    assert textnorm.keys("بغداد") == ["غداد"]


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


# -- proclitics: stripped from the text, never from the term ---------------------------------


@pytest.mark.parametrize(("token", "expected"), [
    ("وبالقاعدة", {"وبالقاعده", "بالقاعده", "القاعده", "قاعده"}),
    ("للبيان", {"للبيان", "لبيان", "البيان", "بيان"}),      # لل = ل + ال, or ل before ل
    ("للبنان", {"للبنان", "لبنان", "البنان", "بنان"}),      # li-Lubnan reads لبنان
    ("فالقاعدة", {"فالقاعده", "القاعده", "قاعده"}),
    ("بغداد", {"بغداد", "غداد"}),
    ("ولا", {"ولا", "لا"}),                                  # two letters must remain
    ("بل", {"بل"}),
    ("الى", {"الي"}),                                        # the article leaves two letters
    ("Walid", {"walid"}),
])
def test_text_readings(token: str, expected: set[str]) -> None:
    [norm] = textnorm.norms(token)
    assert textnorm.readings(norm) == expected


@pytest.mark.parametrize(("term", "forms"), [
    ("قاعدة", {"قاعده"}),
    ("البيان", {"البيان", "بيان"}),        # its own article, at most
    ("بعقوبة", {"بعقوبه"}),                # its first letter is no proclitic
    ("بابل", {"بابل"}),
    ("لبنان", {"لبنان"}),
    ("وادي", {"وادي"}),
    ("للبيان", {"للبيان"}),
    ("الى", {"الي"}),                      # two letters must remain
])
def test_term_forms(term: str, forms: set[str]) -> None:
    [norm] = textnorm.norms(term)
    assert textnorm.term_forms(norm) == forms


def _reference_readings(token: str) -> set[str]:
    """rules.md read literally: a conjunction (و ف), then a preposition (ب ل ك), then the
    article ال, each optional, at least two letters left; لل is ل + ال (the alef elided, so
    losing the ل alone leaves ال + the rest)."""
    out = {token}
    for conj, prep, article in itertools.product(("", "و", "ف"), ("", "ب", "ل", "ك"), ("", "ال")):
        spellings = {"لل", "لال"} if (prep, article) == ("ل", "ال") else {prep + article}
        for written in spellings:
            before = conj + written
            if before and token.startswith(before) and len(token) - len(before) >= 2:
                rest = token[len(before):]
                out.add(rest)
                if written == "لل":
                    out.add("ال" + rest)
    return out


def _reference_forms(term: str) -> set[str]:
    return {term} | ({term[2:]} if term.startswith("ال") and len(term) >= 4 else set())


LETTERS = st.text(alphabet="وفبلكالعنx", min_size=1, max_size=8)


@given(LETTERS)
def test_readings_are_the_contract(token: str) -> None:
    assert textnorm.readings(token) == _reference_readings(token)
    assert textnorm.strip_proclitics(token) in textnorm.readings(token)   # the key is one


PROCLITICS = st.sampled_from(["", "و", "ف", "ب", "ل", "ك", "ال", "بال", "كال", "لل", "وال",
                              "وبال", "ولل", "فلل", "وب", "فل"])


@given(PROCLITICS, LETTERS, st.text(alphabet="الx", max_size=3))
def test_a_matching_text_token_is_always_found(before: str, term: str, after: str) -> None:
    """The automaton looks a text token up by its key alone: every text token the contract
    lets match a term token must have a key the term is compiled under (for a prefix, a key
    starting with one of the prefix's keys)."""
    token = before + term + after
    key = textnorm.strip_proclitics(token)
    found = _reference_readings(token)
    if found & _reference_forms(term):
        assert key in textnorm.key_variants(term)
    if any(r.startswith(tuple(_reference_forms(term))) for r in found):
        assert key.startswith(tuple(textnorm.prefix_keys(term)))
