"""`pronounce:`: whole words and phrases replaced before synthesis, for every engine.

`gua sha: gwah shah` respells a phrase; a value written `[[...]]` is phonemes, handed to the engine as such
(espeak-ng reads its own phoneme mnemonics, `espeak-ng -x` prints them; Piper reads IPA, `espeak-ng --ipa`).
Matching is case-insensitive, on whole words (a space in a key matches any run of spaces), longest key first.
The replaced text is what the engine receives and what the clip's cache key hashes.
"""

from __future__ import annotations

import re
from functools import lru_cache

PHONEMES = re.compile(r"\[\[[^\[\]]*\]\]")


def is_phonemes(value: str) -> bool:
    """A `[[...]]` value (phonemes for the engine, not text)."""
    return bool(PHONEMES.fullmatch(value.strip()))


def has_phonemes(text: str) -> bool:
    return "[[" in text


@lru_cache(maxsize=64)
def _pattern(keys: tuple[str, ...]) -> re.Pattern[str] | None:
    if not keys:
        return None
    parts = [r"\s+".join(re.escape(w) for w in k.split()) for k in sorted(keys, key=lambda k: (-len(k), k))]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def apply(text: str, rules: dict[str, str] | None) -> str:
    """`text` with every `rules` key (whole words, any case, longest first) replaced by its value."""
    if not rules:
        return text
    table = {" ".join(k.split()).casefold(): v.strip() for k, v in rules.items()}
    pattern = _pattern(tuple(sorted(rules)))
    if pattern is None:
        return text
    return pattern.sub(lambda m: table[" ".join(m.group(0).split()).casefold()], text)


def phoneme_rules(rules: dict[str, str] | None) -> list[str]:
    """The keys whose value is phonemes."""
    return [k for k, v in (rules or {}).items() if is_phonemes(v)]
