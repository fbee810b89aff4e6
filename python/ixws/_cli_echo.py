"""``python -m ixws echo-server``: echo every message back to its sender.

The echo is done in the Python event callback with ``server.send(data,
clients=[ev.client])``: a str comes back as a text message and bytes as a binary
one, so this also exercises the whole engine -> Python -> engine path. It is the
server the Autobahn fuzzing client (kosoku) is pointed at.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Optional

from ._cli_common import CliError


def format_ws_url(host: str, port: int, tls: bool = False) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{'wss' if tls else 'ws'}://{host}:{port}"


def run_echo_server(
    host: str = "127.0.0.1",
    port: int = 8008,
    max_message_size: Optional[int] = None,
    max_connections: Optional[int] = None,
    deflate: bool = True,
    verbose: bool = False,
    tls: bool = False,
    cert_file: Optional[str] = None,
    key_file: Optional[str] = None,
    ca_file: Optional[str] = None,
) -> int:
    import ixws

    stop_requested = threading.Event()
    server: Optional[Any] = None

    def on_event(ev) -> None:
        if ev.type == "message":
            # Failures (the peer went away meanwhile) are reported in the result
            # list; there is nobody left to tell, so they are ignored here.
            server.send(ev.data, clients=[ev.client])
        elif verbose and ev.type in ("open", "close", "error"):
            ctx = ev.context or {}
            if ev.type == "open":
                detail = f"uri={ctx.get('uri', '')}"
            elif ev.type == "close":
                detail = f"code={ctx.get('code')} reason={ctx.get('reason', '')!r} remote={ctx.get('remote')}"
            else:
                detail = str(ctx.get("reason", ""))
            print(f"{ev.type} conn={ev.client} {detail}", flush=True)

    options = {"host": host, "port": port, "method": on_event}
    if max_message_size is not None:
        options["maxMessageSize"] = max_message_size
    if max_connections is not None:
        options["maxConnections"] = max_connections
    if not deflate:
        options["disablePerMessageDeflate"] = True
    if tls:
        if not cert_file or not key_file:
            raise CliError("--tls needs --cert-file and --key-file")
        tls_options = {"certFile": cert_file, "keyFile": key_file}
        if ca_file:
            tls_options["caFile"] = ca_file  # clients must then present a certificate
        options["tls"] = tls_options
    elif cert_file or key_file or ca_file:
        raise CliError("--cert-file, --key-file and --ca-file need --tls")

    try:
        server = ixws.Server(options)
    except (TypeError, ValueError) as exc:
        raise CliError(f"invalid server options: {exc}") from None

    previous = {}

    def request_stop(signum, _frame) -> None:
        stop_requested.set()

    try:
        result = server.start()
        if not result.get("success"):
            raise CliError(f"cannot listen on {format_ws_url(host, port, tls)}: {result.get('message', '')}")

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)

        bound_port = server.config["port"]
        print(f"listening on {format_ws_url(host, bound_port, tls)}", flush=True)

        # Signal handlers run in this (main) thread between waits.
        while not stop_requested.wait(1.0):
            pass
        print("stopping", flush=True)
    finally:
        try:
            server.stop()
        finally:
            server.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_echo_server())
