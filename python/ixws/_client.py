"""ixws.Client: a WebSocket client on the engine's ix::WebSocket."""
from __future__ import annotations

import math
import weakref
from typing import Any, Dict, List, Mapping, Optional, Union

from . import _dispatch, _ixws, _options
from ._event import Event

__all__ = ["Client"]

Data = Union[str, bytes, bytearray, memoryview]


def _release(core: Any, ref: int) -> None:
    """Finalizer: stops the engine client (no reference to the Client itself)."""
    _dispatch.unregister(ref)
    core.stop(1000, "Normal closure")


class Client(_dispatch.Endpoint):
    """A WebSocket client.

    ``Client({"url": "ws://127.0.0.1:8008/chat", "method": on_event, ...})`` or
    with keyword arguments in snake_case. See DESIGN.md section 2.
    """

    def __init__(self, options: Optional[Mapping[str, Any]] = None, /, **kwargs: Any) -> None:
        config = _options.client_options(options, kwargs)
        info = _ixws.engine_info()
        extensions = info["extensions"]
        _options.check_extensions(config, extensions, info["engine"])
        method = _options.resolve_method(config["method"])
        ref = _dispatch.next_client_ref()
        super().__init__(ref, 0, method, config["window"], config["process"])
        self._config: Dict[str, Any] = {"ref": ref, **config}

        deflate = config.get("perMessageDeflate")
        core_deflate = _options.engine_deflate(deflate)
        core_tls = _options.engine_tls(config.get("tls"), server=False)
        self._core = _ixws.ClientCore(
            ref=ref,
            url=config["url"],
            extra_headers=dict(config.get("extraHeaders", {})),
            ping_interval=config["pingInterval"],
            ping_timeout=config["pingTimeout"],
            enable_pong=config["enablePong"],
            automatic_reconnection=config["enableAutomaticReconnection"],
            min_wait=config.get("minWaitBetweenReconnectionRetries", 1),
            max_wait=config.get("maxWaitBetweenReconnectionRetries", 10000),
            handshake_timeout=config.get("handshakeTimeout", 60),
            per_message_deflate=core_deflate,
            disable_per_message_deflate=bool(config.get("disablePerMessageDeflate", False)),
            subprotocols=list(config.get("subprotocols", [])),
            max_message_size=_options.max_message_size(config, extensions),
            tls=core_tls,
        )
        slow = _options.slow_consumer_args(config, extensions)
        if slow is not None:
            self._core.set_send_buffer_limit(*slow)
        self._closed = False
        _dispatch.register(self)
        self._finalizer = weakref.finalize(self, _release, self._core, ref)

    # ------------------------------------------------------------ properties

    @property
    def config(self) -> Dict[str, Any]:
        """The current configuration plus "ref" (a copy)."""
        return dict(self._config)

    @property
    def ready_state(self) -> str:
        """"CONNECTING", "OPEN", "CLOSING" or "CLOSED"."""
        if self._closed:
            return "CLOSED"
        return self._core.ready_state()

    @property
    def buffered_amount(self) -> int:
        """Bytes queued for sending and not yet written to the socket."""
        if self._closed:
            return 0
        return self._core.buffered_amount()

    def _live_core(self) -> Any:
        if self._closed:
            raise RuntimeError("this ixws.Client is closed")
        return self._core

    # ------------------------------------------------------------- lifecycle

    def start(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Connects now (on this thread, GIL released) with a timeout in seconds.

        Returns {"success", "http_status", "errorStr", "uri", "headers"}. A failed
        attempt also emits an "error" event; with automatic reconnection on, the
        engine keeps retrying in the background with upstream's backoff (the
        event's retries and wait_time say which failure it was and how long the
        client now waits). Redirects (3xx with Location, up to 10) are followed
        within the timeout.
        """
        core = self._live_core()
        if timeout is None:
            timeout_secs = self._config.get("handshakeTimeout", 60)
        else:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError("timeout must be a number of seconds")
            if not timeout > 0:
                raise ValueError("timeout must be > 0")
            timeout_secs = max(1, int(math.ceil(timeout)))
        success, status, error, uri, headers = core.start(timeout_secs)
        return {"success": success, "http_status": status, "errorStr": error, "uri": uri,
                "headers": headers}

    def stop(self, code: int = 1000, reason: str = "Normal closure") -> None:
        """Closes the connection with (code, reason) and stops reconnecting.

        Blocks until the close handshake ends (bounded). Restartable with start().
        """
        if self._closed:
            return
        _check_close(code, reason)
        self._core.stop(code, reason)

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._core.ready_state()
        return f"<ixws.Client ref={self.ref} {self._config['url']} {state}>"

    # ------------------------------------------------------------- messaging

    def send(self, data: Data, *, compress: bool = True) -> Dict[str, Any]:
        """Sends text (str) or binary (bytes-like) data.

        Returns {"success", "compressionError", "payloadSize", "wireSize"};
        wireSize is the compressed size when permessage-deflate is in use.
        success is False when the connection is not open. A str that is not
        valid UTF-8 (lone surrogates) raises ValueError. ``compress=False``
        sends this message uncompressed (RSV1 clear).
        """
        if not isinstance(compress, bool):
            raise TypeError("compress must be a bool")
        return self._live_core().send(data, compress)

    def ping(self, data: Data = b"") -> Dict[str, Any]:
        """Sends a ping (payload up to 125 bytes)."""
        return self._live_core().ping(data)

    def messages(self, timeout: Optional[float] = None) -> List[Event]:
        """Drains queued events (when no method is given); see Endpoint.messages."""
        return super().messages(timeout)


def _check_close(code: Any, reason: Any) -> None:
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError("code must be an int")
    if not 0 <= code <= 65535:
        raise ValueError("code must be in 0..65535")
    if not isinstance(reason, str):
        raise TypeError("reason must be a str")
