"""Orchestration, the top floor below the API: the library walk, the jobs, the manifest and its lock,
local stages and the cluster.

`pipeline` (build: paths -> groups -> narrate, then render on threads), `jobs` (options, results and
the sessions to make), `sessions` (one session's files), `manifest`, `cluster` (the same stages on
Dask), `check` (validation and planned lengths without synthesis).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audiogen.build.jobs import BuildOptions, BuildResult
    from audiogen.build.pipeline import build, build_routine

__all__ = ["BuildOptions", "BuildResult", "build", "build_routine"]


def __getattr__(name: str):
    """Imported on first use: `audiogen.build.noop` (the no-op fast path) must not load the render stack."""
    if name in ("BuildOptions", "BuildResult"):
        from audiogen.build import jobs

        return getattr(jobs, name)
    if name in ("build", "build_routine"):
        from audiogen.build import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'audiogen.build' has no attribute {name!r}")
