"""The documented Python API (filled in as the floors land)."""

from audiogen.build import BuildOptions, BuildResult, build, build_routine
from audiogen.errors import AudiogenError
from audiogen.loader import load_routine, parse_routine
from audiogen.model import Routine, routine_schema
from audiogen.planner import Plan, plan_routine

__all__ = [
    "AudiogenError", "BuildOptions", "BuildResult", "Plan", "Routine", "build", "build_routine",
    "load_routine", "parse_routine", "plan_routine", "routine_schema",
]
