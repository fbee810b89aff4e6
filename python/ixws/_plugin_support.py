"""Helpers of ixws.plugin: the parts that are not one plugin command each.

- how a ``method`` given as a name is found (like a 4D project method);
- an event's context as JSON text (the callback's fourth argument);
- named worker threads (the plugin's ``worker`` option);
- the option keys only the plugin module knows, and the normalization of an
  options dict that carries every key (as 4D code builds it).

Only the public ixws API is used here (ixws.plugin is a client of it).
"""
from __future__ import annotations

import base64
import importlib
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Dict, Optional, Tuple

logger = logging.getLogger("ixws")

# Event types whose context carries a payload under "data".
DATA_EVENTS = frozenset(("message", "ping", "pong", "fragment"))

# Keys of a plugin configuration that ixws.Server / ixws.Client do not take.
PLUGIN_KEYS = ("ref", "worker", "module", "clients", "timeout")


# ------------------------------------------------------------ method names


def _describe_module(name: str) -> str:
    if name == "__main__":
        main = sys.modules.get("__main__")
        path = getattr(main, "__file__", None)
        return f"module '__main__' ({path})" if path else "module '__main__' (the interactive session)"
    return f"module {name!r}"


def resolve_method(spec: Any, module: Optional[str]) -> Optional[Callable[..., Any]]:
    """The function a ``method`` option names, or None for no method.

    A callable is used as is; "package.module:function" is imported; a bare
    name ("WS_callback") is looked up in the module named by the ``module``
    option, else in ``__main__`` (where a script defines its functions), as 4D
    finds a project method by its name.
    """
    if spec is None or spec == "":
        return None
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            "option 'method' must be a callable, a function name or 'package.module:function', "
            f"not {type(spec).__name__}")
    if ":" in spec:
        module_name, _, attr_path = spec.partition(":")
        if not module_name or not attr_path:
            raise ValueError(f"option 'method': {spec!r} is not a 'package.module:function' name")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"option 'method': cannot import module {module_name!r}: {exc}") from None
        where = _describe_module(module_name)
    else:
        module_name = module or "__main__"
        attr_path = spec
        target = sys.modules.get(module_name)
        if target is None:
            try:
                target = importlib.import_module(module_name)
            except ImportError as exc:
                raise ValueError(f"option 'module': cannot import module {module_name!r}: {exc}") from None
        where = _describe_module(module_name)
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            hint = "" if module else "; give the 'module' option to look elsewhere"
            raise ValueError(
                f"option 'method': no function {attr_path!r} in {where}{hint}") from None
    if not callable(target):
        raise TypeError(f"option 'method': {attr_path!r} in {where} is not callable")
    return target


def method_name(spec: Any) -> Optional[str]:
    """A JSON-safe name of a ``method`` option value ("module:function"), or None."""
    if spec is None or isinstance(spec, str):
        return spec or None
    module = getattr(spec, "__module__", None)
    qualname = getattr(spec, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"option 'method': {spec!r} has no 'module:function' name to write as JSON")
    try:
        found = resolve_method(f"{module}:{qualname}", None)
    except (TypeError, ValueError):
        found = None
    if found is not spec:
        raise ValueError(f"option 'method': {spec!r} cannot be found again as '{module}:{qualname}'")
    return f"{module}:{qualname}"


# ------------------------------------------------------------- context JSON


def _payload_json(data: Any) -> Tuple[Any, bool]:
    """(JSON value, is base64) of an event payload."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(data)).decode("ascii"), True
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8, kept as surrogates
            raw = data.encode("utf-8", "surrogateescape")
            return base64.b64encode(raw).decode("ascii"), True
    return data, False


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_safe_context(event_type: str, context: Mapping[str, Any]) -> Dict[str, Any]:
    """The context of an event with its payload made JSON-safe.

    A payload that is not text (bytes, or text that was not valid UTF-8)
    becomes its base64 (RFC 4648, standard alphabet, padded) and the context
    gets "encoding": "base64"; text stays text.
    """
    ctx = dict(context)
    if event_type in DATA_EVENTS and "data" in ctx:
        ctx["data"], encoded = _payload_json(ctx["data"])
        if encoded:
            ctx["encoding"] = "base64"
    return ctx


def context_json(event_type: str, context: Mapping[str, Any]) -> str:
    return json.dumps(json_safe_context(event_type, context), ensure_ascii=False, default=_json_default)


# ----------------------------------------------------------- worker threads


_STOP = object()


class Worker:
    """One named thread that runs the callbacks given to it, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.users = 0
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        self._queue.put((fn, args))

    def _stop(self) -> None:
        self._queue.put(_STOP)  # runs after what was submitted before

    def join(self, timeout: float) -> None:
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            fn, args = item
            try:
                fn(*args)
            except BaseException:
                logger.exception("ixws.plugin: exception in method %r on worker %r", fn, self.name)
            del fn, args, item


_workers: Dict[str, Worker] = {}
_workers_lock = threading.Lock()


def acquire_worker(name: str) -> Worker:
    """The thread of this worker name (started on first use), counted as used once more."""
    with _workers_lock:
        worker = _workers.get(name)
        if worker is None:
            worker = _workers[name] = Worker(name)
        worker.users += 1
        return worker


def release_worker(worker: Worker) -> None:
    """One user fewer; the thread ends (after its queued callbacks) with the last one."""
    with _workers_lock:
        worker.users -= 1
        if worker.users > 0:
            return
        if _workers.get(worker.name) is worker:
            del _workers[worker.name]
    worker._stop()


def stop_all_workers(timeout: float) -> None:
    """At exit: every worker finishes what it was given, within `timeout` seconds in all."""
    with _workers_lock:
        workers = list(_workers.values())
        _workers.clear()
    for worker in workers:
        worker._stop()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))


# ------------------------------------------------------------- options


def check_worker(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"option 'worker' must be a str (a worker name), not {type(value).__name__}")
    return value


def check_module(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"option 'module' must be a str (a module name), not {type(value).__name__}")
    return value


def normalize_deflate(options: Dict[str, Any]) -> None:
    """Lets an options dict carry both deflate keys as 4D code sets them.

    ``disablePerMessageDeflate: False`` says nothing against a
    ``perMessageDeflate`` setting and is dropped; ``True`` together with a
    disabled setting (``{"enabled": False}`` or ``False``) is the same wish
    twice. Only ``True`` with an enabled setting is a contradiction.
    """
    if "perMessageDeflate" not in options or "disablePerMessageDeflate" not in options:
        return
    disable = options["disablePerMessageDeflate"]
    if not isinstance(disable, bool):
        raise TypeError(f"option 'disablePerMessageDeflate' must be a bool, not {type(disable).__name__}")
    if not disable:
        del options["disablePerMessageDeflate"]
        return
    setting = options["perMessageDeflate"]
    if isinstance(setting, bool):
        enabled: Any = setting
    elif isinstance(setting, Mapping):
        enabled = setting.get("enabled", True)
    else:
        return  # the constructor names the key and the expected type
    if enabled is False:
        del options["perMessageDeflate"]
    elif enabled is True:
        raise ValueError(
            "options 'perMessageDeflate' (enabled) and 'disablePerMessageDeflate': True contradict "
            "each other; drop one, or set perMessageDeflate's 'enabled' to False")


def as_ref(config_or_ref: Any) -> int:
    """The ref of a configuration object, or the ref itself."""
    if isinstance(config_or_ref, Mapping):
        if "ref" not in config_or_ref:
            raise ValueError("this configuration has no 'ref': pass what websocket_server()/"
                             "websocket_client() returned")
        ref = config_or_ref["ref"]
    else:
        ref = config_or_ref
    if isinstance(ref, float) and ref.is_integer():
        ref = int(ref)  # a ref read back from JSON by a 4D-style program
    if isinstance(ref, bool) or not isinstance(ref, int):
        raise TypeError(f"expected a configuration object or its int ref, not {type(ref).__name__}")
    return ref


def client_ids(value: Any) -> list:
    """The 'clients' of a server send: a list of connection ids (ints)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"option 'clients' must be a list of connection ids, not {type(value).__name__}")
    ids = []
    for item in value:
        if isinstance(item, float) and item.is_integer():
            item = int(item)  # 4D collections hold numbers as reals
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"option 'clients' must hold int connection ids, found {item!r}")
        ids.append(item)
    return ids
