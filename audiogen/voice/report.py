"""`audiogen voices`: which engines work here, their languages and voices, and which one `auto` picks.

Nothing here touches the network: an offline engine's availability is tested (its files found), a network
engine's is "unknown until used" (`available: null`), since finding out would send a request; `auto` then
picks gTTS only "if Google answers" (a build notices within 3 s when it does not).
"""

from __future__ import annotations

from audiogen.routine.errors import AudiogenError
from audiogen.voice.cache import ClipCache
from audiogen.voice.engines import ENGINES, OFFLINE_PREFERENCE, VoiceRequest, get_engine
from audiogen.voice.narrate import Narrator
from audiogen.voice.privacy import offline_mode

#: What each engine is, for people choosing one.
_ABOUT = {
    "gtts": "Google Translate's online voice via gTTS; needs the network and sends the text to Google",
    "piper": "Piper neural voice, offline, in process (the piper extra)",
    "espeak": "espeak-ng, offline, in process; robotic but about a hundred languages",
}


def _order() -> list[str]:
    """Engines in the order `auto` tries them, then any others registered."""
    first = ["gtts", *OFFLINE_PREFERENCE]
    return [n for n in first if n in ENGINES] + [n for n in ENGINES if n not in first]


def _engine_item(name: str, language: str, offline: bool) -> dict:
    item: dict = {"name": name, "about": _ABOUT.get(name, ""), "available": False}
    try:
        engine = get_engine(name)
        item["offline"] = bool(getattr(engine, "offline", True))
        reason = engine.unavailable_reason()
        if name == "gtts" and offline:
            reason = reason or "offline mode (--offline / AUDIOGEN_OFFLINE=1) never contacts the network"
        item["available"] = reason is None
        if reason:
            item["reason"] = reason
        elif not item["offline"]:
            item["available"] = None
            item["reason"] = ("unknown until used: asking would send a request to the service (a build finds "
                              "out within 3 s and, under auto, moves on to an offline voice)")
        try:
            item["version"] = engine.version()
        except AudiogenError:
            pass
        describe = getattr(engine, "describe", None)
        if describe is not None:
            item.update(describe())
        elif hasattr(engine, "voices"):  # an engine without describe(): language -> voice id
            voices = engine.voices()
            item["languages"] = sorted(voices)
            item["voices"] = [{"id": v, "language": lang} for lang, v in sorted(voices.items())]
        item["speaks_language"] = sorted({v["id"] for v in item.get("voices", [])
                                          if speaks(v.get("language", ""), language)}
                                         or {code for code in item.get("languages", []) if speaks(code, language)})
        if reason is None:
            try:
                item["voice_for_language"] = {"language": language,
                                              "voice": engine.resolve_voice(VoiceRequest(language=language))}
            except AudiogenError as e:
                item["voice_for_language"] = {"language": language, "voice": None, "reason": e.message}
    except AudiogenError as e:
        item["available"] = False
        item.setdefault("reason", e.message)
    item.setdefault("offline", name != "gtts")
    item.setdefault("languages", [])
    item.setdefault("voices", [])
    return item


def speaks(code: str, language: str) -> bool:
    """Whether a voice's language code (en_US, en-gb, de) is `language` or a variant of it."""
    code, language = code.lower().replace("_", "-"), language.lower().replace("_", "-")
    return code == language or code.startswith(language + "-") or language.startswith(code + "-")


def _auto(language: str, offline: bool) -> dict:
    """What `auto` would do for a routine in `language` now, by the Narrator's own rules (no synthesis)."""
    narrator = Narrator(ClipCache(), offline=offline, workers=1)
    voice = VoiceRequest(language=language)
    usable: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    for name in narrator.candidates_for("auto"):
        try:
            got = narrator.usable(name, voice, explicit=False)
        except AudiogenError as e:
            got = e.message
        if isinstance(got, str):
            skipped[name] = got
        else:
            usable.append((name, got[1]))
    out: dict = {"language": language, "order": narrator.candidates_for("auto"), "skipped": skipped}
    if not usable:
        out.update(engine=None, voice=None,
                   summary=f"nothing: no engine can narrate language {language!r}")
        return out
    (name, voice_id), rest = usable[0], usable[1:]
    out.update(engine=name, voice=voice_id, fallback=rest[0][0] if rest else None)
    if name == "gtts":
        out["condition"] = "if Google answers"
        tail = f", else {rest[0][0]} ({rest[0][1]})" if rest else ", else nothing (no offline voice for it)"
        out["summary"] = f"gtts ({voice_id}) if Google answers{tail}"
    else:
        why = "; ".join(f"{n}: {r}" for n, r in skipped.items())
        out["summary"] = f"{name} ({voice_id})" + (f" because {why}" if why else "")
    return out


def engine_report(language: str = "en", offline: bool | None = None) -> dict:
    """Every engine (available or not, and why), its languages and voices, and `auto`'s pick for `language`."""
    offline = offline_mode() if offline is None else offline
    return {
        "offline_mode": offline,
        "engines": [_engine_item(name, language, offline) for name in _order()],
        "auto": _auto(language, offline),
    }
