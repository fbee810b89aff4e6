"""``python -m ixws connect URL``: an interactive WebSocket client.

Every line read from stdin is sent as a text message; every message received
is printed as ``< text`` (``< binary N bytes: hex`` for binary ones). End of
input closes the connection (1000) and exits 0; a close from the server ends
the session too (exit 0), a connection lost without a close handshake (1006)
or an error exits 1. Uses only the public ixws.Client API.
"""
from __future__ import annotations

import argparse
import queue
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

from ._cli_common import CliError, Printer, shutdown_quietly

# Bounded waits: how long the close handshake and its event may take after
# end of input before the command exits anyway.
_CLOSE_WAIT_SECONDS = 5.0

# RFC 6455 7.4.1: the connection ended without a close frame.
_ABNORMAL_CLOSURE = 1006


def parse_header(text: str) -> Tuple[str, str]:
    """"Name: value" (argparse type of --header)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {text!r}")
    return name, value.strip()


def add_parser(sub: Any, positive_float: Any) -> None:
    """Adds the ``connect`` command to the subcommands of python -m ixws."""
    conn = sub.add_parser(
        "connect",
        help="interactive client: send the lines typed, print the messages received",
        description=(
            "Connect to a ws:// or wss:// URL, send every line read from stdin as a text message "
            "and print every message received ('< ...'). End of input (Ctrl-D) closes the "
            "connection with 1000 and exits."
        ),
    )
    conn.add_argument("url", help="ws:// or wss:// URL")
    conn.add_argument("-H", "--header", action="append", type=parse_header, default=[], metavar="NAME:VALUE",
                      help="add a header to the upgrade request (repeatable)")
    conn.add_argument("--subprotocol", action="append", default=[], metavar="NAME",
                      help="offer this subprotocol (repeatable, in preference order)")
    conn.add_argument("--timeout", type=positive_float, default=10.0, metavar="SECONDS",
                      help="seconds to wait for the connection (default: 10)")
    conn.add_argument("--ca-file", metavar="FILE", default=None,
                      help="wss://: PEM CA bundle that signed the server's certificate (default: the system store)")
    conn.add_argument("--cert-file", metavar="FILE", default=None,
                      help="wss://: PEM client certificate, for servers that ask for one (with --key-file)")
    conn.add_argument("--key-file", metavar="FILE", default=None, help="wss://: PEM private key of --cert-file")
    conn.add_argument("--insecure", action="store_true",
                      help="wss://: do not verify the server's certificate (testing only)")


def _tls_options(url: str, ca_file: Optional[str], cert_file: Optional[str], key_file: Optional[str],
                 insecure: bool) -> Optional[Dict[str, Any]]:
    wanted = ca_file or cert_file or key_file or insecure
    if not wanted:
        return None
    if not url.lower().startswith("wss://"):
        raise CliError("--ca-file, --cert-file, --key-file and --insecure need a wss:// URL")
    if insecure and ca_file:
        raise CliError("--insecure and --ca-file contradict each other: give one")
    tls: Dict[str, Any] = {}
    if insecure:
        tls["caFile"] = "NONE"
    elif ca_file:
        tls["caFile"] = ca_file
    if cert_file:
        tls["certFile"] = cert_file
    if key_file:
        tls["keyFile"] = key_file
    return tls


def _describe(data: Any) -> str:
    if isinstance(data, str):
        return data
    raw = bytes(data)
    return f"binary {len(raw)} bytes: {raw.hex(' ')}"


def _read_lines(stream: Any, inbox: "queue.Queue[Tuple[Any, ...]]") -> None:
    for line in stream:
        inbox.put(("line", line.rstrip("\r\n")))
    inbox.put(("eof",))


def run_connect(url: str, headers: List[Tuple[str, str]], subprotocols: List[str], timeout: float = 10.0,
                ca_file: Optional[str] = None, cert_file: Optional[str] = None,
                key_file: Optional[str] = None, insecure: bool = False) -> int:
    import ixws

    out = Printer()
    inbox: "queue.Queue[Tuple[Any, ...]]" = queue.Queue()

    def on_event(ev: Any) -> None:
        if ev.type == "open":
            protocol = f" (subprotocol: {ev.protocol})" if ev.protocol else ""
            out(f"connected to {url}{protocol}")
        elif ev.type == "message":
            out(f"< {_describe(ev.data)}")
        elif ev.type == "close":
            out(f"connection closed: code={ev.code} reason={ev.reason!r}")
            inbox.put(("closed", ev.code))
        elif ev.type == "error":
            out(f"error: {ev.reason}")
            inbox.put(("error",))

    options: Dict[str, Any] = {"url": url, "method": on_event, "enableAutomaticReconnection": False}
    if headers:
        options["extraHeaders"] = dict(headers)
    if subprotocols:
        options["subprotocols"] = list(subprotocols)
    tls = _tls_options(url, ca_file, cert_file, key_file, insecure)
    if tls is not None:
        options["tls"] = tls
    try:
        client = ixws.Client(options)
    except (TypeError, ValueError) as exc:
        raise CliError(str(exc)) from None

    try:
        result = client.start(timeout=timeout)
        if not result["success"]:
            status = f" (HTTP {result['http_status']})" if result.get("http_status") else ""
            raise CliError(f"cannot connect to {url}: {result['errorStr']}{status}")
        reader = threading.Thread(target=_read_lines, args=(sys.stdin, inbox), name="ixws-stdin", daemon=True)
        reader.start()
        while True:
            item = inbox.get()
            if item[0] == "line":
                sent = client.send(item[1])
                if not sent["success"]:
                    out(f"send failed: {sent.get('reason', 'connection not open')}")
            elif item[0] == "eof":
                client.stop()
                try:  # the close event prints the outcome; wait for it (bounded)
                    while inbox.get(timeout=_CLOSE_WAIT_SECONDS)[0] not in ("closed", "error"):
                        pass
                except queue.Empty:
                    pass
                return 0
            else:
                return 0 if item[0] == "closed" and item[1] != _ABNORMAL_CLOSURE else 1
    finally:
        shutdown_quietly(client)
