"""Built-in phrases per language: counts, reminders, side prompts and chapter names in the routine's language;
the routine's own `phrases:` win key by key; a language without a table warns in `check` and every `build`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiogen.build import BuildOptions, build
from audiogen.cli import cli
from audiogen.plan.planner import plan_routine
from audiogen.routine.loader import parse_routine
from audiogen.routine.phrasebook import default_phrases, languages, table_for

ROUTINE = """\
title: Test
language: {lang}
voice: {{engine: espeak}}
cue: none
background: {{track: rain, volume: -24 dB}}
intro: "{intro}"
steps:
  - title: Count
    repeat: 3
    every: 2s
  - title: Sides
    duration: 40s
    sides: [X]
    remind: {{halfway: true, remaining: [10s]}}
  - title: Breathe
    breathe: {{in: 3s, hold: 1s, out: 3s, rounds: 1}}
outro: "{outro}"
"""

#: What each language's session must say: the third count, the side prompt for a side named X, "Halfway.",
#: "Ten seconds left." and the intro and outro chapter names. Written here by hand, not read from the tables.
EXPECTED = {
    "en": ("Three", "Now the X side.", "Halfway.", "Ten seconds left.", "Intro", "Outro"),
    "de": ("Drei", "Jetzt X.", "Halbzeit.", "Noch zehn Sekunden.", "Einführung", "Abschluss"),
    "fr": ("Trois", "Maintenant, côté X.", "À mi-parcours.", "Encore dix secondes.", "Introduction", "Conclusion"),
    "es": ("Tres", "Ahora, el lado X.", "Vamos por la mitad.", "Quedan diez segundos.", "Introducción", "Cierre"),
    "it": ("Tre", "Ora il lato X.", "A metà.", "Mancano dieci secondi.", "Introduzione", "Conclusione"),
    "pt": ("Três", "Agora, o lado X.", "A meio.", "Faltam dez segundos.", "Introdução", "Encerramento"),
    "pt-br": ("Três", "Agora, o lado X.", "Metade do tempo.", "Faltam dez segundos.", "Introdução", "Encerramento"),
    "nl": ("Drie", "Nu X.", "Halverwege.", "Nog tien seconden.", "Inleiding", "Afsluiting"),
    "pl": ("Trzy", "Teraz strona X.", "Połowa czasu.", "Jeszcze dziesięć sekund.", "Wstęp", "Zakończenie"),
    "sv": ("Tre", "Nu X sida.", "Halvvägs.", "Tio sekunder kvar.", "Inledning", "Avslutning"),
    "da": ("Tre", "Nu X side.", "Halvvejs.", "Ti sekunder tilbage.", "Introduktion", "Afslutning"),
    "nb": ("Tre", "Nå X side.", "Halvveis.", "Ti sekunder igjen.", "Introduksjon", "Avslutning"),
    "no": ("Tre", "Nå X side.", "Halvveis.", "Ti sekunder igjen.", "Introduksjon", "Avslutning"),
    "fi": ("Kolme", "Nyt X puoli.", "Puolivälissä.", "Vielä kymmenen sekuntia.", "Johdanto", "Lopetus"),
    "tr": ("Üç", "Şimdi X taraf.", "Yarıya geldik.", "On saniye kaldı.", "Giriş", "Kapanış"),
    "ru": ("Три", "Теперь X сторона.", "Половина пути.", "Ещё десять секунд.", "Вступление", "Завершение"),
    "cs": ("Tři", "Teď X strana.", "Polovina.", "Ještě deset sekund.", "Úvod", "Závěr"),
    "el": ("Τρία", "Τώρα η X πλευρά.", "Στη μέση.", "Απομένουν δέκα δευτερόλεπτα.", "Εισαγωγή", "Κλείσιμο"),
}


def plan_of(text: str):
    return plan_routine(parse_routine(text, "r.yaml"), lambda t: 800, lambda s: 300)


def routine_text(lang: str, intro: str = "Hallo.", outro: str = "Tschüss.") -> str:
    return ROUTINE.format(lang=f'"{lang}"', intro=intro, outro=outro)


def test_every_built_in_language_is_checked_here():
    assert set(languages()) == set(EXPECTED)


@pytest.mark.parametrize("lang", sorted(EXPECTED))
def test_the_session_speaks_the_routines_language(lang):
    p = plan_of(routine_text(lang))
    spoken = {e.role: [] for e in p.events}
    for e in p.events:
        if e.kind == "speech":
            spoken[e.role].append(e.text)
    third, prompt, halfway, remaining, intro, outro = EXPECTED[lang]
    assert spoken["count"][2] == third
    assert spoken["prompt"] == [prompt]
    assert spoken["reminder"] == [halfway, remaining]
    assert (p.chapters[0].title, p.chapters[-1].title) == (intro, outro)
    assert p.chapters[2].title == "Sides (X)"  # the routine's own titles are kept as written


@pytest.mark.parametrize("lang", sorted(EXPECTED))
def test_a_breathing_step_speaks_its_phase_words_in_the_routines_language(lang):
    p = plan_of(f"""\
title: Breath
language: "{lang}"
steps:
  - title: Breathe
    breathe: {{in: 4s, hold: 2s, out: 4s, hold_after: 2s, rounds: 2}}
""")
    table = default_phrases(lang)
    words = [e.text for e in p.events if e.kind == "speech" and e.role == "breathe"]
    assert words == [table["breathe_in"], table["breathe_hold"], table["breathe_out"], table["breathe_hold"]] * 2
    if lang != "en":
        assert table["breathe_in"] != "Breathe in."


@pytest.mark.parametrize("lang", [lang for lang in sorted(EXPECTED) if lang != "en"])
def test_no_built_in_word_is_english(lang):
    """Every built-in phrase of a language differs from English (a half-translated table fails here)."""
    english, own = default_phrases("en"), default_phrases(lang)
    assert set(own) == set(english)
    for key in english:
        if key == "counts":
            assert len(own[key]) == 20
            same = [w for w in own[key] if w in english[key]]
            assert same in ([], ["Six"]), same  # French "Six" is spelled as in English
        else:
            assert own[key] != english[key], key


def test_regional_codes_fall_back_to_the_language_and_brazil_has_its_own():
    assert table_for("de-AT") is table_for("de") is table_for("DE_ch")
    assert table_for("pt-BR") is not table_for("pt")
    assert table_for("pt-BR")["counts"][15] == "Dezesseis" and table_for("pt-PT")["counts"][15] == "Dezasseis"
    assert table_for("hu") is None and table_for("en-GB") is table_for("en")


@pytest.mark.parametrize(("lang", "ms", "said"), [
    ("de", 60_000, "Noch eine Minute."),
    ("de", 90_000, "Noch eine Minute und dreißig Sekunden."),
    ("es", 60_000, "Queda un minuto."),
    ("es", 1_000, "Queda un segundo."),
    ("it", 120_000, "Mancano due minuti."),
    ("pl", 2_000, "Jeszcze dwie sekundy."),
    ("pl", 5_000, "Jeszcze pięć sekund."),
    ("ru", 21_000, "Ещё двадцать одна секунда."),
    ("ru", 3_000, "Ещё три секунды."),
    ("cs", 4_000, "Ještě čtyři sekundy."),
    ("cs", 60_000, "Ještě jedna minuta."),
    ("da", 60_000, "Et minut tilbage."),
    ("nb", 60_000, "Ett minutt igjen."),
    ("sv", 60_000, "En minut kvar."),
    ("fi", 2_000, "Vielä kaksi sekuntia."),
    ("tr", 2_000, "İki saniye kaldı."),
    ("el", 60_000, "Απομένει ένα λεπτό."),
    ("en", 37_000, "Thirty-seven seconds left."),
    ("fr", 37_000, "Encore trente-sept secondes."),
    ("fr", 21_000, "Encore vingt et une secondes."),
    ("de", 22_000, "Noch zweiundzwanzig Sekunden."),
    ("de", 21_000, "Noch einundzwanzig Sekunden."),
    ("es", 21_000, "Quedan veintiún segundos."),
    ("es", 31_000, "Quedan treinta y un segundos."),
    ("it", 28_000, "Mancano ventotto secondi."),
    ("it", 23_000, "Mancano ventitré secondi."),
    ("nl", 23_000, "Nog drieëntwintig seconden."),
    ("da", 32_000, "Toogtredive sekunder tilbage."),
    ("pl", 21_000, "Jeszcze dwadzieścia jeden sekund."),
    ("pl", 22_000, "Jeszcze dwadzieścia dwie sekundy."),
    ("ru", 22_000, "Ещё двадцать две секунды."),
    ("cs", 21_000, "Ještě dvacet jedna sekund."),
    ("cs", 22_000, "Ještě dvacet dvě sekundy."),
    ("fi", 21_000, "Vielä kaksikymmentäyksi sekuntia."),
    ("de", 75 * 60_000, "Noch 75 Minuten."),  # past 59: digits, with the unit in its plural
    ("pl", 62 * 60_000, "Jeszcze 62 minuty."),
])
def test_reminder_times_take_the_form_their_number_needs(lang, ms, said):
    p = plan_of(f'title: t\nlanguage: "{lang}"\ncue: none\nsteps:\n  - title: S\n    duration: 2h\n'
                f'    remind: {{remaining: [{ms}ms]}}\n')
    assert [e.text for e in p.events if e.role == "reminder"] == [said]


def test_the_routines_own_phrases_win_key_by_key():
    text = routine_text("de").replace("cue: none\n", 'cue: none\nphrases: {halfway: "Die Hälfte.", '
                                                     'remaining: "Noch {n} Sekunden!", intro_title: Anfang}\n')
    p = plan_of(text)
    said = [e.text for e in p.events if e.kind == "speech"]
    assert "Die Hälfte." in said and "Noch 10 Sekunden!" in said  # own phrase: digits
    assert "Drei" in said and "Jetzt X." in said  # the rest from the German table
    assert p.chapters[0].title == "Anfang" and p.chapters[-1].title == "Abschluss"


def test_a_librarys_phrases_count_as_the_routines_own():
    routine = parse_routine(routine_text("de"), "r.yaml", defaults={"phrases": {"counts": ["Uno", "Due", "Tre"]}})
    p = plan_routine(routine, lambda t: 800, lambda s: 300)
    assert [e.text for e in p.events if e.role == "count"] == ["Uno", "Due", "Tre"]
    assert "Halbzeit." in [e.text for e in p.events]


def test_plan_json_speaks_german(tmp_path):
    src = tmp_path / "de.yaml"
    src.write_text(routine_text("de"))
    res = CliRunner(mix_stderr=False).invoke(cli, ["plan", str(src), "--json"])
    assert res.exit_code == 0, res.output + res.stderr
    timeline = json.loads(res.stdout)
    said = [e["text"] for e in timeline["events"] if e["kind"] == "speech"]
    assert said[:4] == ["Hallo.", "Eins", "Zwei", "Drei"]
    assert {"Jetzt X.", "Halbzeit.", "Noch zehn Sekunden."} <= set(said)
    assert [c["title"] for c in timeline["chapters"]][::4] == ["Einführung", "Abschluss"]


def test_check_warns_only_for_a_language_without_a_table(tmp_path):
    (tmp_path / "de.yaml").write_text(routine_text("de"))
    (tmp_path / "hu.yaml").write_text(routine_text("hu", "Szia.", "Viszlát."))
    res = CliRunner(mix_stderr=False).invoke(cli, ["check", str(tmp_path / "de.yaml"), str(tmp_path / "hu.yaml")])
    out = res.output + res.stderr
    assert "'hu'" in out and "no built-in phrases" in out
    assert "'de'" not in out


def test_a_language_whose_words_are_all_set_does_not_warn(tmp_path):
    text = routine_text("hu", "Szia.", "Viszlát.").replace(
        "cue: none\n", "cue: none\nphrases: {counts: [egy, kettő, három], side_prompt: 'Most {side}.', "
                       "halfway: Félúton., remaining: 'Még {n} másodperc.', intro_title: Bevezető, "
                       "outro_title: Befejezés, breathe_in: Belégzés., breathe_hold: Tartsd., "
                       "breathe_out: Kilégzés.}\n")
    (tmp_path / "hu.yaml").write_text(text)
    res = CliRunner(mix_stderr=False).invoke(cli, ["check", str(tmp_path / "hu.yaml")])
    assert "no built-in phrases" not in res.output + res.stderr


@pytest.mark.slow
def test_german_builds_in_german_without_a_warning_and_hungarian_warns(tmp_path):
    """Real espeak builds: German counts and reminders, no warning; Hungarian (no table) warns in the
    build summary, the result and the session's JSON, and again when the build is skipped."""
    (tmp_path / "de.yaml").write_text(routine_text("de"))
    (tmp_path / "hu.yaml").write_text(routine_text("hu", "Szia.", "Viszlát.").replace("title: Test", "title: Hu"))
    out = tmp_path / "out"
    de, hu = build([tmp_path / "de.yaml", tmp_path / "hu.yaml"], BuildOptions(out_dir=out))
    assert de.status == hu.status == "built", (de.error, hu.error)
    assert de.warnings == []
    timeline = json.loads((out / f"{de.slug}.json").read_text())
    said = [e["text"] for e in timeline["events"] if e["kind"] == "speech"]
    assert ["Eins", "Zwei", "Drei", "Jetzt X.", "Halbzeit.", "Noch zehn Sekunden."] == said[1:7]
    assert timeline["warnings"] == [] and timeline["chapters"][0]["title"] == "Einführung"

    assert any("'hu'" in w and "no built-in phrases" in w for w in hu.warnings), hu.warnings
    hu_json = json.loads((out / f"{hu.slug}.json").read_text())
    assert [w["kind"] for w in hu_json["warnings"]] == ["language"]
    assert "intro_title" in hu_json["warnings"][0]["message"]

    res = CliRunner(mix_stderr=False).invoke(cli, ["build", str(tmp_path / "hu.yaml"), "-o", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    assert "skipped" in res.output and "no built-in phrases" in res.output + res.stderr


@pytest.mark.slow
def test_a_build_in_every_built_in_language_speaks_it(tmp_path):
    """Real espeak builds of the routine in every language with a table, as one library (all of them plan
    above too): the timeline each build wrote has the language's words, breathing words included, and each
    session is as long as its timeline."""
    from conftest import RATE, decode

    for lang in EXPECTED:
        text = routine_text(lang, "Bonjour.", "Merci.").replace("title: Test", f"title: Test {lang}")
        (tmp_path / "lib" / f"{lang}.yaml").parent.mkdir(exist_ok=True)
        (tmp_path / "lib" / f"{lang}.yaml").write_text(text, encoding="utf-8")
    results = build([tmp_path / "lib"], BuildOptions(out_dir=tmp_path / "out"))
    assert len(results) == len(EXPECTED)
    for r in results:
        lang = Path(r.source).stem
        assert r.status == "built" and r.warnings == [], (lang, r.error, r.warnings)
        timeline = json.loads((tmp_path / "out" / f"{r.slug}.json").read_text(encoding="utf-8"))
        said = [e["text"] for e in timeline["events"] if e["kind"] == "speech"]
        third, prompt, halfway, remaining, intro, outro = EXPECTED[lang]
        assert said[3:7] == [third, prompt, halfway, remaining], lang
        table = default_phrases(lang)
        breathe = [e["text"] for e in timeline["events"] if e.get("role") == "breathe"]
        assert breathe == [table["breathe_in"], table["breathe_hold"], table["breathe_out"]], lang
        assert (timeline["chapters"][0]["title"], timeline["chapters"][-1]["title"]) == (intro, outro), lang
        assert abs(len(decode(r.mp3)) * 1000 / RATE - timeline["length_ms"]) < 50, lang
