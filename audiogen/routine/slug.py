"""Safe, readable file names from titles in any script."""

from __future__ import annotations

MAX_SLUG = 80


def slugify(title: str, fallback: str = "session") -> str:
    """A lowercase ASCII name of letters, digits and dashes: never empty, never a path.

    Titles in other scripts are transliterated (python-slugify with text-unidecode: "Утренний массаж" ->
    "utrennii-massazh", "Fünf" -> "funf"), so a phone, a URL and a shell all show the same name.
    """
    from slugify import slugify as transliterate

    return transliterate(title, max_length=MAX_SLUG, word_boundary=True) or fallback
