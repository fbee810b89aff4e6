"""The process-wide dispatcher: one daemon thread takes engine events from
_ixws.next_events() (which waits with the GIL released) and routes each batch,
in order, to the Server/Client objects by ref through a weak registry.
"""
from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import threading
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, TypeVar

from . import _ixws
from ._event import Event

logger = logging.getLogger("ixws")

_E = TypeVar("_E", bound="Endpoint")

_registry: Dict[int, "weakref.ReferenceType[Endpoint]"] = {}
_registry_lock = threading.Lock()
_client_refs = itertools.count(1)
_server_refs = itertools.count(1)

_thread: Optional[threading.Thread] = None
_thread_lock = threading.Lock()
_stopping = False

# How long one next_events() call waits; only bounds the reaction to _stopping
# when wake() is somehow missed.
_POLL_SECONDS = 1.0


def next_client_ref() -> int:
    return next(_client_refs)


def next_server_ref() -> int:
    return -next(_server_refs)


_inline = threading.local()  # .active: this engine thread is running callbacks


def in_dispatcher() -> bool:
    """True when called from a callback (dispatcher thread or inline delivery)."""
    return threading.current_thread() is _thread or getattr(_inline, "active", False)


def _deliver_batch(batch: list) -> None:
    registry = _registry
    for item in batch:
        kind = item[0]
        if kind == "log":  # an engine log line of a server
            logger.log(logging.WARNING if item[3] else logging.INFO, "%s", item[4])
            continue
        if kind == "handshake":  # a request for a server's onHandshake
            wref = registry.get(item[1])
            obj = wref() if wref is not None else None
            try:
                if obj is None:
                    item[7].reject(503, "Service Unavailable")
                else:
                    obj._handshake(item)
            except BaseException:  # pragma: no cover - defensive: keep dispatching
                logger.exception("ixws: handshake request %r failed", item[3])
                item[7].reject(500, "Internal Server Error")
            del obj
            continue
        wref = registry.get(item[1])
        obj = wref() if wref is not None else None
        if obj is not None:
            obj._deliver(item)
        del obj


def _deliver_inline(batch: list) -> None:
    """Called by an engine thread with the events of one loop pass (see
    set_inline_delivery in src/module.cpp): same order and rules as _run."""
    _inline.active = True
    try:
        _deliver_batch(batch)
    except BaseException:  # pragma: no cover - defensive
        logger.exception("ixws: inline delivery failed")
    finally:
        _inline.active = False


def _run() -> None:
    next_events = _ixws.next_events
    while not _stopping:
        try:
            batch = next_events(_POLL_SECONDS)
        except BaseException:  # pragma: no cover - defensive
            if _stopping:
                return
            logger.exception("ixws dispatcher: next_events failed")
            continue
        _deliver_batch(batch)
    _ixws.flush_sends()


_inline_wanted = True


def set_inline_callbacks(enabled: bool) -> None:
    """Chooses where callbacks may run (process-wide; default True).

    True: when no callback is running and nothing is queued, the engine thread
    that read the events runs their callbacks itself (no thread switch: lowest
    latency); otherwise the dispatcher thread does. False: always the
    ``ixws-dispatcher`` thread, so a slow callback never delays the engine's
    I/O (events then wait in memory until handled). Either way callbacks run
    one at a time, in order per connection. Returns once no engine thread is
    running a callback any more when switching off.
    """
    global _inline_wanted
    if enabled is not True and enabled is not False:
        raise TypeError("enabled must be a bool")
    _inline_wanted = enabled
    with _thread_lock:
        if _thread is not None and not _stopping:
            _ixws.set_inline_delivery(_deliver_inline if enabled else None)


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _thread_lock:
        if _thread is not None and _thread.is_alive():
            return
        if _stopping:
            return
        t = threading.Thread(target=_run, name="ixws-dispatcher", daemon=True)
        _thread = t
        t.start()
        if _inline_wanted:
            _ixws.set_inline_delivery(_deliver_inline)


def register(obj: "Endpoint") -> None:
    with _registry_lock:
        _registry[obj.ref] = weakref.ref(obj)
    _ensure_thread()


def unregister(ref: int) -> None:
    with _registry_lock:
        _registry.pop(ref, None)


def live_objects() -> List["Endpoint"]:
    with _registry_lock:
        refs = list(_registry.values())
    out = []
    for r in refs:
        obj = r()
        if obj is not None:
            out.append(obj)
    return out


def shutdown(timeout: float = 2.0) -> None:
    """Closes every live object, then stops the dispatcher (used at exit)."""
    global _stopping
    # This thread finalizes the interpreter next: it may still call ixws then.
    _ixws.mark_exit_thread()
    # From here on engine threads leave Python alone: events wait for the dispatcher.
    _ixws.set_inline_delivery(None)
    for obj in live_objects():
        try:
            obj._shutdown()
        except Exception:  # pragma: no cover - best effort at exit
            logger.exception("ixws: error while closing %r at exit", obj)
    _stopping = True
    _ixws.wake()
    t = _thread
    if t is not None and t is not threading.current_thread():
        t.join(timeout)


atexit.register(shutdown)


def _after_fork_in_child() -> None:
    """os.fork() child: the engine's threads did not survive the fork and every
    socket is shared with the parent. Inherited servers and clients become
    closed without touching the wire (their engine objects are leaked, never
    used again); new ones work, on engine loops the child creates afresh. Locks
    that other threads held at fork time are replaced, not waited for."""
    global _registry_lock, _thread_lock, _thread
    _registry_lock = threading.Lock()
    _thread_lock = threading.Lock()
    _thread = None
    inherited = [r() for r in _registry.values()]
    _registry.clear()
    for obj in inherited:
        if obj is not None:
            obj._abandon_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Endpoint:
    """Shared machinery of Server and Client: event delivery and messages()."""

    _method: Optional[Callable[[Event], Any]]

    def __init__(self, ref: int, server_ref: int, method: Optional[Callable[[Event], Any]],
                 window: Any, process: Any) -> None:
        self._ref = ref
        self._server_ref = server_ref
        self._method = method
        self._window = window
        self._process = process
        self._queue: Deque[Event] = collections.deque()
        self._queue_cond = threading.Condition(threading.Lock())

    @property
    def ref(self) -> int:
        return self._ref

    # Called on the dispatcher thread for every engine event of this object.
    def _deliver(self, item: tuple) -> None:
        ev = Event._from_engine(item, self._server_ref, self._window, self._process)
        method = self._method
        if method is not None:
            try:
                method(ev)
            except BaseException:
                logger.exception("ixws: exception in method for %r", ev)
            return
        with self._queue_cond:
            self._queue.append(ev)
            self._queue_cond.notify_all()

    def messages(self, timeout: Optional[float] = None) -> List[Event]:
        """Drains the events queued so far (only used when no method is set).

        With a timeout, waits up to that many seconds for at least one event.
        """
        with self._queue_cond:
            if not self._queue and timeout is not None and timeout > 0:
                if in_dispatcher():
                    raise RuntimeError("messages(timeout=...) cannot wait inside a callback")
                self._queue_cond.wait_for(lambda: bool(self._queue), timeout)
            out = list(self._queue)
            self._queue.clear()
        return out

    # Lifecycle shared by Server and Client: subclasses set _closed = False and
    # _finalizer (a weakref.finalize that stops and releases the engine object).
    _closed: bool
    _finalizer: Callable[[], Any]

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stops the object and releases it; it cannot be started again."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    def _shutdown(self) -> None:
        self.close()

    def _abandon_after_fork(self) -> None:
        """See _after_fork_in_child."""
        self._closed = True
        self._queue_cond = threading.Condition(threading.Lock())
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()
        core = getattr(self, "_core", None)
        if core is not None:
            core.abandon_after_fork()

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
