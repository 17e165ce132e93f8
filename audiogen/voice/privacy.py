"""The one offline switch: `AUDIOGEN_OFFLINE` (or `--offline`) read the same way by every engine and the
narrator, and the switches that keep dependencies from phoning home."""

from __future__ import annotations

import os

OFFLINE_ENV = "AUDIOGEN_OFFLINE"
_TRUTHY = frozenset({"1", "true", "yes", "on"})


def offline_mode() -> bool:
    """True when AUDIOGEN_OFFLINE asks audiogen never to touch the network (1, true, yes or on)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUTHY


def quiet_onnxruntime() -> None:
    """onnxruntime writes a device id and a queue of telemetry events under ~/.cache/Microsoft whether
    or not audiogen is offline: switch that off before it starts, here and in every worker process."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
