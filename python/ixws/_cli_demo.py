"""``python -m ixws demo``: a guided tour of the Python API on 127.0.0.1.

Steps (each one waits, bounded by --timeout, for the events it expects):

1. a server on a free port (``"port": 0``);
2. N clients connect to ``/demo/<i>``;
3. every client sends one text and one binary message; the server answers each
   sender from its callback (text: "echo: ...", binary: the bytes reversed);
4. the server broadcasts a text message to everybody and a binary one to the
   first client only (``clients=[...]``);
5. the clients close, the server sees every close, the server stops.

Every event is printed as one line; the last line is a summary such as
``demo ok: 3 clients, 18 messages, 412 bytes, 35 ms``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Optional

from ._cli_common import Printer, Tally, describe_payload, payload_size, shutdown_quietly


class DemoFailure(Exception):
    pass


def _expected_replies(index: int) -> List[Any]:
    return [f"echo: hello from client {index}", bytes(reversed(_binary_payload(index)))]


def _text_payload(index: int) -> str:
    return f"hello from client {index}"


def _binary_payload(index: int) -> bytes:
    return bytes([index & 0xFF, 0x00, 0x7F, 0x80, 0xFF]) + index.to_bytes(4, "big")


BROADCAST_TEXT = "broadcast: hello everyone"
BROADCAST_BINARY = b"\x00\x01\x02\x03 just for client 1"


def run_demo(clients: int = 3, timeout: float = 10.0, quiet: bool = False) -> int:
    import ixws

    out = Printer(enabled=not quiet)
    tally = Tally()
    started = time.monotonic()
    received: Dict[int, List[Any]] = {i: [] for i in range(1, clients + 1)}
    problems: List[str] = []
    index_of_conn: Dict[Any, int] = {}  # server connection id -> client index

    server: Optional[Any] = None
    client_objs: List[Any] = []

    def fail(step: str, detail: str) -> None:
        raise DemoFailure(f"{step}: {detail}")

    def expect(step: str, predicate, describe) -> None:
        if not tally.wait_for(predicate, timeout):
            fail(step, f"{describe()} within {timeout:g} s")

    # ---------------------------------------------------------- server side
    def on_server_event(ev) -> None:
        ctx = ev.context or {}
        if ev.type == "open":
            uri = str(ctx.get("uri", ""))
            out(f"[server]   open     conn={ev.client} uri={uri}")
            tail = uri.rsplit("/", 1)[-1]
            if tail.isdigit():
                index_of_conn[ev.client] = int(tail)
            tally.add("server_open")
        elif ev.type == "message":
            out(f"[server]   message  conn={ev.client} {describe_payload(ev.data)}")
            tally.add("messages")
            tally.add("bytes", payload_size(ev.data))
            if isinstance(ev.data, str):
                reply: Any = "echo: " + ev.data
            else:
                reply = bytes(reversed(bytes(ev.data)))
            results = server.send(reply, clients=[ev.client])
            if not results or not all(r.get("success") for r in results):
                problems.append(f"server reply to conn {ev.client} failed: {results!r}")
            tally.add("server_replies")
        elif ev.type == "close":
            out(
                f"[server]   close    conn={ev.client} code={ctx.get('code')} "
                f"reason={ctx.get('reason', '')!r} remote={ctx.get('remote')}"
            )
            tally.add("server_close")
        elif ev.type == "error":
            out(f"[server]   error    conn={ev.client} {ctx.get('reason', '')}")
            tally.add("server_error")
        else:
            out(f"[server]   {ev.type:<8} conn={ev.client}")

    # ---------------------------------------------------------- client side
    def make_client_handler(index: int):
        label = f"[client {index}]"

        def on_client_event(ev) -> None:
            ctx = ev.context or {}
            if ev.type == "open":
                out(f"{label} open     uri={ctx.get('uri', '')}")
                tally.add("client_open")
            elif ev.type == "message":
                out(f"{label} message  {describe_payload(ev.data)}")
                received[index].append(ev.data if isinstance(ev.data, str) else bytes(ev.data))
                tally.add("messages")
                tally.add("bytes", payload_size(ev.data))
                tally.add(f"client_msg_{index}")
            elif ev.type == "close":
                out(
                    f"{label} close    code={ctx.get('code')} reason={ctx.get('reason', '')!r} "
                    f"remote={ctx.get('remote')}"
                )
                tally.add("client_close")
            elif ev.type == "error":
                out(f"{label} error    {ctx.get('reason', '')} (http_status={ctx.get('http_status')})")
                tally.add("client_error")
            else:
                out(f"{label} {ev.type}")

        return on_client_event

    try:
        # 1. server on a free port
        server = ixws.Server({"host": "127.0.0.1", "port": 0, "method": on_server_event})
        result = server.start()
        if not result.get("success"):
            fail("server start", result.get("message") or "failed")
        port = server.config["port"]
        out(f"[demo]     server listening on ws://127.0.0.1:{port}")

        # 2. clients connect
        for index in range(1, clients + 1):
            client = ixws.Client(
                {
                    "url": f"ws://127.0.0.1:{port}/demo/{index}",
                    "method": make_client_handler(index),
                    "enableAutomaticReconnection": False,
                }
            )
            client_objs.append(client)
            res = client.start(timeout=max(1, int(round(timeout))))
            if not res.get("success"):
                fail(f"client {index} connect", f"{res.get('errorStr', 'failed')} (http_status={res.get('http_status')})")
        expect(
            "open",
            lambda t: t["client_open"] >= clients and t["server_open"] >= clients,
            lambda: f"{tally['client_open']}/{clients} client and {tally['server_open']}/{clients} server opens",
        )

        # 3. text and binary from every client, answered by the server
        for index, client in enumerate(client_objs, start=1):
            for payload in (_text_payload(index), _binary_payload(index)):
                res = client.send(payload)
                if not res.get("success"):
                    fail(f"client {index} send", repr(res))
        expect(
            "replies",
            lambda t: all(t[f"client_msg_{i}"] >= 2 for i in range(1, clients + 1)),
            lambda: f"{sum(min(tally[f'client_msg_{i}'], 2) for i in range(1, clients + 1))}/{2 * clients} replies",
        )

        # 4. broadcast to all, then binary to a subset
        conns = server.clients()
        if len(conns) != clients:
            fail("clients()", f"expected {clients} connection ids, got {conns!r}")
        out(f"[demo]     server.clients() = {conns}")
        results = server.send(BROADCAST_TEXT)
        if len(results) != clients or not all(r.get("success") for r in results):
            fail("broadcast", f"send results {results!r}")
        first_conn = next((c for c, i in index_of_conn.items() if i == 1), None)
        if first_conn is None:
            fail("send to subset", f"no server connection for /demo/1 among {index_of_conn!r}")
        results = server.send(BROADCAST_BINARY, clients=[first_conn])
        if len(results) != 1 or not results[0].get("success"):
            fail("send to subset", f"send results {results!r}")
        expect(
            "broadcast",
            lambda t: all(t[f"client_msg_{i}"] >= 3 for i in range(1, clients + 1)) and t["client_msg_1"] >= 4,
            lambda: "broadcast not received by every client",
        )

        # Check the content, not just the counts.
        for index in range(1, clients + 1):
            want = _expected_replies(index) + [BROADCAST_TEXT]
            if index == 1:
                want.append(BROADCAST_BINARY)
            got = received[index]
            if sorted(map(repr, got)) != sorted(map(repr, want)):
                fail(f"client {index} messages", f"expected {want!r}, got {got!r}")
        if problems:
            fail("server replies", "; ".join(problems))

        # 5. orderly shutdown
        for client in client_objs:
            client.stop()
        expect(
            "close",
            lambda t: t["server_close"] >= clients and t["client_close"] >= clients,
            lambda: f"{tally['client_close']}/{clients} client and {tally['server_close']}/{clients} server closes",
        )
    except DemoFailure as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for client in client_objs:
            shutdown_quietly(client)
        shutdown_quietly(server)

    elapsed_ms = (time.monotonic() - started) * 1000.0
    print(
        f"demo ok: {clients} clients, {tally['messages']} messages, {tally['bytes']} bytes, "
        f"{elapsed_ms:.0f} ms",
        flush=True,
    )
    return 0
