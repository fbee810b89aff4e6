"""Validation of Server/Client options.

Options are given as a dict with the seed's camelCase keys and/or as keyword
arguments in snake_case (camelCase keywords are accepted too). Giving one key
both ways is an error. Bad options fail at construction, naming the key:

- unknown key            -> ValueError listing the valid keys
- wrong type             -> TypeError naming the key
- value out of range     -> ValueError naming the key
"""
from __future__ import annotations

import functools
import importlib
import os
import re
from collections.abc import Mapping
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

__all__ = [
    "SERVER_KEYS",
    "CLIENT_KEYS",
    "camel_to_snake",
    "resolve_method",
    "server_options",
    "client_options",
    "engine_deflate",
    "engine_tls",
]

_MISSING = object()
_UINT32_MAX = 2**32 - 1
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


@functools.lru_cache(maxsize=512)
def camel_to_snake(name: str) -> str:
    """maxConnections -> max_connections."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# ----------------------------------------------------------------- checkers


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_int(key: str, value: Any, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    # bool is an int subclass; True as a port or a size is a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"option {key!r} must be an int, not {_type_name(value)}")
    if lo is not None and value < lo:
        raise ValueError(f"option {key!r} must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"option {key!r} must be <= {hi}, got {value}")
    return int(value)


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"option {key!r} must be a bool, not {_type_name(value)}")
    return value


def _check_str(key: str, value: Any, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise TypeError(f"option {key!r} must be a str, not {_type_name(value)}")
    if not empty and not value:
        raise ValueError(f"option {key!r} must not be empty")
    return value


def _check_any(key: str, value: Any) -> Any:
    return value


def resolve_method(value: Any, key: str = "method") -> Optional[Callable[..., Any]]:
    """A callable, None, or "package.module:function" (attribute paths allowed)."""
    if value is None:
        return None
    if isinstance(value, str):
        module_name, sep, attr_path = value.partition(":")
        if not sep or not module_name or not attr_path:
            raise ValueError(
                f"option {key!r} must be a callable or a 'package.module:function' string, got {value!r}"
            )
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"option {key!r}: cannot import module {module_name!r}: {exc}") from exc
        for part in attr_path.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError as exc:
                raise ValueError(f"option {key!r}: {module_name!r} has no attribute {attr_path!r}") from exc
        if not callable(obj):
            raise TypeError(f"option {key!r}: {value!r} is not callable")
        return obj
    if callable(value):
        return value
    raise TypeError(
        f"option {key!r} must be a callable or a 'package.module:function' string, not {_type_name(value)}"
    )


def _check_callable_or_name(key: str, value: Any) -> Any:
    resolve_method(value, key)  # validates
    return value


# ------------------------------------------------------- nested dict options


def _normalize_nested(key: str, value: Any, spec: Dict[str, Callable[[str, Any], Any]]) -> Dict[str, Any]:
    """Validates a nested dict whose keys may be camelCase or snake_case."""
    if not isinstance(value, Mapping):
        raise TypeError(f"option {key!r} must be a dict, not {_type_name(value)}")
    by_snake = {camel_to_snake(k): k for k in spec}
    out: Dict[str, Any] = {}
    spelled: Dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise TypeError(f"option {key!r}: keys must be str, not {_type_name(k)}")
        canon = k if k in spec else by_snake.get(k)
        if canon is None:
            raise ValueError(
                f"unknown key {k!r} in option {key!r}; valid keys: {', '.join(sorted(spec))}"
            )
        if canon in out:
            raise ValueError(f"option {key!r}: key {canon!r} given twice (as {spelled[canon]!r} and {k!r})")
        out[canon] = spec[canon](f"{key}.{canon}", v)
        spelled[canon] = k
    return out


def _window_bits(key: str, value: Any) -> int:
    return _check_int(key, value, 8, 15)


_DEFLATE_SPEC: Dict[str, Callable[[str, Any], Any]] = {
    "enabled": _check_bool,
    "clientNoContextTakeover": _check_bool,
    "serverNoContextTakeover": _check_bool,
    "clientMaxWindowBits": _window_bits,
    "serverMaxWindowBits": _window_bits,
}

_DEFLATE_DEFAULTS = {
    "enabled": True,
    "clientNoContextTakeover": False,
    "serverNoContextTakeover": False,
    "clientMaxWindowBits": 15,
    "serverMaxWindowBits": 15,
}


def _check_deflate(key: str, value: Any) -> Dict[str, Any]:
    """perMessageDeflate: a bool, or a dict of the five RFC 7692 settings."""
    if isinstance(value, bool):
        out = dict(_DEFLATE_DEFAULTS)
        out["enabled"] = value
        return out
    given = _normalize_nested(key, value, _DEFLATE_SPEC)
    out = dict(_DEFLATE_DEFAULTS)
    out.update(given)
    return out


_TLS_SPEC: Dict[str, Callable[[str, Any], Any]] = {
    "certFile": _check_str,
    "keyFile": _check_str,
    "caFile": _check_str,
    "ciphers": _check_str,
    "tls": _check_bool,
    "disableHostnameValidation": _check_bool,
}


_PEM_MARKER = "-----BEGIN CERTIFICATE-----"


def _check_file(key: str, path: str) -> None:
    if not os.path.isfile(path):
        raise ValueError(f"option {key!r}: file not found: {path!r}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"option {key!r}: file not readable: {path!r}")


def _check_tls(key: str, value: Any) -> Dict[str, Any]:
    """tls: SocketTLSOptions as a dict (camelCase or snake_case keys).

    certFile/keyFile are PEM files (both or neither); caFile is "SYSTEM" (the OS
    store, the engine's default), "NONE" (no peer verification), a PEM bundle
    in memory (a str containing -----BEGIN CERTIFICATE-----) or a PEM file.
    Files must exist when the object is built.
    """
    out = _normalize_nested(key, value, _TLS_SPEC)
    if bool(out.get("certFile")) != bool(out.get("keyFile")):
        raise ValueError(f"option {key!r}: certFile and keyFile must be given together")
    for name in ("certFile", "keyFile"):
        if out.get(name):
            _check_file(f"{key}.{name}", out[name])
    ca = out.get("caFile")
    if ca is not None:
        if ca == "":
            raise ValueError(f"option '{key}.caFile' must not be empty (use 'SYSTEM' or 'NONE')")
        if ca not in ("SYSTEM", "NONE") and _PEM_MARKER not in ca:
            _check_file(f"{key}.caFile", ca)
    if "ciphers" in out and any(c in out["ciphers"] for c in "\0\r\n"):
        raise ValueError(f"option '{key}.ciphers' contains NUL, CR or LF")
    return out


def engine_deflate(deflate: Optional[Dict[str, Any]]) -> Optional[Tuple[bool, bool, bool, int, int]]:
    """A validated perMessageDeflate dict as the engine takes it, or None."""
    if deflate is None:
        return None
    return (deflate["enabled"], deflate["clientNoContextTakeover"], deflate["serverNoContextTakeover"],
            deflate["clientMaxWindowBits"], deflate["serverMaxWindowBits"])


def engine_tls(tls: Optional[Mapping[str, Any]], *, server: bool) -> Optional[Dict[str, Any]]:
    """The validated tls dict as the binding takes it (ix::SocketTLSOptions fields).

    Server: TLS is on unless "tls": False is given (server_options then requires
    certFile/keyFile), and caFile defaults to "NONE": a client certificate is demanded
    only when a caFile is given (upstream's "SYSTEM" default would demand one
    from every client).
    """
    if tls is None:
        return None
    core = {k: v for k, v in tls.items() if k != "disableHostnameValidation"}
    if "disableHostnameValidation" in tls:
        core["disable_hostname_validation"] = tls["disableHostnameValidation"]
    if server:
        core.setdefault("tls", True)
        if core["tls"]:
            core.setdefault("caFile", "NONE")
    return core


def _check_subprotocols(key: str, value: Any) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"option {key!r} must be a list of str, not {_type_name(value)}")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"option {key!r} must be a list of str, found {_type_name(item)}")
        if not _TOKEN_RE.match(item):
            raise ValueError(f"option {key!r}: {item!r} is not a valid subprotocol token")
        out.append(item)
    return out


def _check_headers(key: str, value: Any) -> Dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"option {key!r} must be a dict of str to str, not {_type_name(value)}")
    out: Dict[str, str] = {}
    for name, val in value.items():
        if not isinstance(name, str) or not isinstance(val, str):
            raise TypeError(f"option {key!r} must be a dict of str to str")
        if not _TOKEN_RE.match(name):
            raise ValueError(f"option {key!r}: {name!r} is not a valid header name")
        if any(c in val for c in "\r\n\0"):
            raise ValueError(f"option {key!r}: the value of {name!r} contains CR, LF or NUL")
        out[name] = val
    return out


def _check_url(key: str, value: Any) -> str:
    _check_str(key, value)
    _validate_url(key, str(value))
    return value


# Clients are often made again and again for the same URL: its checks run once.
# Only successes are remembered (lru_cache does not keep exceptions).
@functools.lru_cache(maxsize=256)
def _validate_url(key: str, value: str) -> None:
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when out of range / not numeric
    except ValueError as exc:
        raise ValueError(f"option {key!r}: invalid URL {value!r}: {exc}") from exc
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"option {key!r} must be a ws:// or wss:// URL, got {value!r}")
    if not parts.hostname:
        raise ValueError(f"option {key!r}: URL {value!r} has no host")
    if port == 0:
        raise ValueError(f"option {key!r}: URL {value!r} has port 0")


def _port(key: str, value: Any) -> int:
    return _check_int(key, value, 0, 65535)


def _nonneg(key: str, value: Any) -> int:
    return _check_int(key, value, 0)


def _positive(key: str, value: Any) -> int:
    return _check_int(key, value, 1)


def _interval(key: str, value: Any) -> int:
    # -1 (upstream's default) or 0 mean "off".
    return _check_int(key, value, -1)


SLOW_CONSUMER_POLICIES = ("drop", "block", "close")


def _slow_consumer(key: str, value: Any) -> str:
    _check_str(key, value)
    if value not in SLOW_CONSUMER_POLICIES:
        raise ValueError(f"option {key!r} must be one of {', '.join(map(repr, SLOW_CONSUMER_POLICIES))}, "
                         f"got {value!r}")
    return value


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"option {key!r} must be a number of seconds, not {_type_name(value)}")
    if not value > 0 or value > 86400:
        raise ValueError(f"option {key!r} must be > 0 and <= 86400 seconds, got {value!r}")
    return value


# Defaults of the Python API that differ from upstream IXWebSocket's (which the
# C++ engine keeps). README.md, "Options and their defaults", says why each was
# chosen. The engine-extension ones apply only when the engine has the
# extensions; built against upstream they stay upstream's (unlimited).
DEFAULT_BACKLOG = 511
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
DEFAULT_SEND_BUFFER_LIMIT = 64 * 1024 * 1024
DEFAULT_SLOW_CONSUMER = "close"
DEFAULT_SEND_TIMEOUT = 5


def max_message_size(config: Mapping[str, Any], extensions: bool) -> int:
    """The incoming message limit for the engine (0: unlimited)."""
    return config.get("maxMessageSize", DEFAULT_MAX_MESSAGE_SIZE if extensions else 0)


def max_pending_handshakes(config: Mapping[str, Any], extensions: bool) -> int:
    """The engine's limit on connections still in the opening handshake.

    Defaults to maxConnections; 0 (and any build against upstream) counts them
    against maxConnections, as upstream does.
    """
    return config.get("maxPendingHandshakes", config["maxConnections"] if extensions else 0)


def slow_consumer_args(config: Mapping[str, Any], extensions: bool = True) -> Optional[Tuple[int, int, int]]:
    """(limit bytes, policy index, timeout ms) for the core, or None for no limit."""
    limit = config.get("sendBufferLimit", DEFAULT_SEND_BUFFER_LIMIT if extensions else 0)
    if not limit:
        return None
    policy = SLOW_CONSUMER_POLICIES.index(config.get("onSlowConsumer", DEFAULT_SLOW_CONSUMER))
    return limit, policy, int(config.get("sendTimeout", DEFAULT_SEND_TIMEOUT) * 1000)


def _uint32(key: str, value: Any) -> int:
    return _check_int(key, value, 0, _UINT32_MAX)


def _host(key: str, value: Any) -> str:
    return _check_str(key, value, empty=False)


# (checker, default); _MISSING = only present in .config when given.
SERVER_KEYS: Dict[str, Tuple[Callable[[str, Any], Any], Any]] = {
    # seed options
    "method": (_check_callable_or_name, None),
    "window": (_check_any, None),
    "process": (_check_any, None),
    "port": (_port, 8080),
    "host": (_host, "127.0.0.1"),
    "backlog": (_nonneg, DEFAULT_BACKLOG),
    "maxConnections": (_positive, 128),
    # engine extras
    "handshakeTimeout": (_positive, _MISSING),
    "maxPendingHandshakes": (_nonneg, _MISSING),
    "pingInterval": (_interval, _MISSING),
    "enablePong": (_check_bool, _MISSING),
    "perMessageDeflate": (_check_deflate, _MISSING),
    "disablePerMessageDeflate": (_check_bool, _MISSING),
    "maxMessageSize": (_nonneg, _MISSING),
    "tls": (_check_tls, _MISSING),
    "subprotocols": (_check_subprotocols, _MISSING),
    "onHandshake": (_check_callable_or_name, _MISSING),
    "sendBufferLimit": (_nonneg, _MISSING),
    "onSlowConsumer": (_slow_consumer, _MISSING),
    "sendTimeout": (_seconds, _MISSING),
}

CLIENT_KEYS: Dict[str, Tuple[Callable[[str, Any], Any], Any]] = {
    # seed options
    "method": (_check_callable_or_name, None),
    "window": (_check_any, None),
    "process": (_check_any, None),
    "url": (_check_url, _MISSING),
    "pingInterval": (_interval, -1),
    "pingTimeout": (_interval, -1),
    "enableAutomaticReconnection": (_check_bool, True),
    "enablePong": (_check_bool, True),
    "perMessageDeflate": (_check_deflate, _MISSING),
    "disablePerMessageDeflate": (_check_bool, _MISSING),
    # engine extras
    "extraHeaders": (_check_headers, _MISSING),
    "subprotocols": (_check_subprotocols, _MISSING),
    "handshakeTimeout": (_positive, _MISSING),
    "minWaitBetweenReconnectionRetries": (_uint32, _MISSING),
    "maxWaitBetweenReconnectionRetries": (_uint32, _MISSING),
    "tls": (_check_tls, _MISSING),
    "maxMessageSize": (_nonneg, _MISSING),
    "sendBufferLimit": (_nonneg, _MISSING),
    "onSlowConsumer": (_slow_consumer, _MISSING),
    "sendTimeout": (_seconds, _MISSING),
}


class _SpecInfo:
    """What _merge/_build derive from a key table, computed once per table."""

    __slots__ = ("by_snake", "valid", "items")

    def __init__(self, spec: Mapping[str, Tuple[Callable[[str, Any], Any], Any]]) -> None:
        self.by_snake = {camel_to_snake(k): k for k in spec}
        self.valid = ", ".join(sorted(spec))
        self.items = tuple((key, check, default) for key, (check, default) in spec.items())


_spec_infos: Dict[int, Tuple[Mapping[str, Any], _SpecInfo]] = {}


def _spec_info(spec: Mapping[str, Tuple[Callable[[str, Any], Any], Any]]) -> _SpecInfo:
    # Keyed by identity (the tables are module constants); the table itself is
    # kept alongside so that its id cannot be reused by another object.
    entry = _spec_infos.get(id(spec))
    if entry is None or entry[0] is not spec or len(entry[1].items) != len(spec):
        entry = (spec, _SpecInfo(spec))
        _spec_infos[id(spec)] = entry
    return entry[1]


def _merge(kind: str, spec: Mapping[str, Any], options: Any, kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{kind} options must be a dict, not {_type_name(options)}")
    info = _spec_info(spec)
    valid = info.valid
    by_snake = info.by_snake
    given: Dict[str, Any] = {}
    spelled: Dict[str, str] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise TypeError(f"{kind} option names must be str, not {_type_name(key)}")
        if key not in spec:
            hint = f" (did you mean {by_snake[key]!r}?)" if key in by_snake else ""
            raise ValueError(f"unknown {kind} option {key!r}{hint}; valid options: {valid}")
        given[key] = value
        spelled[key] = f"{key!r} in the options dict"
    for key, value in kwargs.items():
        canon = key if key in spec else by_snake.get(key)
        if canon is None:
            raise ValueError(f"unknown {kind} option {key!r}; valid options: {valid}")
        if canon in given:
            raise ValueError(
                f"{kind} option {canon!r} given twice: as {spelled[canon]} and as keyword {key!r}"
            )
        given[canon] = value
        spelled[canon] = f"keyword {key!r}"
    return given


def _build(kind: str, spec: Mapping[str, Any], options: Any, kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    given = _merge(kind, spec, options, kwargs)
    config: Dict[str, Any] = {}
    missing = _MISSING
    for key, check, default in _spec_info(spec).items:
        value = given.get(key, missing)
        if value is not missing:
            config[key] = check(key, value)
        elif default is not missing:
            config[key] = default
    if "perMessageDeflate" in config and "disablePerMessageDeflate" in config:
        raise ValueError(
            f"{kind} options 'perMessageDeflate' and 'disablePerMessageDeflate' are mutually exclusive"
        )
    return config


def server_options(options: Any = None, kwargs: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Validated server configuration (camelCase keys, seed keys defaulted)."""
    config = _build("Server", SERVER_KEYS, options, kwargs or {})
    tls = config.get("tls")
    if tls is not None and tls.get("tls", True) and not tls.get("certFile"):
        raise ValueError("option 'tls.certFile' (with 'tls.keyFile') is required for a TLS server")
    return config


def client_options(options: Any = None, kwargs: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Validated client configuration (camelCase keys, seed keys defaulted)."""
    config = _build("Client", CLIENT_KEYS, options, kwargs or {})
    if "url" not in config:
        raise ValueError("Client option 'url' is required (a ws:// or wss:// URL)")
    lo = config.get("minWaitBetweenReconnectionRetries", 1)
    hi = config.get("maxWaitBetweenReconnectionRetries", 10000)
    if lo > hi:
        raise ValueError(
            "option 'minWaitBetweenReconnectionRetries' must not exceed "
            f"'maxWaitBetweenReconnectionRetries' ({lo} > {hi})"
        )
    return config


def check_extensions(config: Mapping[str, Any], extensions: bool, engine: str) -> None:
    """Options that only the bundled engine's extensions can honour."""
    if extensions:
        return
    if config.get("maxMessageSize", 0):
        raise ValueError(f"option 'maxMessageSize' is not supported by the {engine} engine")
    if config.get("sendBufferLimit", 0):
        raise ValueError(f"option 'sendBufferLimit' is not supported by the {engine} engine")
    if config.get("maxPendingHandshakes", 0):
        raise ValueError(f"option 'maxPendingHandshakes' is not supported by the {engine} engine")
    if config.get("pingTimeout", -1) > 0:
        raise ValueError(f"option 'pingTimeout' is not supported by the {engine} engine")
    if config.get("onHandshake") is not None:
        raise ValueError(f"option 'onHandshake' is not supported by the {engine} engine")
