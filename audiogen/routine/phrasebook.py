"""The words audiogen speaks by itself (counts, reminders, side prompts, breathing cues, Intro/Outro), per language.

Each table is plain data: the routine's own `phrases:` win key by key, and a language without a table
falls back to English with a warning (`phrases_warning`) from `check` and from every `build`.

Times in reminders ("Noch zehn Sekunden.") are spelled in words with the unit in the form the number
needs (German "eine Minute", Polish "dwie minuty", "pięć minut"): engines read words more evenly than
digits and never guess the wrong case. Numbers 1..59 are spelled; larger ones (75 minutes) are written as
digits with the unit in the right form, and the engine reads them in its language.
"""

from __future__ import annotations

from audiogen.routine.model import DEFAULT_COUNTS, Phrases, Routine

#: Number words in the form that agrees with the time units (gender), for these values (21..59 are composed
#: from the tens and ones below); digits otherwise.
_SPELLED = list(range(1, 21)) + [25, 30, 40, 45, 50]


def _numbers(words: str) -> dict[int, str]:
    values = words.split("|")
    assert len(values) == len(_SPELLED), values
    return dict(zip(_SPELLED, values, strict=True))


#: Every table: the phrase keys (as in `Phrases`, plus the breathing words `breathe_in`, `breathe_hold`,
#: `breathe_out`), and for reminders: `remaining` (`{n}`: the time in words), `remaining_one` (when the
#: time is one unit, where the verb agrees), `numbers`, `second`/`minute` as [one, few, many] (or
#: [one, other]), `plural` (the rule choosing the form) and `and` (between minutes and seconds).
BOOK: dict[str, dict] = {
    "en": {
        "counts": DEFAULT_COUNTS,
        "halfway": "Halfway.", "remaining": "{n} left.", "side_prompt": "Now the {side} side.",
        "breathe_in": "Breathe in.", "breathe_hold": "Hold.", "breathe_out": "Breathe out.",
        "intro_title": "Intro", "outro_title": "Outro",
    },
    "de": {
        "counts": "Eins Zwei Drei Vier Fünf Sechs Sieben Acht Neun Zehn Elf Zwölf Dreizehn Vierzehn Fünfzehn "
                  "Sechzehn Siebzehn Achtzehn Neunzehn Zwanzig".split(),
        "halfway": "Halbzeit.", "remaining": "Noch {n}.", "side_prompt": "Jetzt {side}.",
        "breathe_in": "Einatmen.", "breathe_hold": "Halten.", "breathe_out": "Ausatmen.",
        "intro_title": "Einführung", "outro_title": "Abschluss",
        "numbers": _numbers("eine|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|dreizehn|vierzehn|"
                            "fünfzehn|sechzehn|siebzehn|achtzehn|neunzehn|zwanzig|fünfundzwanzig|dreißig|"
                            "vierzig|fünfundvierzig|fünfzig"),
        "second": ["Sekunde", "Sekunden"], "minute": ["Minute", "Minuten"], "plural": "one", "and": "und",
    },
    "fr": {
        "counts": "Un Deux Trois Quatre Cinq Six Sept Huit Neuf Dix Onze Douze Treize Quatorze Quinze Seize "
                  "Dix-sept Dix-huit Dix-neuf Vingt".split(),
        "halfway": "À mi-parcours.", "remaining": "Encore {n}.", "side_prompt": "Maintenant, côté {side}.",
        "breathe_in": "Inspirez.", "breathe_hold": "Retenez.", "breathe_out": "Expirez.",
        "intro_title": "Introduction", "outro_title": "Conclusion",
        "numbers": _numbers("une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|"
                            "seize|dix-sept|dix-huit|dix-neuf|vingt|vingt-cinq|trente|quarante|quarante-cinq|"
                            "cinquante"),
        "second": ["seconde", "secondes"], "minute": ["minute", "minutes"], "plural": "one", "and": "et",
    },
    "es": {
        "counts": "Uno Dos Tres Cuatro Cinco Seis Siete Ocho Nueve Diez Once Doce Trece Catorce Quince Dieciséis "
                  "Diecisiete Dieciocho Diecinueve Veinte".split(),
        "halfway": "Vamos por la mitad.", "remaining": "Quedan {n}.", "remaining_one": "Queda {n}.",
        "side_prompt": "Ahora, el lado {side}.",
        "breathe_in": "Inhala.", "breathe_hold": "Mantén.", "breathe_out": "Exhala.",
        "intro_title": "Introducción", "outro_title": "Cierre",
        "numbers": _numbers("un|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|trece|catorce|quince|"
                            "dieciséis|diecisiete|dieciocho|diecinueve|veinte|veinticinco|treinta|cuarenta|"
                            "cuarenta y cinco|cincuenta"),
        "second": ["segundo", "segundos"], "minute": ["minuto", "minutos"], "plural": "one", "and": "y",
    },
    "it": {
        "counts": "Uno Due Tre Quattro Cinque Sei Sette Otto Nove Dieci Undici Dodici Tredici Quattordici Quindici "
                  "Sedici Diciassette Diciotto Diciannove Venti".split(),
        "halfway": "A metà.", "remaining": "Mancano {n}.", "remaining_one": "Manca {n}.",
        "side_prompt": "Ora il lato {side}.",
        "breathe_in": "Inspira.", "breathe_hold": "Trattieni.", "breathe_out": "Espira.",
        "intro_title": "Introduzione", "outro_title": "Conclusione",
        "numbers": _numbers("un|due|tre|quattro|cinque|sei|sette|otto|nove|dieci|undici|dodici|tredici|quattordici|"
                            "quindici|sedici|diciassette|diciotto|diciannove|venti|venticinque|trenta|quaranta|"
                            "quarantacinque|cinquanta"),
        "second": ["secondo", "secondi"], "minute": ["minuto", "minuti"], "plural": "one", "and": "e",
    },
    "pt": {  # European Portuguese (espeak's `pt`); Brazilian below
        "counts": "Um Dois Três Quatro Cinco Seis Sete Oito Nove Dez Onze Doze Treze Catorze Quinze Dezasseis "
                  "Dezassete Dezoito Dezanove Vinte".split(),
        "halfway": "A meio.", "remaining": "Faltam {n}.", "remaining_one": "Falta {n}.",
        "side_prompt": "Agora, o lado {side}.",
        "breathe_in": "Inspire.", "breathe_hold": "Retenha.", "breathe_out": "Expire.",
        "intro_title": "Introdução", "outro_title": "Encerramento",
        "numbers": _numbers("um|dois|três|quatro|cinco|seis|sete|oito|nove|dez|onze|doze|treze|catorze|quinze|"
                            "dezasseis|dezassete|dezoito|dezanove|vinte|vinte e cinco|trinta|quarenta|"
                            "quarenta e cinco|cinquenta"),
        "second": ["segundo", "segundos"], "minute": ["minuto", "minutos"], "plural": "one", "and": "e",
    },
    "nl": {
        "counts": "Eén Twee Drie Vier Vijf Zes Zeven Acht Negen Tien Elf Twaalf Dertien Veertien Vijftien Zestien "
                  "Zeventien Achttien Negentien Twintig".split(),
        "halfway": "Halverwege.", "remaining": "Nog {n}.", "side_prompt": "Nu {side}.",
        "breathe_in": "Adem in.", "breathe_hold": "Vasthouden.", "breathe_out": "Adem uit.",
        "intro_title": "Inleiding", "outro_title": "Afsluiting",
        "numbers": _numbers("één|twee|drie|vier|vijf|zes|zeven|acht|negen|tien|elf|twaalf|dertien|veertien|vijftien|"
                            "zestien|zeventien|achttien|negentien|twintig|vijfentwintig|dertig|veertig|"
                            "vijfenveertig|vijftig"),
        "second": ["seconde", "seconden"], "minute": ["minuut", "minuten"], "plural": "one", "and": "en",
    },
    "pl": {
        "counts": "Jeden Dwa Trzy Cztery Pięć Sześć Siedem Osiem Dziewięć Dziesięć Jedenaście Dwanaście Trzynaście "
                  "Czternaście Piętnaście Szesnaście Siedemnaście Osiemnaście Dziewiętnaście Dwadzieścia".split(),
        "halfway": "Połowa czasu.", "remaining": "Jeszcze {n}.", "side_prompt": "Teraz strona {side}.",
        "breathe_in": "Wdech.", "breathe_hold": "Zatrzymaj.", "breathe_out": "Wydech.",
        "intro_title": "Wstęp", "outro_title": "Zakończenie",
        "numbers": _numbers("jedna|dwie|trzy|cztery|pięć|sześć|siedem|osiem|dziewięć|dziesięć|jedenaście|dwanaście|"
                            "trzynaście|czternaście|piętnaście|szesnaście|siedemnaście|osiemnaście|dziewiętnaście|"
                            "dwadzieścia|dwadzieścia pięć|trzydzieści|czterdzieści|czterdzieści pięć|"
                            "pięćdziesiąt"),
        "second": ["sekunda", "sekundy", "sekund"], "minute": ["minuta", "minuty", "minut"], "plural": "pl",
        "and": "i",
    },
    "sv": {
        "counts": "Ett Två Tre Fyra Fem Sex Sju Åtta Nio Tio Elva Tolv Tretton Fjorton Femton Sexton Sjutton Arton "
                  "Nitton Tjugo".split(),
        "halfway": "Halvvägs.", "remaining": "{n} kvar.", "side_prompt": "Nu {side} sida.",
        "breathe_in": "Andas in.", "breathe_hold": "Håll andan.", "breathe_out": "Andas ut.",
        "intro_title": "Inledning", "outro_title": "Avslutning",
        "numbers": _numbers("en|två|tre|fyra|fem|sex|sju|åtta|nio|tio|elva|tolv|tretton|fjorton|femton|sexton|"
                            "sjutton|arton|nitton|tjugo|tjugofem|trettio|fyrtio|fyrtiofem|femtio"),
        "second": ["sekund", "sekunder"], "minute": ["minut", "minuter"], "plural": "one", "and": "och",
    },
    "da": {
        "counts": "En To Tre Fire Fem Seks Syv Otte Ni Ti Elleve Tolv Tretten Fjorten Femten Seksten Sytten Atten "
                  "Nitten Tyve".split(),
        "halfway": "Halvvejs.", "remaining": "{n} tilbage.", "side_prompt": "Nu {side} side.",
        "breathe_in": "Træk vejret ind.", "breathe_hold": "Hold vejret.", "breathe_out": "Pust ud.",
        "intro_title": "Introduktion", "outro_title": "Afslutning",
        "numbers": _numbers("et|to|tre|fire|fem|seks|syv|otte|ni|ti|elleve|tolv|tretten|fjorten|femten|seksten|"
                            "sytten|atten|nitten|tyve|femogtyve|tredive|fyrre|femogfyrre|halvtreds"),
        "second": ["sekund", "sekunder"], "minute": ["minut", "minutter"], "plural": "one", "and": "og",
    },
    "nb": {
        "counts": "En To Tre Fire Fem Seks Sju Åtte Ni Ti Elleve Tolv Tretten Fjorten Femten Seksten Sytten Atten "
                  "Nitten Tjue".split(),
        "halfway": "Halvveis.", "remaining": "{n} igjen.", "side_prompt": "Nå {side} side.",
        "breathe_in": "Pust inn.", "breathe_hold": "Hold pusten.", "breathe_out": "Pust ut.",
        "intro_title": "Introduksjon", "outro_title": "Avslutning",
        "numbers": _numbers("ett|to|tre|fire|fem|seks|sju|åtte|ni|ti|elleve|tolv|tretten|fjorten|femten|seksten|"
                            "sytten|atten|nitten|tjue|tjuefem|tretti|førti|førtifem|femti"),
        "second": ["sekund", "sekunder"], "minute": ["minutt", "minutter"], "plural": "one", "and": "og",
    },
    "fi": {
        "counts": "Yksi Kaksi Kolme Neljä Viisi Kuusi Seitsemän Kahdeksan Yhdeksän Kymmenen Yksitoista Kaksitoista "
                  "Kolmetoista Neljätoista Viisitoista Kuusitoista Seitsemäntoista Kahdeksantoista Yhdeksäntoista "
                  "Kaksikymmentä".split(),
        "halfway": "Puolivälissä.", "remaining": "Vielä {n}.", "side_prompt": "Nyt {side} puoli.",
        "breathe_in": "Hengitä sisään.", "breathe_hold": "Pidätä.", "breathe_out": "Hengitä ulos.",
        "intro_title": "Johdanto", "outro_title": "Lopetus",
        "numbers": _numbers("yksi|kaksi|kolme|neljä|viisi|kuusi|seitsemän|kahdeksan|yhdeksän|kymmenen|yksitoista|"
                            "kaksitoista|kolmetoista|neljätoista|viisitoista|kuusitoista|seitsemäntoista|"
                            "kahdeksantoista|yhdeksäntoista|kaksikymmentä|kaksikymmentäviisi|kolmekymmentä|"
                            "neljäkymmentä|neljäkymmentäviisi|viisikymmentä"),
        # after a number above one Finnish takes the partitive singular: "kymmenen sekuntia"
        "second": ["sekunti", "sekuntia"], "minute": ["minuutti", "minuuttia"], "plural": "one", "and": "ja",
    },
    "tr": {
        "counts": ["Bir", "İki", "Üç", "Dört", "Beş", "Altı", "Yedi", "Sekiz", "Dokuz", "On", "On bir", "On iki",
                   "On üç", "On dört", "On beş", "On altı", "On yedi", "On sekiz", "On dokuz", "Yirmi"],
        "halfway": "Yarıya geldik.", "remaining": "{n} kaldı.", "side_prompt": "Şimdi {side} taraf.",
        "breathe_in": "Nefes al.", "breathe_hold": "Tut.", "breathe_out": "Nefes ver.",
        "intro_title": "Giriş", "outro_title": "Kapanış",
        "numbers": _numbers("bir|iki|üç|dört|beş|altı|yedi|sekiz|dokuz|on|on bir|on iki|on üç|on dört|on beş|"
                            "on altı|on yedi|on sekiz|on dokuz|yirmi|yirmi beş|otuz|kırk|kırk beş|elli"),
        # Turkish nouns stay singular after a number: "on saniye"
        "second": ["saniye", "saniye"], "minute": ["dakika", "dakika"], "plural": "one", "and": "",
    },
    "ru": {
        "counts": "Один Два Три Четыре Пять Шесть Семь Восемь Девять Десять Одиннадцать Двенадцать Тринадцать "
                  "Четырнадцать Пятнадцать Шестнадцать Семнадцать Восемнадцать Девятнадцать Двадцать".split(),
        "halfway": "Половина пути.", "remaining": "Ещё {n}.",
        "side_prompt": "Теперь {side} сторона.",
        "breathe_in": "Вдох.", "breathe_hold": "Задержите дыхание.", "breathe_out": "Выдох.",
        "intro_title": "Вступление", "outro_title": "Завершение",
        "numbers": _numbers("одна|две|три|четыре|пять|шесть|семь|восемь|девять|десять|одиннадцать|двенадцать|"
                            "тринадцать|четырнадцать|пятнадцать|шестнадцать|семнадцать|восемнадцать|"
                            "девятнадцать|двадцать|двадцать пять|тридцать|сорок|сорок пять|пятьдесят"),
        "second": ["секунда", "секунды", "секунд"], "minute": ["минута", "минуты", "минут"], "plural": "ru",
        "and": "и",
    },
    "cs": {
        "counts": "Jedna Dva Tři Čtyři Pět Šest Sedm Osm Devět Deset Jedenáct Dvanáct Třináct Čtrnáct Patnáct "
                  "Šestnáct Sedmnáct Osmnáct Devatenáct Dvacet".split(),
        "halfway": "Polovina.", "remaining": "Ještě {n}.", "side_prompt": "Teď {side} strana.",
        "breathe_in": "Nádech.", "breathe_hold": "Zadržte dech.", "breathe_out": "Výdech.",
        "intro_title": "Úvod", "outro_title": "Závěr",
        "numbers": _numbers("jedna|dvě|tři|čtyři|pět|šest|sedm|osm|devět|deset|jedenáct|dvanáct|třináct|čtrnáct|"
                            "patnáct|šestnáct|sedmnáct|osmnáct|devatenáct|dvacet|dvacet pět|třicet|čtyřicet|"
                            "čtyřicet pět|padesát"),
        "second": ["sekunda", "sekundy", "sekund"], "minute": ["minuta", "minuty", "minut"], "plural": "cs",
        "and": "a",
    },
    "el": {
        "counts": "Ένα Δύο Τρία Τέσσερα Πέντε Έξι Επτά Οκτώ Εννέα Δέκα Έντεκα Δώδεκα Δεκατρία Δεκατέσσερα "
                  "Δεκαπέντε Δεκαέξι Δεκαεπτά Δεκαοκτώ Δεκαεννέα Είκοσι".split(),
        "halfway": "Στη μέση.", "remaining": "Απομένουν {n}.", "remaining_one": "Απομένει {n}.",
        "side_prompt": "Τώρα η {side} πλευρά.",
        "breathe_in": "Εισπνοή.", "breathe_hold": "Κράτα την ανάσα.", "breathe_out": "Εκπνοή.",
        "intro_title": "Εισαγωγή", "outro_title": "Κλείσιμο",
        "numbers": _numbers("ένα|δύο|τρία|τέσσερα|πέντε|έξι|επτά|οκτώ|εννέα|δέκα|έντεκα|δώδεκα|δεκατρία|"
                            "δεκατέσσερα|δεκαπέντε|δεκαέξι|δεκαεπτά|δεκαοκτώ|δεκαεννέα|είκοσι|είκοσι πέντε|"
                            "τριάντα|σαράντα|σαράντα πέντε|πενήντα"),
        "second": ["δευτερόλεπτο", "δευτερόλεπτα"], "minute": ["λεπτό", "λεπτά"], "plural": "one", "and": "και",
    },
}
# Brazilian Portuguese: the counts and a few words differ from European Portuguese
BOOK["pt-br"] = {
    **BOOK["pt"],
    "counts": BOOK["pt"]["counts"][:15] + ["Dezesseis", "Dezessete", "Dezoito", "Dezenove", "Vinte"],
    "halfway": "Metade do tempo.", "breathe_hold": "Segure.",
    "numbers": {**BOOK["pt"]["numbers"], 16: "dezesseis", 17: "dezessete", 19: "dezenove"},
}
BOOK["no"] = BOOK["nb"]  # gTTS and espeak call Norwegian (Bokmål) `no`

#: How 21..59 are spelled: the ones as they appear in a compound (in the gender of Sekunde/Minute, секунда,
#: ...) and where they go beside the tens; `{t}` the tens, `{o}` the ones.
_COMPOUNDS: dict[str, tuple[str, str]] = {
    "de": ("ein zwei drei vier fünf sechs sieben acht neun", "{o}und{t}"),  # einundzwanzig
    "fr": ("une deux trois quatre cinq six sept huit neuf", "{t}-{o}"),  # vingt-deux (vingt et une below)
    "es": ("un dos tres cuatro cinco seis siete ocho nueve", "{t} y {o}"),  # treinta y un (veinti- below)
    "it": ("uno due tré quattro cinque sei sette otto nove", "{t}{o}"),  # ventitré (ventuno below)
    "pt": ("um dois três quatro cinco seis sete oito nove", "{t} e {o}"),  # vinte e um
    "nl": ("een twee drie vier vijf zes zeven acht negen", "{o}en{t}"),  # eenentwintig (tweeën- below)
    "pl": ("jeden dwie trzy cztery pięć sześć siedem osiem dziewięć", "{t} {o}"),  # dwadzieścia dwie
    "sv": ("ett två tre fyra fem sex sju åtta nio", "{t}{o}"),  # tjugotvå
    "da": ("en to tre fire fem seks syv otte ni", "{o}og{t}"),  # toogtyve
    "nb": ("en to tre fire fem seks sju åtte ni", "{t}{o}"),  # tjueto
    "fi": ("yksi kaksi kolme neljä viisi kuusi seitsemän kahdeksan yhdeksän", "{t}{o}"),  # kaksikymmentäyksi
    "tr": ("bir iki üç dört beş altı yedi sekiz dokuz", "{t} {o}"),  # yirmi bir
    "ru": ("одна две три четыре пять шесть семь восемь девять", "{t} {o}"),  # двадцать одна
    "cs": ("jedna dvě tři čtyři pět šest sedm osm devět", "{t} {o}"),  # dvacet jedna
    "el": ("ένα δύο τρία τέσσερα πέντε έξι επτά οκτώ εννέα", "{t} {o}"),  # είκοσι ένα
}


def _compound(code: str, tens: str, ones: str, digit: int) -> str:
    if code == "fr" and digit == 1:
        return f"{tens} et une"
    if code == "es" and tens == "veinte":
        return {"un": "veintiún", "dos": "veintidós", "tres": "veintitrés", "seis": "veintiséis"}.get(
            ones, f"veinti{ones}")
    if code == "it" and ones[0] in "uo":  # ventuno, trentotto: the tens lose their last vowel
        tens = tens[:-1]
    if code == "nl" and ones.endswith("e"):  # tweeëntwintig, drieëntwintig
        return f"{ones}ën{tens}"
    return _COMPOUNDS[code][1].format(t=tens, o=ones)


for _code_, (_ones, _) in _COMPOUNDS.items():
    _numbers_ = BOOK[_code_]["numbers"]
    for _n in range(21, 60):
        _tens, _digit = divmod(_n, 10)
        if _n not in _numbers_ and _digit:
            _numbers_[_n] = _compound(_code_, _numbers_[_tens * 10], _ones.split()[_digit - 1], _digit)
BOOK["pt-br"]["numbers"].update({n: w for n, w in BOOK["pt"]["numbers"].items() if n > 20})

#: Keys of a table that are phrases (the rest spell reminder times).
PHRASE_KEYS = ("counts", "halfway", "remaining", "side_prompt", "breathe_in", "breathe_hold", "breathe_out",
               "intro_title", "outro_title")


def _code(language: str) -> str:
    return language.strip().lower().replace("_", "-")


def table_for(language: str) -> dict | None:
    """The phrase table of `language` (`de-AT` falls back to `de`, `pt-BR` has its own), or None."""
    code = _code(language)
    while code:
        if code in BOOK:
            return BOOK[code]
        code = code.rpartition("-")[0]
    return None


def has_table(language: str) -> bool:
    return table_for(language) is not None


def languages() -> list[str]:
    """Every language code with a built-in table."""
    return sorted(BOOK)


def default_phrases(language: str) -> dict:
    """The built-in phrases of `language` (English for a language without a table), keyed as `Phrases`
    (plus keys `Phrases` may not have yet, such as the breathing words)."""
    table = table_for(language) or BOOK["en"]
    return {k: (list(v) if isinstance(v, list) else v) for k, v in table.items() if k in PHRASE_KEYS}


def phrases_for(routine: Routine) -> Phrases:
    """The phrases a routine speaks: its own `phrases:` (a library's `defaults` count as its own), key by key
    over the built-in table of its language."""
    own = routine.phrases
    table = default_phrases(routine.language)
    update = {k: v for k, v in table.items() if k in Phrases.model_fields and k not in own.model_fields_set}
    return own.model_copy(update=update)


def uses(routine: Routine) -> list[str]:
    """The built-in phrase keys this routine's session speaks or names chapters with."""
    used: dict[str, None] = {}
    if routine.intro:
        used["intro_title"] = None
    for step in routine.steps:
        if step.repeat and step.count:
            used["counts"] = None
        if step.sides and not step.side_prompt:
            used["side_prompt"] = None
        if step.remind and step.remind.halfway:
            used["halfway"] = None
        if step.remind and step.remind.remaining:
            used["remaining"] = None
        # a breathing step (its field may be called breathe, breathing, breath...): the phase words
        if any(name.startswith("breath") and getattr(step, name) not in (None, False, [], {})
               for name in type(step).model_fields):
            used.update(dict.fromkeys(("breathe_in", "breathe_hold", "breathe_out")))
    if routine.outro:
        used["outro_title"] = None
    return list(used)


def phrases_warning(routine: Routine) -> str | None:
    """Why some of the routine's built-in words are English although it is not (no table for its language and
    no `phrases:` of its own for them), or None."""
    if has_table(routine.language):
        return None
    missing = [k for k in uses(routine) if k not in routine.phrases.model_fields_set
               and (k in Phrases.model_fields or not k.startswith("breathe"))]
    if not missing:
        return None
    built_in = ", ".join(c for c in languages() if c not in ("no", "pt-br"))
    return (f"language is {routine.language!r}, which has no built-in phrases, so {', '.join(missing)} "
            f"are English: set them in `phrases:` (built-in languages: {built_in})")


def _form(rule: str, n: int, forms: list[str]) -> str:
    """The unit's form for `n`: [one, other], or [one, few, many] for the Slavic rules."""
    if rule == "pl":
        few = n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14)
        return forms[0] if n == 1 else forms[1] if few else forms[2]
    if rule == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return forms[0]
        return forms[1] if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else forms[2]
    if rule == "cs":  # dvě sekundy, pět sekund, dvacet jedna sekund, dvacet dvě sekundy
        few = n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14)
        return forms[0] if n == 1 else forms[1] if few else forms[2]
    return forms[0] if n == 1 else forms[1]


def _amount(table: dict, n: int, unit: str) -> str:
    return f"{table['numbers'].get(n, str(n))} {_form(table['plural'], n, table[unit])}"


def spoken_time(language: str, ms: int) -> tuple[str, bool]:
    """A reminder time in words of `language` ("zehn Sekunden") and whether it is a single unit (one second
    or one minute, where the verb of some languages agrees)."""
    from audiogen.routine.durations import spoken_seconds

    table = table_for(language)
    if table is None or "numbers" not in table:
        return spoken_seconds(ms), round(ms / 1000) in (1, 60)
    total = round(ms / 1000)
    m, s = divmod(total, 60)
    parts = []
    if m:
        parts.append(_amount(table, m, "minute"))
    if s or not m:
        parts.append(_amount(table, s, "second"))
    joiner = f" {table['and']} " if table["and"] else " "
    return joiner.join(parts), total in (1, 60)


def _upper_first(text: str, language: str) -> str:
    if not text:
        return text
    first = "İ" if text[0] == "i" and _code(language).startswith(("tr", "az")) else text[0].upper()
    return first + text[1:]


def remaining_text(language: str, phrases: Phrases, ms: int) -> str:
    """The reminder `ms` before the end: a built-in phrase says the time in words of its language; a
    routine's own phrase gets the seconds in digits (read by the engine in its language)."""
    table = table_for(language) or BOOK["en"]
    if phrases.remaining != table["remaining"]:  # another language's built-in phrase, set by hand?
        table = next((t for t in BOOK.values() if t["remaining"] == phrases.remaining), None)
        if table is None:
            return phrases.remaining.replace("{n}", str(round(ms / 1000)))
    code = next(c for c, t in BOOK.items() if t is table)
    words, single = spoken_time(code, ms)
    template = table.get("remaining_one", table["remaining"]) if single else table["remaining"]
    return _upper_first(template.replace("{n}", words), code)
