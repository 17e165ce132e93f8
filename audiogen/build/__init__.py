"""Orchestration, the top floor below the API: the library walk, the jobs, the manifest and its lock,
local stages and the cluster.

`pipeline` (build: paths -> groups -> narrate, then render on threads), `jobs` (options, results and
the sessions to make), `sessions` (one session's files), `manifest`, `cluster` (the same stages on
Dask), `check` (validation and planned lengths without synthesis).
"""

from audiogen.build.jobs import BuildOptions, BuildResult
from audiogen.build.pipeline import build, build_routine

__all__ = ["BuildOptions", "BuildResult", "build", "build_routine"]
