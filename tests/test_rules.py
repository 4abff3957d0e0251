"""Matching: every expression, the filters, Arabic-aware terms and the explanations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.config import load_rules
from worker.items import Article
from worker.rules import RuleSet, compile_rules

from conftest import write

ENTITIES = """\
entities:
  ain-al-asad:
    names: ["Ain al-Asad", "Ayn al-Asad", "Al Asad Airbase", "عين الأسد", "قاعدة الأسد الجوية"]
  erbil:
    names: [Erbil, Arbil, Hawler, أربيل, هولير]
"""


def ruleset(tmp_path: Path, rules: str) -> RuleSet:
    write(tmp_path / "r.yaml", ENTITIES + "rules:\n" + rules)
    loaded, problems = load_rules([str(tmp_path / "r.yaml")])
    assert problems == []
    rs, problems = compile_rules(loaded)
    assert problems == []
    return rs


def fired(rs: RuleSet, **kw: str) -> list[str]:
    article = Article(source=kw.pop("source", "src"), title=kw.pop("title", ""),
                      tags=tuple(kw.pop("tags", "").split()), language=kw.pop("language", None),
                      **kw)
    return [m.rule_id for m in rs.match(article)]


def one(term: str) -> str:
    return f"  - id: r\n    match: {json.dumps(term, ensure_ascii=False)}\n"


@pytest.mark.parametrize(("term", "text", "hit"), [
    ("withdrawal", "The WITHDRAWAL began", True),
    ("withdraw", "The withdrawal began", False),            # no stemming
    ("withdraw*", "troops are withdrawing", True),
    ("pull out", "they will pull  out, soon", True),
    ("pull out", "pull the troops out", False),             # phrases are consecutive
    ("@ain-al-asad", "a rocket hit Ayn al Asad today", True),
    ("@ain-al-asad", "قصف قاعدة عَيْن الأَسَد", True),
    ("@ain-al-asad", "قصف عيـن الاسد", True),
    ("@ain-al-asad", 'في "عين الأسد" اليوم', True),
    ("@ain-al-asad", "ووصل وعين الأسد", True),
    ("@ain-al-asad", "استقبل الرئيس بشار الأسد وفدا", False),  # the head of state's name
    ("@ain-al-asad", "عين الرئيس الأسد مديرا", False),
    ("قاعدة", "والقاعدة", True),
    ("قاعدة", "بالقاعدة", True),
    ("قاعدة", "لقاعدة", True),
    ("البيان المشترك", "للبيان المشترك", True),
    ("بغداد", "وصل الوفد ببغداد", True),
    ("@erbil", "مطار أربيل", True),
    ("@erbil", "مطار اربيل", True),
    ("٢٠٢٤", "في عام 2024", True),
    ("re:\\d+ صاروخ", "سقط ٣ صاروخ على القاعدة", True),
    ("re:\\bf-?35\\b", "an F-35 landed", True),
])
def test_terms(tmp_path: Path, term: str, text: str, hit: bool) -> None:
    rs = ruleset(tmp_path, one(term))
    assert (fired(rs, body=text) == ["r"]) is hit


RULES = """\
  - id: withdrawal
    match:
      all:
        - any: ["التحالف الدولي", "international coalition"]
        - any: ["انسحاب", "withdraw*", "إخلاء"]
      none: [exercise, مناورات]
  - id: near
    match: {near: ["@ain-al-asad", "rocket*"], within: 3}
  - id: atleast
    match: {at_least: 2, of: ["@erbil", "@ain-al-asad", "drone*"]}
  - id: intitle
    match: {field: title, match: "@erbil"}
  - id: notx
    match: {all: ["@erbil", {not: "airport"}]}
  - id: titles-only
    match: "@ain-al-asad"
    fields: [title]
  - id: arabic-only
    match: "@erbil"
    languages: [ar]
  - id: tagged
    match: "@erbil"
    sources: [tag:kurdistan, rudaw]
"""


@pytest.fixture
def rs(tmp_path: Path) -> RuleSet:
    return ruleset(tmp_path, RULES)


def test_all_any_none(rs: RuleSet) -> None:
    assert "withdrawal" in fired(rs, body="International coalition withdraws from bases")
    assert "withdrawal" in fired(rs, title="إخلاء قواعد التحالف الدولي")
    assert "withdrawal" not in fired(rs, body="International coalition withdraws after exercise")
    assert "withdrawal" not in fired(rs, body="international coalition meets")


@pytest.mark.parametrize(("text", "hit"), [
    ("rockets struck Ain al-Asad", True),           # rockets(0) … asad: within 3
    ("Ain al-Asad was struck by two rockets", False),   # 5 positions apart
    ("Ain al-Asad hit by rockets", True),
    ("rockets hit a base. Much later, in another town far away, Ain al-Asad", False),
])
def test_near(rs: RuleSet, text: str, hit: bool) -> None:
    assert ("near" in fired(rs, body=text)) is hit


def test_near_stays_inside_one_field(rs: RuleSet) -> None:
    assert "near" not in fired(rs, title="rockets", body="Ain al-Asad")


def test_at_least(rs: RuleSet) -> None:
    assert "atleast" in fired(rs, body="drones over Erbil")
    assert "atleast" not in fired(rs, body="Erbil and Erbil again")


def test_field_not_and_filters(rs: RuleSet) -> None:
    assert "intitle" in fired(rs, title="Erbil", body="x")
    assert "intitle" not in fired(rs, title="x", body="Erbil")
    assert "notx" in fired(rs, body="Erbil citadel")
    assert "notx" not in fired(rs, body="Erbil airport")
    assert "titles-only" not in fired(rs, body="Ain al-Asad")
    assert "arabic-only" in fired(rs, body="أربيل", language="ar")
    assert "arabic-only" not in fired(rs, body="Erbil", language="en")
    assert "tagged" in fired(rs, body="Erbil", tags="iraq kurdistan")
    assert "tagged" in fired(rs, body="Erbil", source="rudaw")
    assert "tagged" not in fired(rs, body="Erbil", source="bbc", tags="world")


def test_explanations_quote_the_article(rs: RuleSet) -> None:
    article = Article(source="s", title="قصف على «عين الأسد»",
                      body="قالت مصادر إن صواريخ سقطت على قاعدة عَيْن الأَسَد الجوية غرب العراق")
    [m] = [m for m in rs.match(article) if m.rule_id == "titles-only"]
    assert [(e.term, e.field, e.text) for e in m.explanations] == [
        ("@ain-al-asad", "title", "عين الأسد")]
    assert "atleast" not in [m.rule_id for m in rs.match(article)]  # one entity is not two
    assert "«عين الأسد»" in m.explanations[0].snippet


def test_snippet_is_cut_at_words(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, one("@erbil"))
    body = " ".join(["word"] * 40) + " Erbil " + " ".join(["more"] * 40)
    [m] = rs.match(Article(source="s", title="", body=body))
    snippet = m.explanations[0].snippet
    assert snippet.startswith("… word") and snippet.endswith("more …")
    assert "Erbil" in snippet and len(snippet) < 160


def test_rules_without_hits_are_not_evaluated(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, "".join(f"  - id: r{i}\n    match: word{i}\n" for i in range(200))
                 + "  - id: neg\n    match: {not: word1}\n")
    assert rs.always == [200]
    assert fired(rs, body="word7 and word9") == ["r7", "r9", "neg"]


@pytest.mark.parametrize(("term", "text", "hit"), [
    ("لبنان", "وصل الوفد إلى لبنان", True),
    ("لبنان", "عاد من بلبنان", True),          # ب + لبنان
    ("لبنان", "نان و چای", False),              # Persian "bread": no reading is لبنان
    ("بغداد", "لبغداد", True),
    ("تسليم*", "وتسليمها للقوات", True),
    ("تسليم*", "سليمان", False),
])
def test_proclitic_readings_are_checked(tmp_path: Path, term: str, text: str, hit: bool) -> None:
    """A text token matches when one of its readings (the token less optional proclitics)
    is the term token or the term token less its own article, and only then."""
    rs = ruleset(tmp_path, one(term))
    assert (fired(rs, body=text) == ["r"]) is hit


@pytest.mark.parametrize(("term", "text", "hit"), [
    ("بر*", "جلسة البرلمان اليوم", True),                   # برلمان: its key drops the ب
    ("بر*", "ولد", False),
    ("بغد*", "غدا", False),                                  # a prefix is not a word: no proclitics
    ("بغد*", "ببغداد", True),
    ("عين الأ*", "زار عين الأسد", True),
    ("عين ال*", "زار عين الأسد", True),                     # the prefix may be all article
    ("للالتزام", "تزام", False),                             # لل took the article already
    ("للالتزام", "الالتزام", False),                         # the term's ل is never stripped
    ("الالتزام", "للالتزام", True),                          # the text's is
    ("Ayn al-Asad", "ʿAyn al-Asad", True),                   # transliteration marks
    ("وزير الخارجية البريطاني في بغداد والبصرة لبحث الملف الأمني",
     "قال إن وزير الخارجية البريطاني في ببغداد والبصرة لبحث الملف الأمني", True),
    ("re:erbil, iraq", "Erbil, Iraq", True),                 # spaces beside punctuation stay
    ("re:\\berbil\\b", "Erbil \u200f Kirkuk", True),         # an invisible mark between words
    ("re:\\?$", "Will they withdraw?", True),                # after the last word
    ("re:^erbil", "  Erbil is calm", True),
])
def test_review_cases(tmp_path: Path, term: str, text: str, hit: bool) -> None:
    rs = ruleset(tmp_path, one(term))
    assert (fired(rs, title=text) == ["r"]) is hit


def test_an_all_proclitic_prefix_alone_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "r.yaml", "rules:\n  - id: r\n    match: 'ال*'\n")
    loaded, _ = load_rules([str(tmp_path / "r.yaml")])
    _, problems = compile_rules(loaded)
    assert [p.line for p in problems] == [3]
    assert "could be all proclitic" in problems[0].message


def test_kurdish_covers_its_variants(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, "  - id: r\n    match: '@erbil'\n    languages: [ku]\n")
    assert fired(rs, body="هولير", language="ckb") == ["r"]


# -- rules.md, Normalization: every example, and the contract around them ---------------------


@pytest.mark.parametrize(("term", "text", "hit"), [
    # Proclitics are stripped from the text: conjunction, preposition, article, لل = ل + ال.
    ("قاعدة", "والقاعدة", True),
    ("قاعدة", "بالقاعدة", True),
    ("قاعدة", "لقاعدة", True),
    ("قاعدة", "فللقاعدة", True),
    ("البيان المشترك", "للبيان المشترك", True),
    ("البيان المشترك", "بيان مشترك", True),          # the term's own article is optional
    ("بغداد", "وصل الوفد ببغداد", True),
    ("بغداد", "وصل الوفد بغداد", True),
    ("لبنان", "عاد إلى للبنان", True),                 # ل + لبنان, not ل + ال + بنان only
    # ... and never from the term: its first letter is its own.
    ("بعقوبة", "صدر حكم عقوبة بالسجن", False),       # Baquba is not "penalty"
    ("بعقوبة", "انفجار في بعقوبة", True),
    ("بعقوبة", "وبعقوبة", True),
    ("بابل", "أطلق وابل من الصواريخ", False),        # Babil is not "a barrage"
    ("بابل", "رعي الإبل", False),                     # nor "the camels"
    ("بابل", "محافظة بابل", True),
    ("بيان", "كيان", False),
    ("بيان", "في بيان رسمي", True),
    ("وادي", "فادي", False),
    ("وادي", "في وادي حوران", True),
    ("لبنان", "بنان", False),
    ("للبيان", "البيان", False),                       # a term's preposition stays
    # عين الأسد, in every spelling rules.md gives, but not الأسد alone.
    ("عين الأسد", "قصف عَيْن الأَسَد", True),
    ("عين الأسد", "قصف عيـن الاسد", True),
    ("عين الأسد", 'قصف "عين الأسد"', True),
    ("عين الأسد", "ووصل وعين الأسد", True),
    ("عين الأسد", "استقبل الرئيس بشار الأسد", False),
    ("عين الأسد", "الأسد", False),
    # Prefixes follow the same rule: a reading of the text token starts with the prefix or the
    # prefix less its own article.
    ("withdraw*", "troops withdrawing", True),
    ("بعقو*", "عقوبات", False),
    ("بعقو*", "وبعقوبة", True),
    ("الانسحاب*", "انسحابها", True),
    ("الانسحاب*", "للانسحاب", True),
    ("لبنا*", "بنان", False),
    ("لبنا*", "اللبنانية", True),
])
def test_normalization_examples(tmp_path: Path, term: str, text: str, hit: bool) -> None:
    rs = ruleset(tmp_path, one(term))
    assert (fired(rs, body=text) == ["r"]) is hit


@pytest.mark.parametrize(("term", "text", "hit"), [
    ("@erbil", "قصف \u200fأربيل\u200f اليوم", True),           # an RLM beside a name
    ("@erbil", "قصف أر\u200fبيل اليوم", True),                  # or inside it
    ("@erbil", "Er\u00adbil", True),                            # soft hyphen
    ("@erbil", "\u202bأربيل\u202c", True),                     # an embedding
    ("@erbil", "\u2067أربيل\u2069", True),                     # an isolate
    ("@erbil", "\ufeffErbil", True),
    ("أر\u200dبيل", "مطار أربيل", True),                        # marks in a term go too
    ("عين الأسد", "پایگاه عین\u200cالاسد", True),               # ZWNJ separates the words
    ("عین\u200cالاسد", "پایگاه عين الأسد", True),               # in the term as well
    ("عينالاسد", "پایگاه عین\u200cالاسد", False),
    ("ميشود", "می\u200cشود", False),
    ("شود", "می\u200cشود", True),
])
def test_invisible_marks(tmp_path: Path, term: str, text: str, hit: bool) -> None:
    rs = ruleset(tmp_path, one(term))
    assert (fired(rs, body=text) == ["r"]) is hit


# -- exact terms ------------------------------------------------------------------------------


@pytest.mark.parametrize(("term", "text", "hit"), [
    ("=بعقوبة", "انفجار في بعقوبة", True),
    ("=بعقوبة", "انفجار في بَعْقوبة", True),        # still normalized
    ("=بعقوبة", "وبعقوبة", False),                   # no proclitic stripped from the text
    ("=بعقوبة", "ببعقوبة", False),
    ("=بعقوبة", "عقوبة", False),
    ("=القاعدة", "قاعدة", False),                     # nor the term's article
    ("=القاعدة", "بالقاعدة", False),
    ("=القاعدة", "القاعدة", True),
    ('="Ain al-Asad"', "rockets hit Ain al-Asad", True),
    ('="Ain al-Asad"', "rockets hit AIN AL ASAD", True),
    ('="Ain al-Asad"', "rockets hit Ain al-Asadi", False),    # no prefix
    ("=عين الأسد", "قصف عين الأسد", True),
    ("=عين الأسد", "ووصل وعين الأسد", False),
    ("=عين الأسد", "عين أسد", False),
    ("=Erbil", "Erbil", True),
    ("=Erbil", "وErbil", False),
    ("Erbil", "وErbil", True),
])
def test_exact_terms(tmp_path: Path, term: str, text: str, hit: bool) -> None:
    rs = ruleset(tmp_path, one(term))
    assert (fired(rs, body=text) == ["r"]) is hit


def test_exact_terms_work_in_expressions_and_names(tmp_path: Path) -> None:
    write(tmp_path / "r.yaml", """\
entities:
  baquba:
    names: ["=بعقوبة", Baquba]
rules:
  - id: any
    match: {any: ["=بعقوبة", "=ديالى"]}
  - id: near
    match: {near: ["=بعقوبة", "هجوم*"], within: 2}
  - id: not
    match: {all: [Baquba, {not: "=بعقوبة"}]}
  - id: entity
    match: "@baquba"
""")
    loaded, problems = load_rules([str(tmp_path / "r.yaml")])
    rs, found = compile_rules(loaded)
    assert problems == found == []
    assert fired(rs, body="هجوم في بعقوبة") == ["any", "near", "entity"]
    assert fired(rs, body="هجوم وبعقوبة") == []
    assert fired(rs, body="Baquba and وبعقوبة") == ["not", "entity"]


@pytest.mark.parametrize(("term", "message"), [
    ("=withdraw*", "an exact term ('=') has no prefix"),
    ("=@erbil", "'=' takes a word or phrase"),
    ("=re:x", "'=' takes a word or phrase"),
    ("=", "has no words to match"),
    ('="«»"', "has no words to match"),
])
def test_exact_term_mistakes(tmp_path: Path, term: str, message: str) -> None:
    write(tmp_path / "r.yaml", ENTITIES + "rules:\n" + one(term))
    loaded, _ = load_rules([str(tmp_path / "r.yaml")])
    _, problems = compile_rules(loaded)
    assert [p.line for p in problems] == [8]
    assert message in problems[0].message


# -- languages --------------------------------------------------------------------------------


def test_languages_name_detected_codes_families_and_iso_codes(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, "  - id: r\n    match: '@erbil'\n"
                           "    languages: [ar, ku, en-US, it, FA]\n")
    assert rs.rules[0].languages == {"ar", "ku", "ckb", "kmr", "sdh", "en", "it", "fa"}
    assert fired(rs, body="Erbil", language="en") == ["r"]
    assert fired(rs, body="هولير", language="ckb") == ["r"]
    assert fired(rs, body="Erbil", language="de") == []


def test_unknown_languages_are_problems(tmp_path: Path) -> None:
    write(tmp_path / "r.yaml", "rules:\n  - id: r\n    match: x\n    languages:\n"
                               "      - ar\n      - arabic\n      - english\n      - xx\n")
    _, problems = load_rules([str(tmp_path / "r.yaml")])
    assert [(p.line, p.message.split(": use")[0]) for p in problems] == [
        (6, "rules.0.languages.1: unknown language 'arabic' (did you mean 'ar'?)"),
        (7, "rules.0.languages.2: unknown language 'english' (did you mean 'en'?)"),
        (8, "rules.0.languages.3: unknown language 'xx'")]
    assert problems[2].message.endswith(   # the valid codes are listed
        ": use a code language detection gives (ar, ckb, de, en, es, fa, fr, tr, ur), a family "
        "(ku = ckb, kmr, sdh) or another ISO 639-1 code a feed declares")


def test_detected_languages_are_the_ones_detection_gives() -> None:
    from worker import language  # noqa: PLC0415
    from worker.rules.model import DETECTED_LANGUAGES  # noqa: PLC0415

    samples = {"ar": "قال المتحدث باسم الحكومة إن القوات وصلت إلى المدينة",
               "fa": "نیروهای ائتلاف پایگاه را ترک کردند و این پایگاه به ارتش تحویل داده شد",
               "ckb": "لە هەولێر کۆبوونەوەیەک ئەنجامدرا بۆ حکومەت",
               "ur": "یہ ایک اہم خبر ہے کہ حکومت نے فیصلہ کیا ہے اور لوگوں نے ٹیکس دیا",
               "en": "The troops said that the base was handed over to the army",
               "fr": "Les troupes ont quitté la base et le pays est calme pour une fois",
               "de": "Die Truppen haben die Basis verlassen und das ist nicht das Ende",
               "es": "Las tropas dejaron la base y el país está en calma por una vez",
               "tr": "Bu sabah askerler üssü terk etti ve bir açıklama için çok bekledik"}
    assert {language.detect(text) for text in samples.values()} == set(DETECTED_LANGUAGES)
