"""`audiogen new`: a commented routine to start from (a general one, or one of a few kinds of session)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from audiogen.routine.errors import OutputError
from audiogen.routine.slug import slugify

#: The templates `audiogen new --template` and the editor offer, besides the general one ("routine").
TEMPLATES = ("breathing", "stretch", "massage", "workout", "meditation")


def template_text(template: str, title: str, filename: str) -> str:
    """A template's YAML with its title and file name filled in."""
    if template not in ("routine", *TEMPLATES):
        raise OutputError(f"no template {template!r}", hint="one of: " + ", ".join(TEMPLATES))
    text = resources.files("audiogen.routine").joinpath("templates", f"{template}.yaml").read_text("utf-8")
    title = title.strip().replace('"', "'") or "My routine"
    return text.replace("{filename}", filename).replace("{title}", f'"{title}"').replace("{{side}}", "{side}")


def scaffold(name: str, folder: Path = Path("."), *, force: bool = False, template: str = "routine") -> Path:
    """Write `<slug>.yaml` from a template into `folder`; an existing file is replaced only with `force`."""
    slug = slugify(name, fallback="routine")
    target = Path(folder) / f"{slug}.yaml"
    if target.exists() and not force:
        raise OutputError(f"{target} already exists", path=str(target),
                          hint="choose another name, or replace it with --force")
    text = template_text(template, name, target.name)
    from audiogen.routine.atomic import write_text

    write_text(target, text)
    return target
