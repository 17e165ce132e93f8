"""Threads for the network engine (gTTS): `run_threads` hands phrases to a few daemon threads, so a
KeyboardInterrupt never waits for an HTTP request to time out, and `RateLimiter` is the token bucket
those threads share."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence


class RateLimiter:
    """A token bucket shared by threads: at most `rate` acquisitions a second, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self._clock, self._sleep = clock, sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting for it if the bucket is empty; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0  # below zero = a reservation: concurrent callers queue up in turn
            wait_s = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait_s > 0:
            self._sleep(wait_s)
        return wait_s


def run_threads(fn: Callable[[object], object], items: Sequence[object], workers: int,
                on_result: Callable[[int, object], None]) -> None:
    """`fn(item)` for every item on up to `workers` daemon threads; `on_result(index, value)` runs here.

    The first failure stops the hand-out; calls already under way finish (and land), then it is raised.
    On KeyboardInterrupt nothing is waited for: the threads are daemons and take no new item.
    """
    pending = deque(enumerate(items))
    lock = threading.Lock()
    stop = threading.Event()
    results: queue.Queue = queue.Queue()
    taken = [0]

    def loop() -> None:
        while not stop.is_set():
            with lock:
                if not pending:
                    return
                index, item = pending.popleft()
                taken[0] += 1
            try:
                results.put((index, True, fn(item)))
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                results.put((index, False, e))

    threads = [threading.Thread(target=loop, daemon=True, name=f"audiogen-synth-{i + 1}")
               for i in range(max(1, min(workers, len(items))))]
    for t in threads:
        t.start()
    received = 0
    error: BaseException | None = None
    try:
        while True:
            with lock:
                done = received == taken[0] and (stop.is_set() or not pending)
            if done:
                break
            try:
                index, ok, value = results.get(timeout=0.1)
            except queue.Empty:
                continue
            received += 1
            if ok:
                on_result(index, value)
            else:
                error = error or value
                stop.set()
    except BaseException:
        stop.set()
        raise
    if error is not None:
        raise error
