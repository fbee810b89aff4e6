"""ixws.Event: one engine event handed to `method` or returned by messages()."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

__all__ = ["Event", "EVENT_TYPES"]

EVENT_TYPES = ("open", "message", "ping", "pong", "fragment", "close", "error")
_DATA_TYPES = frozenset(("message", "ping", "pong", "fragment"))


class Event:
    """An event of a Server connection or of a Client.

    ``type`` is one of "open", "message", "ping", "pong", "fragment", "close",
    "error". ``server`` is the server's ref (0 for a standalone client) and
    ``client`` the connection id (or the client's ref). ``window`` and
    ``process`` are the opaque values given in the options. ``context`` is the
    seed's JSON-shaped dict for the type; the same values are attributes.
    Attributes that do not apply to the type are None.
    """

    __slots__ = (
        "type",
        "server",
        "client",
        "window",
        "process",
        "_context",
        # message / ping / pong / fragment
        "data",
        "binary",
        "wireSize",
        "decompressionError",
        # open
        "uri",
        "headers",
        "protocol",
        # close
        "code",
        "reason",
        "remote",
        # error
        "http_status",
        "wait_time",
        "retries",
    )

    type: str
    server: int
    client: int
    window: Any
    process: Any
    data: Optional[Union[str, bytes]]
    binary: Optional[bool]
    wireSize: Optional[int]
    decompressionError: Optional[bool]
    uri: Optional[str]
    headers: Optional[Dict[str, str]]
    protocol: Optional[str]
    code: Optional[int]
    reason: Optional[str]
    remote: Optional[bool]
    http_status: Optional[int]
    wait_time: Optional[float]
    retries: Optional[int]

    def __init__(self, type: str, server: int = 0, client: int = 0, window: Any = None,
                 process: Any = None, **attributes: Any) -> None:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        self.type = type
        self.server = server
        self.client = client
        self.window = window
        self.process = process
        self._context = None
        for name in Event.__slots__[6:]:
            setattr(self, name, None)
        for name, value in attributes.items():
            if name not in Event.__slots__[6:]:
                raise TypeError(f"Event has no attribute {name!r}")
            setattr(self, name, value)

    @classmethod
    def _from_engine(cls, t: Tuple[Any, ...], server: int, window: Any, process: Any) -> "Event":
        """Builds an Event from a tuple of _ixws.next_events() (see src/module.cpp)."""
        # Only the attributes of this type are stored; the others read as None
        # through __getattr__ (fewer stores per event on the hot path).
        ev = cls.__new__(cls)
        kind = t[0]
        ev.type = kind
        ev.server = server
        ev.client = t[2]
        ev.window = window
        ev.process = process
        if kind in _DATA_TYPES:
            ev.data, ev.binary, ev.wireSize, ev.decompressionError = t[3], t[4], t[5], t[6]
        elif kind == "open":
            ev.uri, ev.headers, ev.protocol = t[3], t[4], t[5]
        elif kind == "close":
            ev.code, ev.reason, ev.remote = t[3], t[4], t[5]
        elif kind == "error":
            ev.reason, ev.http_status, ev.wait_time, ev.retries, ev.decompressionError = t[3:8]
        return ev

    def __getattr__(self, name: str) -> Any:
        # Called only for slots never set: attributes that do not apply are None.
        if name in _SLOTS:
            return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def context(self) -> Dict[str, Any]:
        """The seed's per-type dict (built on first access)."""
        ctx = self._context
        if ctx is None:
            kind = self.type
            if kind in _DATA_TYPES:
                ctx = {"wireSize": self.wireSize, "binary": self.binary, "data": self.data}
            elif kind == "open":
                ctx = dict(self.headers or {})
                ctx["uri"] = self.uri
                ctx["protocol"] = self.protocol
            elif kind == "close":
                ctx = {"code": self.code, "reason": self.reason, "remote": self.remote}
            else:
                ctx = {
                    "decompressionError": self.decompressionError,
                    "reason": self.reason,
                    "http_status": self.http_status,
                    "wait_time": self.wait_time,
                    "retries": self.retries,
                }
            self._context = ctx
        return ctx

    def __repr__(self) -> str:
        if self.type in _DATA_TYPES:
            data = self.data
            shown = repr(data if data is None or len(data) <= 40 else data[:40]) + (
                "..." if data is not None and len(data) > 40 else "")
            detail = f" data={shown} binary={self.binary}"
        elif self.type == "open":
            detail = f" uri={self.uri!r}"
        elif self.type == "close":
            detail = f" code={self.code} reason={self.reason!r} remote={self.remote}"
        else:
            detail = f" reason={self.reason!r}"
        return f"<ixws.Event {self.type} server={self.server} client={self.client}{detail}>"


_SLOTS = frozenset(Event.__slots__)
