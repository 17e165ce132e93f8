"""Safe file names from titles."""

from __future__ import annotations

import re
import unicodedata

MAX_SLUG = 80


def slugify(title: str, fallback: str = "session") -> str:
    """A lowercase ASCII name of letters, digits and dashes: never empty, never a path."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:MAX_SLUG].strip("-")
    return text or fallback
