"""ixws.Server: a WebSocket server on the engine's ix::WebSocketServer."""
from __future__ import annotations

import threading
import weakref
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from . import _dispatch, _handshake, _ixws, _options
from ._event import Event

__all__ = ["Server"]

Data = Union[str, bytes, bytearray, memoryview]


def _release(core: Any, ref: int) -> None:
    """Finalizer: stops the engine server (no reference to the Server itself)."""
    _dispatch.unregister(ref)
    core.stop(1001, "Going away", -1)


class Server(_dispatch.Endpoint):
    """A WebSocket server.

    ``Server({"port": 8008, "method": on_event, ...})`` or with keyword
    arguments in snake_case (``Server(port=8008, max_connections=10)``).
    See DESIGN.md section 2 for the options and the events.
    """

    def __init__(self, options: Optional[Mapping[str, Any]] = None, /, **kwargs: Any) -> None:
        config = _options.server_options(options, kwargs)
        info = _ixws.engine_info()
        extensions = info["extensions"]
        _options.check_extensions(config, extensions, info["engine"])
        method = _options.resolve_method(config["method"])
        self._on_handshake = _options.resolve_method(config.get("onHandshake"), "onHandshake")
        ref = _dispatch.next_server_ref()
        super().__init__(ref, ref, method, config["window"], config["process"])
        self._config: Dict[str, Any] = {"ref": ref, **config}

        # perMessageDeflate on a server is its policy: whether offers are accepted,
        # the largest windows (its own, and the one asked of clients) and whether
        # no_context_takeover is used/asked (see extern/ixwebsocket/README.md).
        deflate = config.get("perMessageDeflate")
        disable_deflate = bool(config.get("disablePerMessageDeflate", False)) or (
            deflate is not None and not deflate["enabled"])
        core_deflate = _options.engine_deflate(deflate)
        core_tls = _options.engine_tls(config.get("tls"), server=True)
        self._core = _ixws.ServerCore(
            ref=ref,
            port=config["port"],
            host=config["host"],
            backlog=config["backlog"],
            max_connections=config["maxConnections"],
            handshake_timeout=config.get("handshakeTimeout", 3),
            ping_interval=config.get("pingInterval", -1),
            enable_pong=config.get("enablePong", True),
            disable_per_message_deflate=disable_deflate,
            max_message_size=_options.max_message_size(config, extensions),
            tls=core_tls,
            subprotocols=list(config.get("subprotocols", [])),
            per_message_deflate=core_deflate,
            handshake_hook=self._on_handshake is not None,
            max_pending_handshakes=_options.max_pending_handshakes(config, extensions),
        )
        slow = _options.slow_consumer_args(config, extensions)
        if slow is not None:
            self._core.set_send_buffer_limit(*slow)
        self._lock = threading.Lock()
        self._closed = False
        _dispatch.register(self)
        self._finalizer = weakref.finalize(self, _release, self._core, ref)

    # ------------------------------------------------------------ properties

    @property
    def config(self) -> Dict[str, Any]:
        """The current configuration plus "ref" (a copy)."""
        return dict(self._config)

    @property
    def port(self) -> int:
        return self._config["port"]

    @property
    def running(self) -> bool:
        return not self._closed and self._core.running

    def _live_core(self) -> Any:
        if self._closed:
            raise RuntimeError("this ixws.Server is closed")
        return self._core

    # ------------------------------------------------------------- lifecycle

    def start(self) -> Dict[str, Any]:
        """Binds and starts accepting: {"success": bool, "message": str}.

        With port 0 a free port is bound and config["port"] then holds it.
        """
        core = self._live_core()
        ok, message = core.start()
        if ok:
            self._config["port"] = core.port
        return {"success": ok, "message": message}

    def stop(self, code: int = 1001, reason: str = "Going away", timeout: Optional[float] = None) -> None:
        """Graceful stop: stops accepting, closes every connection with (code,
        reason), waits up to `timeout` seconds (default 1.5) for their close
        handshakes, then drops the rest. Restartable with start().

        Built against upstream IXWebSocket, connections always get 1000
        "Normal closure" and the engine's own bound applies.
        """
        if self._closed:
            return
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError("code must be an int")
        if not 0 <= code <= 65535:
            raise ValueError("code must be in 0..65535")
        if not isinstance(reason, str):
            raise TypeError("reason must be a str")
        timeout_ms = -1
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError("timeout must be a number of seconds")
            if not timeout >= 0:
                raise ValueError("timeout must be >= 0")
            timeout_ms = int(round(timeout * 1000))
        self._core.stop(code, reason, timeout_ms)

    def _handshake(self, item: tuple) -> None:
        """Dispatcher thread: answers a handshake request with onHandshake."""
        request = _handshake.HandshakeRequest(item[3], item[4], item[5], item[6])
        hook = self._on_handshake
        if hook is None:  # pragma: no cover - the engine only asks when a hook is set
            item[7].accept()
            return
        _handshake.answer(hook, request, item[7])

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self._core.running else "stopped")
        return f"<ixws.Server ref={self.ref} {self._config['host']}:{self._config['port']} {state}>"

    # ----------------------------------------------------------- connections

    def clients(self) -> List[int]:
        """Ids of the open connections, sorted (ids are never reused by one Server)."""
        if self._closed:
            return []
        return self._core.clients()

    def buffered_amount(self, client: int) -> Optional[int]:
        """Bytes queued for one connection and not yet written (None if it is not open)."""
        if isinstance(client, bool) or not isinstance(client, int):
            raise TypeError("client must be an int connection id")
        if self._closed:
            return None
        return self._core.buffered_amount(client)

    def send(self, data: Data, clients: Optional[Iterable[int]] = None, *,
             compress: bool = True) -> List[Dict[str, Any]]:
        """Sends a text (str) or binary (bytes-like) message to all or some clients.

        Returns one dict per target: {"client", "success", "compressionError",
        "payloadSize", "wireSize"}; wireSize is the compressed size on a
        connection with permessage-deflate. A closed or unknown id gives success
        False; a connection over its sendBufferLimit adds "reason": "send buffer
        full". ``compress=False`` sends this message uncompressed (RSV1 clear).
        Sending to several connections frames the message once in the engine.
        """
        if self._closed:
            raise RuntimeError("this ixws.Server is closed")
        if clients is not None and clients.__class__ is not list:
            clients = list(clients)
        if compress is not True and compress is not False:
            raise TypeError("compress must be a bool")
        return self._core.send(data, clients, compress)

    def ping(self, data: Data = b"", clients: Optional[Iterable[int]] = None) -> List[Dict[str, Any]]:
        """Sends a ping (payload up to 125 bytes) to all or some clients."""
        core = self._live_core()
        if clients is not None:
            clients = list(clients)
        return core.ping(data, clients)

    def close_client(self, client: int, code: int = 1000, reason: str = "Normal closure") -> bool:
        """Starts the close handshake with one connection. False if it is not open."""
        core = self._live_core()
        if isinstance(client, bool) or not isinstance(client, int):
            raise TypeError("client must be an int connection id")
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError("code must be an int")
        if not isinstance(reason, str):
            raise TypeError("reason must be a str")
        return core.close_client(client, code, reason)

    def messages(self, timeout: Optional[float] = None) -> List[Event]:
        """Drains queued events (when no method is given); see Endpoint.messages."""
        return super().messages(timeout)
