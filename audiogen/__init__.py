"""audiogen: routine scripts in YAML -> narrated, chaptered MP3 guided sessions."""

__version__ = "0.1.0"

from .build import BuildOptions, BuildResult, build, build_routine  # noqa: E402
from .errors import AudiogenError  # noqa: E402
from .loader import load_routine, parse_routine  # noqa: E402
from .model import Routine, routine_schema  # noqa: E402
from .planner import Plan, plan_routine  # noqa: E402

__all__ = [
    "AudiogenError", "BuildOptions", "BuildResult", "Plan", "Routine", "build", "build_routine",
    "load_routine", "parse_routine", "plan_routine", "routine_schema", "__version__",
]
