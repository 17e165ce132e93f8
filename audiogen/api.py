"""The documented Python API (filled in as the floors land)."""

from audiogen.build import BuildOptions, BuildResult, build, build_routine
from audiogen.plan.planner import Plan, plan_routine
from audiogen.routine.errors import AudiogenError
from audiogen.routine.loader import load_routine, parse_routine
from audiogen.routine.model import Routine, routine_schema

__all__ = [
    "AudiogenError", "BuildOptions", "BuildResult", "Plan", "Routine", "build", "build_routine",
    "load_routine", "parse_routine", "plan_routine", "routine_schema",
]
