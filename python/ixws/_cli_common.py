"""Small helpers shared by the ``python -m ixws`` commands."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Optional


class CliError(Exception):
    """A failure the command line reports as one line and exit status 1."""


class Printer:
    """Thread-safe line printer: events arrive on the dispatcher thread."""

    def __init__(self, enabled: bool = True, stream=None) -> None:
        self.enabled = enabled
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, line: str, *, force: bool = False) -> None:
        if not (self.enabled or force):
            return
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


class Tally:
    """Counters updated from callbacks, with bounded waits for a condition.

    ``wait_for(lambda t: t["x"] >= 3, timeout)`` returns True as soon as the
    predicate holds, or False after ``timeout`` seconds: no blind sleeps.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._counts: dict = {}
        self.log: list = []

    def add(self, key: str, amount: int = 1, note: Any = None) -> None:
        with self._cond:
            self._counts[key] = self._counts.get(key, 0) + amount
            if note is not None:
                self.log.append((key, note))
            self._cond.notify_all()

    def __getitem__(self, key: str) -> int:
        with self._cond:
            return self._counts.get(key, 0)

    def wait_for(self, predicate: Callable[["Tally"], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                # The predicate reads counters through __getitem__, which re-enters
                # the (reentrant) condition lock.
                if predicate(self):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def snapshot(self) -> dict:
        with self._cond:
            return dict(self._counts)


def describe_payload(data: Any, limit: int = 48) -> str:
    """A short, printable rendering of a message payload."""
    if isinstance(data, str):
        text = data if len(data) <= limit else data[:limit] + "..."
        return f"text {len(data.encode('utf-8', 'surrogateescape'))}B {text!r}"
    raw = bytes(data)
    shown = raw[:limit].hex(" ")
    if len(raw) > limit:
        shown += " ..."
    return f"binary {len(raw)}B [{shown}]"


def payload_size(data: Any) -> int:
    if isinstance(data, str):
        return len(data.encode("utf-8", "surrogateescape"))
    return len(data)


def shutdown_quietly(obj: Optional[Any]) -> None:
    """stop() then close() a Server or Client, ignoring errors (used on exit paths)."""
    if obj is None:
        return
    for name in ("stop", "close"):
        method = getattr(obj, name, None)
        if method is None:
            continue
        try:
            method()
        except Exception as exc:  # pragma: no cover - best effort cleanup
            print(f"warning: {type(obj).__name__}.{name}() failed: {exc}", file=sys.stderr)
