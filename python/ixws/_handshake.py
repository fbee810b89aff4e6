"""The request a server's onHandshake hook sees, and its answer."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

__all__ = ["Headers", "HandshakeRequest", "answer"]

logger = logging.getLogger("ixws")


class Headers(Mapping):
    """Read-only HTTP headers with case-insensitive names.

    Iteration gives the names as the client spelled them.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Optional[Mapping[str, str]] = None) -> None:
        self._items: Dict[str, Tuple[str, str]] = {}
        for name, value in (items or {}).items():
            self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (spelled for spelled, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self)!r})"


class HandshakeRequest:
    """An upgrade request that passed the protocol checks, before it is answered.

    ``uri`` is the request target (path and query), ``path`` and ``query`` its
    two parts, ``headers`` a case-insensitive mapping, ``remote_ip`` and
    ``remote_port`` the peer's address.
    """

    __slots__ = ("uri", "headers", "remote_ip", "remote_port")

    def __init__(self, uri: str, headers: Mapping[str, str], remote_ip: str, remote_port: int) -> None:
        self.uri = uri
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.remote_ip = remote_ip
        self.remote_port = remote_port

    @property
    def path(self) -> str:
        return self.uri.partition("?")[0]

    @property
    def query(self) -> str:
        return self.uri.partition("?")[2]

    def __repr__(self) -> str:
        return f"<ixws.HandshakeRequest {self.uri!r} from {self.remote_ip}:{self.remote_port}>"


def _rejection(result: Any) -> Optional[Tuple[int, str]]:
    """(status, reason) for a valid rejection value, else None."""
    if not isinstance(result, tuple) or len(result) != 2:
        return None
    status, reason = result
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        return None
    if not isinstance(reason, str):
        return None
    return status, reason.replace("\r", " ").replace("\n", " ")


def answer(hook: Callable[[HandshakeRequest], Any], request: HandshakeRequest, reply: Any) -> None:
    """Calls hook(request) and answers reply: True accepts, False rejects with
    403, (status, reason) with 400 <= status <= 599 rejects with that; an
    exception or any other value rejects with 500 and is logged."""
    try:
        result = hook(request)
    except BaseException:
        logger.exception("ixws: exception in onHandshake for %r; answering 500", request)
        reply.reject(500, "Internal Server Error")
        return
    if result is True:
        reply.accept()
        return
    if result is False:
        reply.reject(403, "Forbidden")
        return
    rejection = _rejection(result)
    if rejection is None:
        logger.error("ixws: onHandshake returned %r for %r; expected True, False or (status 400..599, "
                     "reason); answering 500", result, request)
        reply.reject(500, "Internal Server Error")
        return
    reply.reject(*rejection)
