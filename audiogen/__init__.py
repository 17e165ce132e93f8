"""audiogen: routine scripts in YAML -> narrated, chaptered MP3 guided sessions.

The documented Python API lives in `audiogen.api`; its names are re-exported here on first use, so that
importing a lower floor (`audiogen.routine`, `audiogen.plan`) does not load numpy and the render stack.
"""

from audiogen._version import __version__

__all__ = [
    "AudiogenError", "BuildOptions", "BuildResult", "CheckResult", "Plan", "Routine", "build", "build_routine",
    "available_voices", "check", "install_voice", "load_routine", "new_routine", "open_editor", "parse_routine",
    "plan_file", "plan_routine", "prune_cache", "remove_voice", "routine_schema", "say", "voices", "__version__",
]


def __getattr__(name: str):
    if name in __all__:
        from audiogen import api

        # bind them all at once: importing `api` binds the subpackage `audiogen.build` over the function
        globals().update({n: getattr(api, n) for n in __all__ if n != "__version__"})
        return globals()[name]
    raise AttributeError(f"module 'audiogen' has no attribute {name!r}")
