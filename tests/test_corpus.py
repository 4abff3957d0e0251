"""A small held-out corpus in Arabic, Persian and English against a rule set that uses every
construct (tests/data/corpus/rules.yaml): every expected alert and no other. The texts carry
the traps of rules.md: diacritics, tatweel, hamza forms, proclitics, Arabic-Indic digits,
a head of state's name beside a base's, transliterations."""

from __future__ import annotations

import pytest

from worker import language
from worker.config import load_rules
from worker.items import Article
from worker.rules import RuleSet, compile_rules

from conftest import DATA, ROOT

CORPUS = [
    # (id, source, tags, title, summary, body, expected rules)
    ("ar-handover", "shafaq", ("arabic",),
     "العراق: اكتمال إخلاء قواعد التحالف الدولي",
     "أعلنت اللجنة العسكرية العليا إكمال انسحاب التحالف الدولي",
     "غادرت القوات قاعدة «عَيْن الأَسَد» الجوية وتسليمها للقوات العراقية تنفيذاً للبيان المشترك "
     "الصادر في الـ٦ من تشرين الثاني ٢٠٢٥.",
     {"base-named", "withdrawal", "year-2025", "summaries"}),
    ("ar-assad", "shafaq", ("arabic",),
     "الرئيس بشار الأسد يستقبل وفداً",
     "",
     "استقبل الرئيس السوري بشار الأسد في دمشق وفداً من التحالف الدولي لبحث الانسحاب، "
     "وقال إن عين الرئيس على المستقبل.",
     {"withdrawal"}),
    ("ar-tatweel", "shafaq", ("arabic",),
     "سقوط صواريخ على عيـــن الاسد",
     "",
     "سقطت ٣ صواريخ على قاعدة عين الاسد فجر اليوم، ولم تسجل إصابات، فيما حلقت طائرة drones فوق أربيل.",
     {"base-named", "rockets-near-base", "regex-count", "two-of-three", "not-airport"}),
    ("ar-exercise", "shafaq", ("arabic",),
     "مناورات مشتركة",
     "",
     "أجرى التحالف الدولي مناورات في الصحراء دون أي انسحاب.",
     set()),
    ("ar-clitics", "shafaq", ("arabic",),
     "وصول وفد إلى أربيل",
     "",
     "وصل الوفد بعد زيارته لعين الأسد وبالقرب من مطار أربيل.",
     {"base-named", "erbil-title", "two-of-three"}),
    ("en-rockets", "wire", ("english",),
     "Rockets hit Ayn al-Asad air base",
     "The US-led coalition said troops would not withdraw.",
     "Three rockets struck Ain al-Asad on Saturday. Officials in Erbil said a drone was also "
     "seen near the airport.",
     {"base-named", "withdrawal", "rockets-near-base", "two-of-three", "english-only",
      "summaries"}),   # "Three rockets": the regex wants digits
    ("en-erbil", "rudaw-en", ("english", "kurdistan"),
     "Hawler: the Kurdistan Region marks the anniversary",
     "",
     "Thousands gathered in the city centre of Erbil on Sunday.",
     {"erbil-title", "not-airport", "english-only", "kurdish-sources"}),
    ("en-asad-person", "wire", ("english",),
     "Assad meets envoys in Damascus",
     "",
     "Syria's former president al-Asad met envoys; no base was mentioned. The coalition "
     "exercise went ahead.",
     set()),
    ("fa-base", "irna", ("persian",),
     "خروج نیروهای ائتلاف بین‌المللی از پایگاه عین الاسد",
     "",
     "نیروهای ائتلاف بین‌المللی پایگاه عین‌الاسد در استان انبار را ترک کردند و این پایگاه "
     "به ارتش عراق تحویل داده شد.",
     {"base-named", "withdrawal", "persian-only"}),
    ("ckb-erbil", "rudaw-ku", ("kurdistan",),
     "هەولێر: کۆبوونەوەی حکومەت",
     "",
     "لە هەولێر کۆبوونەوەیەک ئەنجامدرا.",
     {"erbil-title", "not-airport", "kurdish-sources"}),
]


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    loaded, problems = load_rules([str(DATA / "corpus/rules.yaml")])
    assert problems == []
    rs, problems = compile_rules(loaded)
    assert problems == []
    return rs


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus(ruleset: RuleSet, case: tuple) -> None:  # type: ignore[type-arg]
    _id, source, tags, title, summary, body, expected = case
    article = Article(source=source, title=title, summary=summary, body=body, tags=tags)
    article.language = language.detect(f"{title}\n{summary}\n{body}")
    assert {m.rule_id for m in ruleset.match(article)} == expected


def test_every_construct_is_used(ruleset: RuleSet) -> None:
    text = (DATA / "corpus/rules.yaml").read_text(encoding="utf-8")
    for construct in ("any:", "all:", "none:", "not:", "near:", "within:", "at_least:", "of:",
                      "field:", "fields:", "languages:", "sources:", "re:", "*", "@"):
        assert construct in text, construct
    fired = {m.rule_id for case in CORPUS for m in ruleset.match(
        Article(source=case[1], title=case[3], summary=case[4], body=case[5], tags=case[2],
                language=language.detect(f"{case[3]}\n{case[4]}\n{case[5]}")))}
    assert fired == {cr.rule.id for cr in ruleset.rules}   # every rule fires somewhere


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    """The shipped rules and entity packs, and a rule for each entity."""
    packs = [str(ROOT / "config/entities"), str(ROOT / "config/rules")]
    loaded, problems = load_rules(packs)
    assert problems == []
    each = tmp_path_factory.mktemp("rules") / "each.yaml"
    each.write_text("rules:\n" + "".join(f"  - id: entity-{eid}\n    match: '@{eid}'\n"
                                         for eid in sorted(loaded.entities)), encoding="utf-8")
    loaded, problems = load_rules([*packs, str(each)])
    assert problems == []
    rs, problems = compile_rules(loaded)
    assert problems == []
    return rs


@pytest.mark.parametrize(("text", "entity", "hit"), [
    ("انفجار عبوة ناسفة في بعقوبة", "baquba", True),
    # Unavoidable: the text's ب + عقوبة ("with a penalty") is spelt as Baquba is.
    ("حكم عليه بعقوبة السجن", "baquba", True),
    ("صدرت عقوبة بالسجن", "baquba", False),            # "penalty": a name's ب is its own
    ("وصل الوفد إلى بغداد", "baghdad", True),
    ("وصل الوفد ببغداد", "baghdad", True),
    ("غداد", "baghdad", False),
    ("عقدت اللجنة العسكرية العليا اجتماعا", "higher-military-committee", True),
    ("بيان للجنة العسكرية العليا", "higher-military-committee", True),   # ل + اللجنة
    ("فڕۆکەخانەی هەولێر", "erbil-air-base", True),
    ("ڕۆکەخانەی هەولێر", "erbil-air-base", False),
    ("نیروهای ائتلاف بین\u200cالمللی", "coalition", True),             # ZWNJ in text and name
    ("نیروهای ائتلاف بین المللی", "coalition", True),
    ("قصف \u200fعين الأسد\u200f", "ain-al-asad", True),
    ("استقبل الرئيس الأسد", "ain-al-asad", False),
])
def test_shipped_entities(shipped: RuleSet, text: str, entity: str, hit: bool) -> None:
    fired = {m.rule_id for m in shipped.match(Article(source="s", title="", body=text))}
    assert (f"entity-{entity}" in fired) is hit
