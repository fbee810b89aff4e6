"""ixws.plugin: the commands of the 4D WebSocket plugin, one function each.

A 4D program written against the plugin ports line by line::

    from ixws.plugin import *

    def WS_callback(server, client, type, context, worker, window, process):
        ...                                   # context is JSON text

    server = websocket_server({"port": 8080, "method": "WS_callback", "worker": "ws"})
    status = websocket_server_start(server)   # {"success": True, "message": ""}
    websocket_server_send(server, "Hello!")   # to all; with server["clients"] = [1, 2]: to those
    server = websocket_server_stop(server)    # the configuration
    websocket_server_clear(server)            # {}: the ref is gone

Each command takes the configuration object a constructor returned (or its
``ref``) and returns plain dicts and lists. ``method`` is called with seven
arguments: the server's ref (0 for a client's events), the connection id (or
the client's ref), the event type, the event's context as JSON text, the
worker name, window and process. In the JSON a payload that is not text is
its base64 and the context then says "encoding": "base64". Everything here is
built on ixws.Server and ixws.Client; README.md ("Porting from the 4D plugin")
has the full mapping.
"""
from __future__ import annotations

import atexit
import collections
import json
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any, Callable, Deque, Dict, List, Optional, Union

from . import Client, Server
from . import _plugin_support as _support

__all__ = [
    "websocket_server",
    "websocket_client",
    "websocket_server_start",
    "websocket_client_start",
    "websocket_server_stop",
    "websocket_client_stop",
    "websocket_server_send",
    "websocket_client_send",
    "websocket_server_clear",
    "websocket_client_clear",
    "websocket_server_clients",
    "websocket_server_messages",
    "websocket_client_messages",
    "config_to_json",
]

ConfigOrRef = Union[Mapping[str, Any], int]

# Seconds websocket_client_start gives the first attempt when the
# configuration sets neither "timeout" nor "handshakeTimeout", as the plugin.
_DEFAULT_START_TIMEOUT = 20
Data = Union[str, bytes, bytearray, memoryview]


class _Entry:
    """What the plugin keeps per ref: the ixws object and the settings that
    every command may change again (method, worker, window, process), as the
    plugin re-reads them from the object each command is given."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.obj: Any = None
        self.method_spec: Any = None
        self.method: Optional[Callable[..., Any]] = None
        self.module: Optional[str] = None
        self.worker_name = ""
        self.worker: Optional[_support.Worker] = None
        self.window: Any = 0
        self.process: Any = 0
        self.timeout: Any = None
        self._queue: Deque[Dict[str, Any]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._apply_lock = threading.Lock()  # commands may come from several threads

    def apply(self, config: Mapping[str, Any]) -> None:
        """Takes method/module/worker/window/process (and a client's timeout)
        from `config` where present; checks everything before changing anything."""
        with self._apply_lock:
            self._apply(config)

    def _apply(self, config: Mapping[str, Any]) -> None:
        module = _support.check_module(config["module"]) if "module" in config else self.module
        spec, method = self.method_spec, self.method
        if "method" in config or module != self.module:
            spec = config.get("method", spec)
            method = _support.resolve_method(spec, module)
        worker_name = _support.check_worker(config["worker"]) if "worker" in config else self.worker_name
        timeout = self.timeout
        if self.kind == "client" and "timeout" in config:
            timeout = config["timeout"]
            if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                        or not timeout > 0):
                raise ValueError(f"option 'timeout' must be a number of seconds > 0, got {timeout!r}")
        if worker_name != self.worker_name or (worker_name and self.worker is None):
            old = self.worker
            self.worker = _support.acquire_worker(worker_name) if worker_name else None
            if old is not None:
                _support.release_worker(old)
        self.worker_name = worker_name
        self.module, self.method_spec, self.method, self.timeout = module, spec, method, timeout
        if "window" in config:
            self.window = config["window"]
        if "process" in config:
            self.process = config["process"]

    def dispose(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            _support.release_worker(worker)
        with self._cond:
            self._queue.clear()

    # The ixws method of the object: turns each event into the plugin's call.
    def on_event(self, ev: Any) -> None:
        method = self.method
        context = _support.context_json(ev.type, ev.context)
        if method is None:
            item = {"type": ev.type, "context": json.loads(context), "server": ev.server, "client": ev.client}
            with self._cond:
                self._queue.append(item)
                self._cond.notify_all()
            return
        args = (ev.server, ev.client, ev.type, context, self.worker_name, self.window, self.process)
        worker = self.worker
        if worker is not None:
            worker.submit(method, args)
        else:
            method(*args)

    def messages(self, timeout: Optional[float]) -> List[Dict[str, Any]]:
        with self._cond:
            if not self._queue and timeout is not None and timeout > 0:
                self._cond.wait_for(lambda: bool(self._queue), timeout)
            out = list(self._queue)
            self._queue.clear()
        return out

    def config(self) -> Dict[str, Any]:
        cfg = self.obj.config
        cfg["method"] = self.method_spec
        cfg["worker"] = self.worker_name
        cfg["window"] = self.window
        cfg["process"] = self.process
        if self.module is not None:
            cfg["module"] = self.module
        if self.timeout is not None:
            cfg["timeout"] = self.timeout
        return cfg


_entries: Dict[int, _Entry] = {}
_entries_lock = threading.Lock()


def _create(kind: str, options: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise TypeError(f"websocket_{kind}() takes an options dict, not {type(options).__name__}")
    opts = dict(options)
    # A configuration given back: its ref (and a server's send targets) are not options.
    opts.pop("ref", None)
    opts.pop("clients", None)
    own = {key: opts.pop(key) for key in ("method", "module", "worker") if key in opts}
    if kind == "client" and "timeout" in opts:
        own["timeout"] = opts.pop("timeout")
    opts.setdefault("window", 0)
    opts.setdefault("process", 0)
    own["window"], own["process"] = opts["window"], opts["process"]
    _support.normalize_deflate(opts)
    entry = _Entry(kind)
    entry.apply(own)
    opts["method"] = entry.on_event
    try:
        entry.obj = Server(opts) if kind == "server" else Client(opts)
    except ValueError as exc:
        entry.dispose()
        if "unknown" in str(exc):
            raise ValueError(f"{exc} (ixws.plugin also takes: {', '.join(_support.PLUGIN_KEYS)})") from None
        raise
    except BaseException:
        entry.dispose()
        raise
    with _entries_lock:
        _entries[entry.obj.ref] = entry
    return entry.config()


def _entry(kind: str, config_or_ref: ConfigOrRef) -> _Entry:
    ref = _support.as_ref(config_or_ref)
    with _entries_lock:
        entry = _entries.get(ref)
    if entry is None:
        raise LookupError(f"no websocket {kind} with ref {ref} (cleared, or not made by ixws.plugin)")
    if entry.kind != kind:
        raise LookupError(f"ref {ref} is a websocket {entry.kind}, not a {kind}")
    if isinstance(config_or_ref, Mapping):
        entry.apply(config_or_ref)
    return entry


def _clear(kind: str, config_or_ref: ConfigOrRef) -> Dict[str, Any]:
    ref = _support.as_ref(config_or_ref)
    with _entries_lock:
        entry = _entries.get(ref)
        if entry is None:
            return {}  # already cleared: as the plugin, nothing to do
        if entry.kind != kind:
            raise LookupError(f"ref {ref} is a websocket {entry.kind}, not a {kind}")
        del _entries[ref]
    try:
        entry.obj.stop()
        entry.obj.close()
    finally:
        entry.dispose()
    return {}


# ------------------------------------------------------------------ server


def websocket_server(options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Websocket server(options): makes a server; returns its configuration with "ref".

    Takes ixws.Server's options (camelCase) plus "worker" (callbacks run on the
    thread of that name) and "module" (where a bare method name is looked up;
    default ``__main__``). A configuration returned here may be given again.
    """
    return _create("server", options)


def websocket_server_start(config: ConfigOrRef) -> Dict[str, Any]:
    """Websocket server start: listens; {"success": bool, "message": str}.

    With port 0, the port bound is written into `config` (when it is a dict).
    """
    entry = _entry("server", config)
    result = entry.obj.start()
    if result.get("success") and isinstance(config, MutableMapping):
        config["port"] = entry.obj.config["port"]
    return result


def websocket_server_stop(config: ConfigOrRef) -> Dict[str, Any]:
    """Websocket server stop: closes every connection and stops listening;
    returns the configuration. Start may be called again."""
    entry = _entry("server", config)
    entry.obj.stop()
    return entry.config()


def websocket_server_send(config: ConfigOrRef, data: Data) -> List[Dict[str, Any]]:
    """Websocket server send: to the ids in config["clients"], else to all.

    str is sent as a text message, bytes as a binary one. One result dict per
    target: {"client", "success", "compressionError", "payloadSize", "wireSize"}.
    """
    entry = _entry("server", config)
    clients = None
    if isinstance(config, Mapping) and config.get("clients") is not None:
        clients = _support.client_ids(config["clients"])
    return entry.obj.send(data, clients)


def websocket_server_clear(config: ConfigOrRef) -> Dict[str, Any]:
    """Websocket server clear: stops, closes and forgets the server; returns {}.

    The ref is no longer valid (other commands raise LookupError); clearing
    it again does nothing.
    """
    return _clear("server", config)


def websocket_server_clients(config: ConfigOrRef) -> List[int]:
    """Websocket server clients: the ids of the open connections."""
    return _entry("server", config).obj.clients()


def websocket_server_messages(config: ConfigOrRef, timeout: Optional[float] = None) -> List[Dict[str, Any]]:
    """Websocket server messages: the events queued while the server has no method.

    Each is {"type", "context", "server", "client"}, context being the parsed
    JSON the method would have been given. Drains the queue; with `timeout`,
    waits up to that many seconds for at least one event.
    """
    return _entry("server", config).messages(timeout)


# ------------------------------------------------------------------ client


def websocket_client(options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Websocket client(options): makes a client; returns its configuration with "ref".

    Takes ixws.Client's options plus "worker", "module" (as for servers) and
    "timeout" (seconds for websocket_client_start's first attempt).
    """
    return _create("client", options)


def websocket_client_start(config: ConfigOrRef) -> Dict[str, Any]:
    """Websocket client start: connects; {"success", "http_status", "errorStr", "uri", "headers"}.

    The first attempt may take the configuration's "timeout" seconds, else its
    "handshakeTimeout", else 20 (the plugin's default).
    """
    entry = _entry("client", config)
    timeout = entry.timeout
    if timeout is None and "handshakeTimeout" not in entry.obj.config:
        timeout = _DEFAULT_START_TIMEOUT
    return entry.obj.start(timeout=timeout)


def websocket_client_stop(config: ConfigOrRef) -> Dict[str, Any]:
    """Websocket client stop: closes the connection (no reconnection); returns the configuration."""
    entry = _entry("client", config)
    entry.obj.stop()
    return entry.config()


def websocket_client_send(config: ConfigOrRef, data: Data) -> Dict[str, Any]:
    """Websocket client send: {"success", "compressionError", "payloadSize", "wireSize"}."""
    return _entry("client", config).obj.send(data)


def websocket_client_clear(config: ConfigOrRef) -> Dict[str, Any]:
    """Websocket client clear: stops, closes and forgets the client; returns {}."""
    return _clear("client", config)


def websocket_client_messages(config: ConfigOrRef, timeout: Optional[float] = None) -> List[Dict[str, Any]]:
    """Websocket client messages: as websocket_server_messages, for a client."""
    return _entry("client", config).messages(timeout)


# ------------------------------------------------------------------ JSON


def config_to_json(config: ConfigOrRef) -> Dict[str, Any]:
    """A JSON-serialisable copy of a configuration (or of a ref's current one).

    ``method`` (and ``onHandshake``) become their "module:function" names;
    a callable without one (a lambda, a bound method) is a ValueError, as is
    any other value json cannot write. websocket_server()/websocket_client()
    accept the result.
    """
    if isinstance(config, Mapping):
        cfg = dict(config)
    else:
        cfg = _entry("server" if _support.as_ref(config) < 0 else "client", config).config()
    out: Dict[str, Any] = {}
    for key, value in cfg.items():
        if key in ("method", "onHandshake"):
            value = _support.method_name(value)
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"option {key!r} cannot be written as JSON: {exc}") from None
        out[key] = value
    return out


def _clear_all() -> None:
    """At interpreter exit, as the plugin at its exit: clear every ref, then let
    the workers run what they were given (bounded)."""
    with _entries_lock:
        refs = list(_entries)
    for ref in refs:
        try:
            _clear("server" if ref < 0 else "client", ref)
        except Exception:  # pragma: no cover - best effort at exit
            _support.logger.exception("ixws.plugin: clearing ref %d at exit failed", ref)
    _support.stop_all_workers(1.0)


atexit.register(_clear_all)


def __dir__() -> List[str]:
    """Only the commands (and config_to_json), not the names used to build them."""
    return sorted(__all__)
