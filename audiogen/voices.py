"""`audiogen voices`: which engines work here, and which one `auto` would pick."""

from __future__ import annotations

from .engines import ENGINES, OFFLINE_PREFERENCE, get_engine
from .errors import AudiogenError
from .narrate import offline_mode


def engine_report() -> dict:
    engines = []
    for name in ENGINES:
        item: dict = {"name": name}
        try:
            engine = get_engine(name)
            reason = engine.unavailable_reason()
            if name == "gtts" and offline_mode():
                reason = reason or "offline mode (AUDIOGEN_OFFLINE=1)"
            item["available"] = reason is None
            if reason:
                item["reason"] = reason
            else:
                item["version"] = engine.version()
                if hasattr(engine, "voices"):
                    item["languages"] = sorted(engine.voices())
                if hasattr(engine, "languages"):
                    item["languages"] = sorted(engine.languages())
                if hasattr(engine, "accents"):
                    item["voices"] = list(engine.accents())
        except AudiogenError as e:
            item["available"] = False
            item["reason"] = e.message
        item["offline"] = name != "gtts"
        engines.append(item)
    order = ([] if offline_mode() else ["gtts"]) + OFFLINE_PREFERENCE
    avail = {e["name"] for e in engines if e["available"]}
    auto = next((n for n in order if n in avail), None)
    note = " (if Google's service answers; else the next offline voice)" if auto == "gtts" else ""
    return {"engines": engines, "auto": (auto or "nothing: no engine is available") + note}
