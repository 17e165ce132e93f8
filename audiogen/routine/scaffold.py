"""`audiogen new`: a commented routine to start from."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from audiogen.routine.errors import OutputError
from audiogen.routine.slug import slugify


def scaffold(name: str, folder: Path = Path("."), *, force: bool = False) -> Path:
    """Write `<slug>.yaml` from the template into `folder`; an existing file is replaced only with `force`."""
    slug = slugify(name, fallback="routine")
    target = Path(folder) / f"{slug}.yaml"
    if target.exists() and not force:
        raise OutputError(f"{target} already exists", path=str(target),
                          hint="choose another name, or replace it with --force")
    text = resources.files("audiogen.routine").joinpath("templates", "routine.yaml").read_text("utf-8")
    title = name.strip().replace('"', "'") or "My routine"
    text = text.replace("{filename}", target.name).replace("{title}", f'"{title}"').replace("{{side}}", "{side}")
    from audiogen.routine.atomic import write_text

    write_text(target, text)
    return target
