"""A library folder: `audiogen.yaml` (album, author, defaults, output settings) and the routines below it."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator

from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import compose, error_at, read_text, validation_error
from audiogen.routine.model import Duration, StrictModel
from audiogen.routine.walk import LIBRARY_FILE, routine_files

_BITRATES = ("32k", "48k", "64k", "80k", "96k", "112k", "128k", "160k", "192k", "256k", "320k")


class OutputSettings(StrictModel):
    """How sessions are encoded and where they go.

    Defaults: 96 kbit/s mono MP3 at 44.1 kHz. Speech alone is clear at 64k mono, but the ambience beds
    (rain, noise) smear at low bitrates; 96k mono keeps them clean at about 43 MB per hour, and mono
    plays the same on one phone speaker or two earbuds.
    """

    dir: str = "output"
    bitrate: Literal[_BITRATES] = "96k"  # type: ignore[valid-type]
    channels: Literal[1, 2] = 1
    sample_rate: Literal[22050, 24000, 32000, 44100, 48000] = 44100
    loudness: float | None = Field(-16.0, ge=-40, le=-5, description="LUFS target; null: off")
    loudness_mode: Literal["speech", "programme"] = Field(
        "speech", description="speech: the narration reaches the target and the bed stays where written; "
                              "programme: the whole mix does (the bed is raised in long silences)")
    scheduler: str | None = Field(None, description="Dask scheduler address (tcp://host:8786) or local:N")
    format: list[Literal["mp3", "m4b", "opus"]] = Field(
        default_factory=lambda: ["mp3"], min_length=1,
        description="mp3 | m4b | opus, or a list of them: every format is built from one render; the first "
                    "is the one the feed, playlist and page offer first")
    split: Literal["none", "steps"] = Field(
        "none", description="steps: also one file per chapter, in <slug>/, with a playlist (<slug>/<slug>.m3u8)")
    stems: bool = Field(False, description="also the voice (with cues) and the bed alone, as 32-bit float WAV")
    base_url: str | None = Field(
        None, pattern=r"^https?://[^/\s]+(/\S*)?$",
        description="absolute URL the output folder is published at (podcast apps need absolute feed URLs)")

    id3: Literal["2.3", "2.4"] = Field(
        "2.3", description="ID3 tag version of the MP3s: 2.3 (read by id3lib-based players and most car "
                           "stereos, which see no 2.4 tag) or 2.4")

    #: What only the indexes (feed, page) use: changing it never re-renders a session.
    PUBLISHING: ClassVar[frozenset[str]] = frozenset({"base_url", "scheduler", "dir"})
    #: What only the tags use: changing it rewrites the MP3s' tags, never their audio.
    TAGGING: ClassVar[frozenset[str]] = frozenset({"id3"})

    def audio_key(self) -> dict:
        """The settings a session's audio depends on (its fingerprint)."""
        key = self.model_dump(mode="json", exclude=set(self.PUBLISHING | self.TAGGING))
        # the output formats at their defaults leave the fingerprints of earlier builds as they were
        for name, default in (("format", ["mp3"]), ("split", "none"), ("stems", False)):
            if key.get(name) == default:
                key.pop(name, None)
        return key

    @field_validator("id3", mode="before")
    @classmethod
    def _id3_text(cls, v: Any) -> Any:
        if isinstance(v, float | int) and not isinstance(v, bool):  # YAML reads `id3: 2.3` as a number
            return {2.3: "2.3", 2.4: "2.4", 3: "2.3", 4: "2.4"}.get(v, v)
        return v.strip().lower().removeprefix("v").removeprefix("id3v") if isinstance(v, str) else v

    @field_validator("format", mode="before")
    @classmethod
    def _format_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            v = [x.strip().lower() if isinstance(x, str) else x for x in v]
            return list(dict.fromkeys(v))
        return v

    @field_validator("split", mode="before")
    @classmethod
    def _split_off(cls, v: Any) -> Any:
        return "none" if v in (None, False) else v

    @field_validator("bitrate", mode="before")
    @classmethod
    def _bitrate_text(cls, v: Any) -> Any:
        if isinstance(v, int):
            return f"{v // 1000}k" if v >= 1000 else f"{v}k"
        return v.strip().lower() if isinstance(v, str) else v


class Variants(StrictModel):
    """Extra builds of every routine at other total lengths (silence scales, speech never does)."""

    lengths: list[Duration] = Field(default_factory=list, max_length=20)

    @field_validator("lengths")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        for ms in v:
            if ms < 10_000:
                raise ValueError(f"variant length {ms / 1000:g}s is too short: use at least 10s")
        return sorted(set(v))


#: Apple Podcasts' categories and their subcategories (https://podcasters.apple.com/support/1691-apple-podcasts-categories).
#: Kept here, beside the model that validates `feed.category`, since this floor may not import publish/;
#: audiogen.publish.feed re-exports it.
APPLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Arts": ("Books", "Design", "Fashion & Beauty", "Food", "Performing Arts", "Visual Arts"),
    "Business": ("Careers", "Entrepreneurship", "Investing", "Management", "Marketing", "Non-Profit"),
    "Comedy": ("Comedy Interviews", "Improv", "Stand-Up"),
    "Education": ("Courses", "How To", "Language Learning", "Self-Improvement"),
    "Fiction": ("Comedy Fiction", "Drama", "Science Fiction"),
    "Government": (),
    "History": (),
    "Health & Fitness": ("Alternative Health", "Fitness", "Medicine", "Mental Health", "Nutrition", "Sexuality"),
    "Kids & Family": ("Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"),
    "Leisure": ("Animation & Manga", "Automotive", "Aviation", "Crafts", "Games", "Hobbies", "Home & Garden",
                "Video Games"),
    "Music": ("Music Commentary", "Music History", "Music Interviews"),
    "News": ("Business News", "Daily News", "Entertainment News", "News Commentary", "Politics", "Sports News",
             "Tech News"),
    "Religion & Spirituality": ("Buddhism", "Christianity", "Hinduism", "Islam", "Judaism", "Religion",
                                "Spirituality"),
    "Science": ("Astronomy", "Chemistry", "Earth Sciences", "Life Sciences", "Mathematics", "Natural Sciences",
                "Nature", "Physics", "Social Sciences"),
    "Society & Culture": ("Documentary", "Personal Journals", "Philosophy", "Places & Travel", "Relationships"),
    "Sports": ("Baseball", "Basketball", "Cricket", "Fantasy Sports", "Football", "Golf", "Hockey", "Rugby",
               "Running", "Soccer", "Swimming", "Tennis", "Volleyball", "Wilderness", "Wrestling"),
    "Technology": (),
    "True Crime": (),
    "TV & Film": ("After Shows", "Film History", "Film Interviews", "Film Reviews", "TV Reviews"),
}
#: Every valid `feed.category`: "Category" or "Category > Subcategory".
CATEGORY_CHOICES: tuple[str, ...] = tuple(
    name for top, subs in APPLE_CATEGORIES.items() for name in (top, *(f"{top} > {sub}" for sub in subs)))
DEFAULT_CATEGORY = "Health & Fitness"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
#: An e-mail address as podcast directories accept it: local@domain.tld (no display name, no IP literal).
_EMAIL = re.compile(rf"^[^@\s<>()\[\],;:\"]+@(?:{_LABEL}\.)+[A-Za-z]{{2,}}$")


def check_category(value: str) -> str:
    """`value` as Apple spells it ("Health & Fitness > Alternative Health"), or ValueError naming the closest
    valid ones."""
    parts = [" ".join(p.split()) for p in str(value).split(">")]
    wanted = " > ".join(parts)
    by_fold = {c.casefold(): c for c in CATEGORY_CHOICES}
    if wanted.casefold() in by_fold:
        return by_fold[wanted.casefold()]
    # Ranked by how like the whole path, or its last part, is to a path, its last name or a word of it.
    last = parts[-1].casefold()

    def likeness(choice: str) -> float:
        name = choice.rpartition(" > ")[2].casefold()
        texts = [(wanted.casefold(), choice.casefold()), (last, name)] + [(last, w) for w in name.split() if w != "&"]
        return max(difflib.SequenceMatcher(None, a, b).ratio() for a, b in texts)

    scored = sorted(((likeness(c), c) for c in CATEGORY_CHOICES), key=lambda t: -t[0])
    close = [c for score, c in scored if score >= 0.7][:3]
    if not close and len(parts) > 1 and parts[0].casefold() in by_fold:
        top = by_fold[parts[0].casefold()]
        close = [f"{top} > {sub}" for sub in APPLE_CATEGORIES[top]] or [top]
    if close:
        raise ValueError(f"{value!r} is not an Apple Podcasts category; did you mean "
                         f"{' or '.join(repr(c) for c in close[:3])}?")
    raise ValueError(f"{value!r} is not an Apple Podcasts category (write 'Category' or 'Category > "
                     f"Subcategory'); the categories: {', '.join(APPLE_CATEGORIES)}")


class FeedSettings(StrictModel):
    """The podcast feed's channel settings (`feed:` in audiogen.yaml); the defaults make a feed podcast
    apps and directories accept."""

    owner: str | None = Field(None, min_length=1, description="itunes:owner name (default: the author)")
    email: str | None = Field(
        None, description="owner's e-mail (itunes:owner, podcast:locked owner): Apple verifies ownership with it")
    category: str = Field(DEFAULT_CATEGORY, description="Apple Podcasts category, e.g. 'Health & Fitness > "
                                                        "Alternative Health'")
    explicit: bool = False
    copyright: str | Literal[False] | None = Field(
        None, description="copyright line; default: © <first year>[–<last year>] <author>; false: none")
    locked: bool = Field(True, description="podcast:locked: other hosts may not import the feed")
    private: bool = Field(False, description="itunes:block and podcast:block: directories must not list it")

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip()
        if v.lower().startswith("mailto:"):
            v = v[len("mailto:"):]
        if not _EMAIL.match(v) or len(v) > 254:
            raise ValueError(f"{v!r} is not an e-mail address (write name@example.com)")
        return v

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        return check_category(v)

    @field_validator("copyright", mode="before")
    @classmethod
    def _copyright_text(cls, v: Any) -> Any:
        if v is True:
            raise ValueError("write the copyright line as text (or false for none; leave it out for "
                             "'\u00a9 <year> <author>')")
        return v


class LibraryConfig(StrictModel):
    """The contents of a library folder's `audiogen.yaml`."""

    album: str | None = None
    author: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    output: OutputSettings = Field(default_factory=OutputSettings)
    variants: Variants | None = None
    feed: FeedSettings = Field(default_factory=FeedSettings)

    @field_validator("defaults")
    @classmethod
    def _no_title_or_steps(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in ("title", "steps"):
            if key in v:
                raise ValueError(f"defaults cannot set {key!r}: every routine has its own")
        return v


def load_library_config(folder: str | Path) -> LibraryConfig:
    """Read `folder/audiogen.yaml`, or the defaults when there is none."""
    folder = Path(folder)
    path = folder / LIBRARY_FILE
    if not path.exists():
        return LibraryConfig()
    text = read_text(path)
    data, marks = compose(text, str(path))
    if not isinstance(data, dict):
        raise error_at(str(path), marks.find(()), "audiogen.yaml is a mapping of keys (album:, defaults:, ...)")
    try:
        config = LibraryConfig.model_validate(data)
    except ValidationError as e:
        raise validation_error(LibraryConfig, e, marks, str(path)) from None
    _check_defaults(config, marks, str(path), folder)
    return config


def session_output(settings: OutputSettings, routine) -> OutputSettings:
    """The output settings one routine's sessions are made with: its own `loudness:` (a number, or null
    for none), when it sets one, wins over the library's."""
    if "loudness" in routine.model_fields_set:
        return settings.model_copy(update={"loudness": routine.loudness})
    return settings


def config_for(path: str | Path) -> LibraryConfig:
    """The library configuration that applies to `path`: a folder's own `audiogen.yaml`, or for a routine
    file the one beside it (the defaults when there is none)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    return load_library_config(folder) if folder.is_dir() else LibraryConfig()


def _check_defaults(config: LibraryConfig, marks, path: str, folder: Path) -> None:
    """Defaults are validated as routine keys, so a typo there is reported where it was written."""
    from audiogen.routine.model import Routine

    probe = {"title": "x", "steps": [{"title": "x", "hold": 1}], **config.defaults}
    try:
        Routine.model_validate(probe)
    except ValidationError as e:
        err = validation_error(Routine, e, marks, path, base_loc=("defaults",))
        raise err from None


__all__ = ["FeedSettings", "LibraryConfig", "OutputSettings", "load_library_config", "routine_files", "RoutineError"]
