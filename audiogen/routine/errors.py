"""Typed errors that carry a location and a hint; the CLI renders them once."""

from __future__ import annotations


class AudiogenError(Exception):
    """Base of every error audiogen reports to a user (never a traceback)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line  # 1-based
        self.column = column  # 1-based
        self.field = field
        self.hint = hint
        #: Further problems found in the same pass (a file with several mistakes reports them all).
        self.others: list[AudiogenError] = []

    def problems(self) -> list[AudiogenError]:
        """This problem and the others found with it, each with its own location and hint."""
        return [self, *self.others]

    def location(self) -> str:
        """`file:line:column`, as much of it as is known."""
        parts = [self.path or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format(self) -> str:
        """One clear message: location, what is wrong, the field path and a hint."""
        text = self.message
        if self.field:
            text = f"{text} (at {self.field})"
        if self.path or self.line is not None:
            text = f"{self.location()}: {text}"
        if self.hint:
            text = f"{text}\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self.problems())


class RoutineError(AudiogenError):
    """A routine or library file does not parse or validate."""


class EngineError(AudiogenError):
    """A text-to-speech engine cannot narrate (unavailable, failed, refused)."""


class EngineUnavailable(EngineError):
    """The engine is not usable on this machine (missing package, no voice, offline)."""


class NetworkError(EngineError):
    """A network engine could not be reached or kept failing; `auto` may fall back."""


class SoundError(AudiogenError):
    """A background or cue sound cannot be found or decoded."""


class RenderError(AudiogenError):
    """Mixing or encoding failed."""


class OutputError(AudiogenError):
    """An output or cache file cannot be written."""
