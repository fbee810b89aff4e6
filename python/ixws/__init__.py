"""ixws: fast WebSocket server and client on a C++17 IXWebSocket-compatible engine.

    import ixws
    server = ixws.Server({"port": 0, "method": print})
    server.start()
"""
from __future__ import annotations

from typing import Any, Dict, List

from . import _ixws
from ._client import Client
from ._dispatch import set_inline_callbacks
from ._event import Event
from ._handshake import HandshakeRequest, Headers
from ._server import Server

__all__ = ["Server", "Client", "Event", "HandshakeRequest", "Headers", "engine_info", "set_inline_callbacks",
           "__version__"]

try:
    from importlib.metadata import PackageNotFoundError, version as _dist_version

    try:
        __version__: str = _dist_version("ixws")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        __version__ = "0.1.0"
except ImportError:  # pragma: no cover
    __version__ = "0.1.0"


def engine_info() -> Dict[str, Any]:
    """Which engine the module was built with.

    {"engine": "bundled" | "system", "version": IX_WEBSOCKET_VERSION,
     "extensions": bool} (plus "engine_version" for the bundled engine).
    """
    return dict(_ixws.engine_info())


def __dir__() -> List[str]:
    """Only the public API, not the names used to build it (typing, private modules).

    The submodule ixws.plugin is imported on its own: ``import ixws.plugin``.
    """
    return sorted(__all__)
