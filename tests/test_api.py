"""Functional tests of the Python API (DESIGN.md section 2) over 127.0.0.1.

Every wait has a deadline (threading.Event / queue.Queue with timeouts); no test
sleeps blindly.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any, Callable, List, Optional

import pytest

import ixws

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0  # seconds for one expected event


class Recorder:
    """A `method` that queues every event; next() waits for a matching one."""

    def __init__(self, on_event: Optional[Callable[[ixws.Event], Any]] = None) -> None:
        self.q: "queue.Queue[ixws.Event]" = queue.Queue()
        self.seen: List[ixws.Event] = []
        self.on_event = on_event
        self.thread_names: set = set()

    def __call__(self, ev: ixws.Event) -> None:
        self.thread_names.add(threading.current_thread().name)
        self.q.put(ev)
        if self.on_event is not None:
            self.on_event(ev)

    def next(self, type: Optional[str] = None, timeout: float = WAIT,
             pred: Optional[Callable[[ixws.Event], bool]] = None) -> ixws.Event:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                tail = self.seen[-5:]
                raise AssertionError(f"no {type or 'matching'} event within {timeout}s; "
                                     f"{len(self.seen)} seen, last: {tail}")
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(ev)
            if (type is None or ev.type == type) and (pred is None or pred(ev)):
                return ev

    def none_within(self, type: str, timeout: float) -> bool:
        """True if no event of `type` arrives within timeout (used sparingly)."""
        try:
            self.next(type, timeout)
        except AssertionError:
            return True
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_rec():
    rec = Recorder()
    server = ixws.Server({"port": 0, "host": "127.0.0.1", "method": rec, "window": "W", "process": "P"})
    res = server.start()
    assert res == {"success": True, "message": ""}
    yield server, rec
    server.close()


def connect(server: ixws.Server, path: str = "/", method: Any = None, **options: Any) -> ixws.Client:
    opts = {"url": f"ws://127.0.0.1:{server.config['port']}{path}",
            "enableAutomaticReconnection": False}
    if method is not None:
        opts["method"] = method
    opts.update(options)
    client = ixws.Client(opts)
    res = client.start(timeout=5)
    assert res["success"], res
    return client


# ----------------------------------------------------------------- start/port


def test_start_on_port_0_updates_config(server_rec):
    server, _ = server_rec
    port = server.config["port"]
    assert isinstance(port, int) and 0 < port < 65536
    assert server.port == port
    assert server.running


def test_port_in_use_returns_failure_dict(server_rec):
    server, _ = server_rec
    with ixws.Server(port=server.config["port"]) as other:
        res = other.start()
        assert res["success"] is False
        assert isinstance(res["message"], str) and res["message"]


def test_start_twice_reports_failure(server_rec):
    server, _ = server_rec
    res = server.start()
    assert res["success"] is False


def test_stop_then_start_again(server_rec):
    server, rec = server_rec
    c = connect(server)
    rec.next("open")
    server.stop()
    rec.next("close")
    assert server.clients() == []
    assert server.start()["success"]
    c2 = connect(server)
    assert rec.next("open").client == 2  # ids are not reused, restarts included
    c.close()
    c2.close()


# --------------------------------------------------------------- event types


def test_open_event_context(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, "/chat?room=1", crec, extraHeaders={"X-Ixws-Test": "yes"},
                     window=11, process=22)
    ev = srec.next("open")
    assert ev.server == server.config["ref"]
    assert ev.client == 1
    assert (ev.window, ev.process) == ("W", "P")
    assert ev.uri == "/chat?room=1"
    lower = {k.lower(): v for k, v in ev.headers.items()}
    assert lower["x-ixws-test"] == "yes"
    assert lower["upgrade"].lower() == "websocket"
    ctx = ev.context
    assert ctx["uri"] == "/chat?room=1"
    assert "protocol" in ctx
    assert {k.lower(): v for k, v in ctx.items()}["x-ixws-test"] == "yes"

    cev = crec.next("open")
    assert cev.server == 0
    assert cev.client == client.config["ref"]
    assert (cev.window, cev.process) == (11, 22)
    assert cev.uri == "/chat?room=1"
    assert cev.context["uri"] == "/chat?room=1"
    assert client.ready_state == "OPEN"
    client.close()


def test_client_start_result(server_rec):
    server, _ = server_rec
    client = ixws.Client(url=f"ws://127.0.0.1:{server.config['port']}/p?q=2",
                         enable_automatic_reconnection=False)
    res = client.start(timeout=5)
    assert set(res) == {"success", "http_status", "errorStr", "uri", "headers"}
    assert res["success"] is True
    assert res["http_status"] == 101
    assert res["errorStr"] == ""
    assert res["uri"] == "/p?q=2"
    assert {k.lower() for k in res["headers"]} >= {"upgrade", "sec-websocket-accept"}
    client.close()


def test_message_events_both_ways(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec)
    srec.next("open")
    crec.next("open")

    assert client.send("héllo") == {"success": True, "compressionError": False,
                                    "payloadSize": len("héllo".encode()), "wireSize": len("héllo".encode())}
    ev = srec.next("message")
    assert ev.data == "héllo" and ev.binary is False
    assert ev.context == {"wireSize": 6, "binary": False, "data": "héllo"}
    assert (ev.window, ev.process, ev.client) == ("W", "P", 1)

    client.send(b"\x00\xff")
    ev = srec.next("message")
    assert ev.data == b"\x00\xff" and ev.binary is True and ev.wireSize == 2

    client.send(bytearray(b"ba"))
    assert srec.next("message").data == b"ba"
    client.send(memoryview(b"mv"))
    assert srec.next("message").data == b"mv"
    client.send("")
    assert srec.next("message").data == ""

    res = server.send("to client")
    assert res == [{"client": 1, "success": True, "compressionError": False, "payloadSize": 9, "wireSize": 9}]
    ev = crec.next("message")
    assert ev.data == "to client" and ev.binary is False and ev.server == 0
    server.send(b"\x01\x02\x03")
    ev = crec.next("message")
    assert ev.data == b"\x01\x02\x03" and ev.binary is True
    client.close()


def test_send_type_errors(server_rec):
    server, srec = server_rec
    client = connect(server)
    with pytest.raises(TypeError):
        client.send(123)
    with pytest.raises(TypeError):
        server.send(None)
    with pytest.raises(TypeError):
        server.send("x", clients=["1"])
    with pytest.raises(TypeError):
        server.send("x", clients=[True])
    client.close()


def test_ping_and_pong_events(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec)
    srec.next("open")
    res = client.ping("abc")
    assert res["success"] is True
    ev = srec.next("ping")
    assert ev.data == "abc" and ev.binary is False
    assert ev.context == {"wireSize": 3, "binary": False, "data": "abc"}
    ev = crec.next("pong")
    assert ev.data == "abc"
    assert ev.context["wireSize"] == 3

    res = server.ping(b"srv")
    assert res[0]["client"] == 1 and res[0]["success"]
    assert crec.next("ping").data == "srv"
    assert srec.next("pong").data == "srv"

    # over-long ping payloads are refused, not sent
    assert client.ping(b"x" * 126)["success"] is False
    client.close()


def test_heartbeat_ping_from_ping_interval(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec, pingInterval=30)
    # A heartbeat is sent right after Open; the server answers it.
    srec.next("ping")
    crec.next("pong")
    client.close()


def test_pong_disabled_on_server():
    srec = Recorder()
    with ixws.Server(port=0, method=srec, enable_pong=False) as server:
        assert server.start()["success"]
        crec = Recorder()
        client = connect(server, method=crec)
        client.ping("p1")
        srec.next("ping")
        client.send("after")
        srec.next("message")
        # The server did not answer: the pong would have arrived before the
        # reply to a later message on the same connection.
        server.send("marker")
        crec.next("message", pred=lambda e: e.data == "marker")
        assert not [e for e in crec.seen if e.type == "pong"]
        client.close()


def test_fragment_events(server_rec):
    """A fragmented incoming message gives one "fragment" event per non-final
    frame, then the whole "message"."""
    websocket = pytest.importorskip("websocket")
    from websocket import ABNF

    server, srec = server_rec
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.config['port']}/", timeout=WAIT)
    try:
        srec.next("open")
        ws.send_frame(ABNF.create_frame("part1-", ABNF.OPCODE_TEXT, 0))
        ws.send_frame(ABNF.create_frame("part2-", ABNF.OPCODE_CONT, 0))
        ws.send_frame(ABNF.create_frame("part3", ABNF.OPCODE_CONT, 1))
        ev = srec.next("message")
        assert ev.data == "part1-part2-part3"
        frags = [e for e in srec.seen if e.type == "fragment"]
        assert len(frags) == 2
        for f in frags:
            assert f.binary is False and f.client == 1 and f.server == server.config["ref"]
            assert (f.window, f.process) == ("W", "P")
            assert set(f.context) == {"wireSize", "binary", "data"}
    finally:
        ws.close()


def test_large_message_roundtrip(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec)
    srec.next("open")
    payload = "x" * 100000
    assert server.send(payload)[0]["success"]
    assert crec.next("message").data == payload
    client.send(b"y" * 300000)
    assert srec.next("message").data == b"y" * 300000
    client.close()


@pytest.mark.engine_extension
def test_outgoing_large_message_is_one_frame(server_rec):
    # A deliberate difference from upstream, which splits at 32768 bytes: one
    # frame per message, so receivers get no Fragment events to process.
    websocket = pytest.importorskip("websocket")
    server, srec = server_rec
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.config['port']}/", timeout=WAIT)
    try:
        srec.next("open")
        server.send("x" * 100000)
        frame = ws.recv_frame()
        assert frame.fin == 1 and len(frame.data) == 100000
    finally:
        ws.close()


def test_close_event_client_initiated(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec)
    srec.next("open")
    client.stop(4000, "My reason")
    ev = crec.next("close")
    assert (ev.code, ev.reason, ev.remote) == (4000, "My reason", False)
    assert ev.context == {"code": 4000, "reason": "My reason", "remote": False}
    ev = srec.next("close")
    assert (ev.code, ev.reason, ev.remote) == (4000, "My reason", True)
    assert (ev.window, ev.process, ev.client) == ("W", "P", 1)
    assert client.send("late")["success"] is False
    client.close()


def test_close_event_server_initiated(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec)
    srec.next("open")
    assert server.close_client(1, 4001, "Permission denied") is True
    ev = srec.next("close")
    assert (ev.code, ev.reason, ev.remote) == (4001, "Permission denied", False)
    ev = crec.next("close")
    assert (ev.code, ev.reason, ev.remote) == (4001, "Permission denied", True)
    assert server.close_client(1) is False
    client.close()


def test_server_stop_closes_clients_with_1000(server_rec):
    # The default is 1001 "Going away" (tests/test_health.py); 1000 when asked,
    # which is also what upstream's stop() always sends.
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec)
    srec.next("open")
    server.stop(1000, "Normal closure")
    ev = crec.next("close")
    assert ev.code == 1000 and ev.remote is True
    ev = srec.next("close")
    assert ev.code == 1000 and ev.remote is False
    client.close()


def test_error_event_connection_refused():
    crec = Recorder()
    port = free_port()
    client = ixws.Client({"url": f"ws://127.0.0.1:{port}/", "method": crec, "window": 1, "process": 2,
                          "enableAutomaticReconnection": False})
    res = client.start(timeout=5)
    assert res["success"] is False
    assert res["errorStr"]
    ev = crec.next("error")
    assert ev.server == 0 and ev.client == client.config["ref"]
    assert (ev.window, ev.process) == (1, 2)
    assert ev.retries == 0 and ev.wait_time == 0 and ev.http_status == 0
    assert ev.reason == res["errorStr"]
    assert ev.context == {"decompressionError": False, "reason": ev.reason, "http_status": 0,
                          "wait_time": 0, "retries": 0}
    assert client.ready_state == "CLOSED"
    client.close()


def _http_404_server():
    """A one-shot plain HTTP server answering 404; returns (port, thread)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]

    def serve():
        with lsock:
            lsock.settimeout(WAIT)
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(WAIT)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return port, t


def test_error_event_http_status():
    port, t = _http_404_server()
    crec = Recorder()
    client = ixws.Client(url=f"ws://127.0.0.1:{port}/missing", method=crec,
                         enable_automatic_reconnection=False)
    res = client.start(timeout=5)
    assert res["success"] is False and res["http_status"] == 404
    ev = crec.next("error")
    assert ev.http_status == 404
    client.close()
    t.join(WAIT)


def test_reconnection_retries_in_background(server_rec):
    server, srec = server_rec
    port = server.config["port"]
    server.stop()
    crec = Recorder()
    client = ixws.Client(url=f"ws://127.0.0.1:{port}/", method=crec,
                         min_wait_between_reconnection_retries=10,
                         max_wait_between_reconnection_retries=50)
    res = client.start(timeout=2)
    assert res["success"] is False
    crec.next("error")
    # the background loop goes on retrying; bring the server back
    assert server.start()["success"]
    crec.next("open", timeout=15)
    srec.next("open")
    client.close()


# ----------------------------------------------------------------- clients()


def test_client_ids_are_never_reused(server_rec):
    server, srec = server_rec
    clients = []
    for expected in (1, 2, 3):
        clients.append(connect(server))
        assert srec.next("open").client == expected
    assert server.clients() == [1, 2, 3]
    clients[1].stop()
    assert srec.next("close").client == 2
    assert server.clients() == [1, 3]
    clients.append(connect(server))
    assert srec.next("open").client == 4
    assert server.clients() == [1, 3, 4]
    clients[0].stop()
    assert srec.next("close").client == 1
    clients.append(connect(server))
    assert srec.next("open").client == 5
    clients.append(connect(server))
    assert srec.next("open").client == 6
    assert server.clients() == [3, 4, 5, 6]
    for c in clients:
        c.close()


def test_send_to_subset(server_rec):
    server, srec = server_rec
    recs = [Recorder() for _ in range(3)]
    clients = [connect(server, method=r) for r in recs]
    for _ in clients:
        srec.next("open")
    res = server.send(b"subset", clients=[1, 3])
    assert [r["client"] for r in res] == [1, 3]
    assert all(r["success"] and r["payloadSize"] == 6 and r["wireSize"] == 6 for r in res)
    assert recs[0].next("message").data == b"subset"
    assert recs[2].next("message").data == b"subset"
    server.send("all")
    assert recs[1].next("message").data == "all"  # client 2 did not get "subset"
    res = server.send("x", clients=(c for c in [2]))
    assert res[0]["client"] == 2 and res[0]["success"]
    for c in clients:
        c.close()


def test_send_on_closed_connection_fails_softly(server_rec):
    server, srec = server_rec
    client = connect(server)
    srec.next("open")
    client.stop()
    srec.next("close")
    assert client.send("x") == {"success": False, "compressionError": False, "payloadSize": 0,
                                "wireSize": 0}
    assert server.send("x", clients=[1]) == [{"client": 1, "success": False, "compressionError": False,
                                              "payloadSize": 0, "wireSize": 0}]
    assert server.send("x", clients=[99])[0]["success"] is False
    assert server.send("x") == []
    client.close()


def test_invalid_utf8_text_raises_and_connection_stays_open(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec)
    srec.next("open")
    with pytest.raises(ValueError):
        client.send("bad \udc80 surrogate")
    with pytest.raises(ValueError):
        server.send("\ud800")
    assert client.ready_state == "OPEN"
    client.send("still fine")
    assert srec.next("message").data == "still fine"
    server.send("also fine")
    assert crec.next("message").data == "also fine"
    assert not [e for e in srec.seen + crec.seen if e.type == "close"]
    client.close()


# --------------------------------------------------------------- re-entrancy


def test_callbacks_may_send_stop_and_close(server_rec):
    """An echo server that sends from its callback; a client that stops and
    closes itself from its callback; a server that stops and closes itself."""
    server, srec = server_rec
    done = threading.Event()
    stopped = threading.Event()

    def echo(ev):
        if ev.type == "message":
            if ev.data == "quit":
                server2.stop()
                server2.close()
                stopped.set()
            else:
                server2.send(ev.data, clients=[ev.client])

    server2 = ixws.Server(port=0, method=echo)
    assert server2.start()["success"]

    holder = {}

    def on_client(ev):
        if ev.type == "message" and ev.data == "echo-me":
            holder["c"].stop()
            holder["c"].close()
            done.set()

    client = ixws.Client(url=f"ws://127.0.0.1:{server2.config['port']}/", method=on_client,
                         enable_automatic_reconnection=False)
    holder["c"] = client
    assert client.start(timeout=5)["success"]
    client.send("echo-me")
    assert done.wait(WAIT)
    assert client.closed

    other = connect(server2)
    other.send("quit")
    assert stopped.wait(WAIT)
    assert server2.closed
    other.close()


def test_callback_can_start_and_stop_a_client(server_rec):
    server, srec = server_rec
    made = threading.Event()
    box = {}

    def on_open(ev):
        if ev.type == "open" and "c" not in box:
            c = ixws.Client(url=f"ws://127.0.0.1:{server.config['port']}/inner",
                            enable_automatic_reconnection=False)
            box["c"] = c
            box["res"] = c.start(timeout=5)
            c.close()
            made.set()

    outer = connect(server, method=on_open)
    assert made.wait(WAIT)
    assert box["res"]["success"]
    outer.close()


def test_server_callback_can_connect_a_client_to_the_same_server():
    # The callback may run on the server's own engine thread: while start()
    # waits there, that loop must keep turning to accept the new connection.
    made = threading.Event()
    box: dict = {}

    def on_event(ev):
        if ev.type == "open" and ev.uri == "/outer":
            c = ixws.Client(url=f"ws://127.0.0.1:{server.port}/inner",
                            enable_automatic_reconnection=False)
            box["res"] = c.start(timeout=5)
            c.send("from-inner")
            box["c"] = c
        elif ev.type == "message" and ev.data == "from-inner":
            made.set()

    server = ixws.Server(port=0, method=on_event)
    assert server.start()["success"]
    outer = ixws.Client(url=f"ws://127.0.0.1:{server.port}/outer", enable_automatic_reconnection=False)
    try:
        assert outer.start(timeout=WAIT)["success"]
        assert made.wait(WAIT)
        assert box["res"]["success"], box["res"]
    finally:
        outer.close()
        if "c" in box:
            box["c"].close()
        server.close()


def test_server_callback_stops_a_client_of_the_same_server_with_a_full_close_handshake():
    # client.stop() waits for the close handshake; called in a callback on the
    # server's own engine thread, that loop must keep turning meanwhile so the
    # server answers the Close (otherwise stop() gives up and drops the link,
    # and the server only sees the Close after the callback).
    box: dict = {}
    done = threading.Event()

    def on_event(ev):
        if ev.type == "message" and ev.data == "stop-me":
            box["client"].stop()
            box["server_clients_after_stop"] = server.clients()
            done.set()

    server = ixws.Server(port=0, method=on_event)
    assert server.start()["success"]
    closes: "queue.Queue[ixws.Event]" = queue.Queue()
    client = ixws.Client(url=f"ws://127.0.0.1:{server.port}/", enable_automatic_reconnection=False,
                         method=lambda ev: closes.put(ev) if ev.type == "close" else None)
    box["client"] = client
    try:
        assert client.start(timeout=WAIT)["success"]
        client.send("stop-me")
        assert done.wait(WAIT)
        assert box["server_clients_after_stop"] == []
        ev = closes.get(timeout=WAIT)
        assert (ev.code, ev.remote) == (1000, False)
    finally:
        client.close()
        server.close()


def test_a_server_dropped_inside_its_own_callback_goes_away_cleanly():
    # The callback may run on the server's own engine thread: dropping the last
    # reference there destroys the engine server (and its loop's owner) on that
    # very thread, which must not pull the loop out from under itself.
    dropped = threading.Event()
    holder: dict = {}

    def on_event(ev):
        if ev.type == "message" and ev.data == "quit":
            s = holder.pop("server")
            s.close()
            del s  # the last reference
            dropped.set()

    server = ixws.Server(port=0, method=on_event)
    assert server.start()["success"]
    port = server.port
    holder["server"] = server
    del server
    closed = threading.Event()
    client = ixws.Client(url=f"ws://127.0.0.1:{port}/", enable_automatic_reconnection=False,
                         method=lambda ev: closed.set() if ev.type == "close" else None)
    try:
        assert client.start(timeout=WAIT)["success"]
        client.send("quit")
        assert dropped.wait(WAIT)
        assert closed.wait(WAIT)
    finally:
        client.close()
    gc.collect()
    # The process carries on: a new server and client work.
    rec = Recorder()
    with ixws.Server(port=0, method=rec) as again:
        assert again.start()["success"]
        c2 = connect(again)
        c2.send("still here")
        assert rec.next("message").data == "still here"
        c2.close()


def test_exception_in_callback_is_logged_and_connection_carries_on(server_rec):
    server, srec = server_rec
    logged = threading.Event()
    records: List[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record):
            records.append(record)
            if "boom from callback" in (record.exc_text or "") or (
                    record.exc_info and "boom from callback" in str(record.exc_info[1])):
                logged.set()

    handler = Catch(level=logging.ERROR)
    log = logging.getLogger("ixws")
    log.addHandler(handler)
    try:
        seen = []

        def bad(ev):
            seen.append(ev.type)
            if ev.type == "message" and ev.data == "boom":
                raise RuntimeError("boom from callback")

        client = connect(server, method=bad)
        srec.next("open")
        server.send("boom")
        assert logged.wait(WAIT)
        assert records[0].name == "ixws"
        # the connection carries on, both ways
        server.send("after")
        client.send("ping-back")
        assert srec.next("message").data == "ping-back"
        assert client.ready_state == "OPEN"
        client.close()
    finally:
        log.removeHandler(handler)


@pytest.mark.engine_extension
def test_set_inline_callbacks_chooses_the_thread_callbacks_run_on(server_rec):
    server, srec = server_rec
    crec = Recorder(lambda ev: client.send("again") if ev.type == "message" and ev.data == "go" else None)
    client = connect(server, method=crec)
    srec.next("open")
    crec.next("open")
    try:
        ixws.set_inline_callbacks(False)
        srec.thread_names.clear()
        crec.thread_names.clear()
        server.send("go")
        assert srec.next("message").data == "again"
        assert srec.thread_names == crec.thread_names == {"ixws-dispatcher"}

        ixws.set_inline_callbacks(True)
        srec.thread_names.clear()
        for _ in range(20):
            server.send("go")
            assert srec.next("message").data == "again"
        # Nothing else is running: the engine threads run the callbacks themselves.
        assert srec.thread_names - {"ixws-dispatcher"}, srec.thread_names
    finally:
        ixws.set_inline_callbacks(True)
        client.close()
    with pytest.raises(TypeError):
        ixws.set_inline_callbacks(1)


def test_callbacks_never_overlap_across_servers_and_clients():
    # Callbacks run on the dispatcher thread or inline on an engine thread, but
    # one at a time across every server and client of the process.
    lock = threading.Lock()
    state = {"active": 0, "max": 0, "calls": 0}
    threads = set()
    done = threading.Event()
    total = 4 * 150

    def guarded(ev):
        with lock:
            state["active"] += 1
            state["max"] = max(state["max"], state["active"])
            state["calls"] += 1
        threads.add(threading.current_thread().name)
        os.sched_yield()  # lets other threads take the GIL here: an overlap would show
        with lock:
            state["active"] -= 1

    received = {"n": 0}

    def client_cb(ev):
        guarded(ev)
        if ev.type == "message":
            with lock:
                received["n"] += 1
                if received["n"] == total:
                    done.set()

    servers = []
    for _ in range(2):
        def server_cb(ev, box=[]):
            guarded(ev)
            if ev.type == "message":
                box[0].send(ev.data, clients=[ev.client])
        s = ixws.Server(port=0, host="127.0.0.1", method=server_cb)
        server_cb.__defaults__[0].append(s)
        assert s.start()["success"]
        servers.append(s)
    clients = [ixws.Client(url=f"ws://127.0.0.1:{s.port}/", method=client_cb,
                           enable_automatic_reconnection=False) for s in servers for _ in range(2)]
    try:
        for c in clients:
            assert c.start(timeout=WAIT)["success"]
        for i in range(150):
            for c in clients:
                c.send(f"m{i}")
        assert done.wait(WAIT), received
        assert state["max"] == 1, state
        assert threading.current_thread().name not in threads
    finally:
        for c in clients:
            c.close()
        for s in servers:
            s.close()


def test_event_order_per_connection(server_rec):
    server, srec = server_rec
    client = connect(server)
    srec.next("open")
    for i in range(200):
        client.send(str(i))
    got = [srec.next("message").data for _ in range(200)]
    assert got == [str(i) for i in range(200)]
    client.close()


# ---------------------------------------------------------------- messages()


def test_messages_drain_without_method():
    with ixws.Server(port=0) as server:
        assert server.start()["success"]
        client = ixws.Client(url=f"ws://127.0.0.1:{server.config['port']}/m",
                             enable_automatic_reconnection=False)
        assert client.start(timeout=5)["success"]
        client.send("one")
        client.send(b"two")
        events: List[ixws.Event] = []
        deadline = time.monotonic() + WAIT
        while len([e for e in events if e.type == "message"]) < 2 and time.monotonic() < deadline:
            events += server.messages(timeout=1)
        assert [e.type for e in events][:3] == ["open", "message", "message"]
        assert events[0].uri == "/m"
        assert [e.data for e in events[1:3]] == ["one", b"two"]
        assert server.messages() == []  # drained
        cev = client.messages(timeout=WAIT)
        assert cev[0].type == "open"
        client.close()


# ----------------------------------------------------------- lifecycle/close


def test_context_managers_close():
    with ixws.Server(port=0) as server:
        assert server.start()["success"]
        port = server.config["port"]
        with ixws.Client(url=f"ws://127.0.0.1:{port}/", enable_automatic_reconnection=False) as client:
            assert client.start(timeout=5)["success"]
        assert client.closed
        assert client.ready_state == "CLOSED"
        with pytest.raises(RuntimeError):
            client.send("x")
        with pytest.raises(RuntimeError):
            client.start()
    assert server.closed
    assert server.clients() == []
    with pytest.raises(RuntimeError):
        server.start()
    with pytest.raises(RuntimeError):
        server.send("x")
    server.stop()
    server.close()  # idempotent
    # the port is free again
    with ixws.Server(port=port) as again:
        assert again.start()["success"]


def test_garbage_collection_stops_the_server():
    server = ixws.Server(port=0)
    assert server.start()["success"]
    port = server.config["port"]
    client = ixws.Client(url=f"ws://127.0.0.1:{port}/", enable_automatic_reconnection=False)
    assert client.start(timeout=5)["success"]
    wserver = weakref.ref(server)
    wclient = weakref.ref(client)
    del server, client
    gc.collect()
    assert wserver() is None and wclient() is None
    with ixws.Server(port=port) as again:
        assert again.start()["success"]


def test_exit_with_live_objects_returns_promptly(tmp_path):
    script = tmp_path / "exit_live.py"
    script.write_text(textwrap.dedent("""
        import threading, ixws
        got = threading.Event()
        def on(ev):
            if ev.type == "message":
                got.set()
        server = ixws.Server(port=0, method=on)
        assert server.start()["success"]
        clients = []
        for i in range(3):
            c = ixws.Client(url="ws://127.0.0.1:%d/" % server.config["port"], method=lambda ev: None)
            assert c.start(timeout=5)["success"]
            clients.append(c)
        clients[0].send("hello")
        assert got.wait(10)
        unstarted = ixws.Server(port=0)
        print("ready", flush=True)
        # exit with everything still open
    """))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert "ready" in proc.stdout
    assert elapsed < 15, elapsed


# ------------------------------------------------------------------- interop


def test_websocket_client_peer_against_server():
    websocket = pytest.importorskip("websocket")

    def echo(ev):
        if ev.type == "message":
            srv.send(ev.data, clients=[ev.client])

    with ixws.Server(port=0, method=echo) as srv:
        assert srv.start()["success"]
        ws = websocket.create_connection(f"ws://127.0.0.1:{srv.config['port']}/", timeout=WAIT)
        try:
            ws.send("hello")
            assert ws.recv() == "hello"
            ws.send_binary(b"\x00\x01")
            assert ws.recv() == b"\x00\x01"
        finally:
            ws.close()


def test_client_against_websockets_server():
    websockets = pytest.importorskip("websockets")
    from websockets.asyncio.server import serve

    ready = threading.Event()
    state: dict = {}

    async def handler(conn):
        state["path"] = conn.request.path
        async for msg in conn:
            await conn.send(msg)

    async def main():
        async with serve(handler, "127.0.0.1", 0) as srv:
            state["port"] = srv.sockets[0].getsockname()[1]
            state["loop"] = asyncio.get_running_loop()
            state["stop"] = asyncio.Event()
            ready.set()
            await state["stop"].wait()

    t = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    t.start()
    assert ready.wait(WAIT)
    crec = Recorder()
    client = ixws.Client(url=f"ws://127.0.0.1:{state['port']}/peer?x=1", method=crec,
                         enable_automatic_reconnection=False)
    try:
        assert client.start(timeout=5)["success"]
        client.send("interop")
        assert crec.next("message").data == "interop"
        client.send(b"\xff")
        assert crec.next("message").data == b"\xff"
        assert state["path"] == "/peer?x=1"
    finally:
        client.close()
        state["loop"].call_soon_threadsafe(state["stop"].set)
        t.join(WAIT)


# --------------------------------------------------------- engine extensions


@pytest.mark.engine_extension
def test_max_message_size_closes_with_1009():
    srec = Recorder()
    with ixws.Server(port=0, method=srec, max_message_size=1000) as server:
        assert server.start()["success"]
        crec = Recorder()
        client = connect(server, method=crec)
        srec.next("open")
        client.send("a" * 999)
        assert srec.next("message").data == "a" * 999
        client.send("b" * 2000)
        ev = srec.next("close")
        assert ev.code == 1009
        assert crec.next("close").code == 1009
        client.close()


# ------------------------------------------------------- more client options


def test_client_restart_after_stop(server_rec):
    server, srec = server_rec
    crec = Recorder()
    client = connect(server, method=crec)
    crec.next("open")
    client.stop()
    crec.next("close")
    assert client.ready_state == "CLOSED"
    assert client.start(timeout=5)["success"]
    crec.next("open")
    client.send("again")
    assert srec.next("message").data == "again"
    client.close()


def test_subprotocols_are_offered(server_rec):
    server, srec = server_rec
    client = connect(server, subprotocols=["chat", "superchat"])
    ev = srec.next("open")
    lower = {k.lower(): v for k, v in ev.headers.items()}
    assert lower["sec-websocket-protocol"] == "chat,superchat"
    client.close()


def test_per_message_deflate_compresses(server_rec):
    server, srec = server_rec
    client = connect(server, perMessageDeflate={"enabled": True, "clientMaxWindowBits": 15,
                                                "serverMaxWindowBits": 15})
    srec.next("open")
    text = "compress me " * 1000
    res = client.send(text)
    assert res["success"] and res["payloadSize"] == len(text)
    assert res["wireSize"] < res["payloadSize"] // 10
    ev = srec.next("message")
    assert ev.data == text and ev.wireSize == res["wireSize"]
    out = server.send(text)[0]
    assert out["success"] and out["wireSize"] < out["payloadSize"] // 10
    client.close()


def test_server_can_decline_deflate():
    srec = Recorder()
    with ixws.Server(port=0, method=srec, disable_per_message_deflate=True) as server:
        assert server.start()["success"]
        client = connect(server, perMessageDeflate=True)
        srec.next("open")
        text = "a" * 5000
        res = client.send(text)
        assert res["success"] and res["wireSize"] == res["payloadSize"] == 5000
        assert srec.next("message").data == text
        client.close()


def test_event_object_basics():
    ev = ixws.Event("message", server=-1, client=2, window=1, process=2, data="x", binary=False, wireSize=1)
    assert ev.context == {"wireSize": 1, "binary": False, "data": "x"}
    assert "message" in repr(ev)
    with pytest.raises(ValueError):
        ixws.Event("bogus")
    with pytest.raises(TypeError):
        ixws.Event("open", nope=1)
    with pytest.raises(AttributeError):
        ev.something_else = 1  # __slots__
    ev = ixws.Event("open", uri="/x", headers={"Host": "h"}, protocol="")
    assert ev.context == {"Host": "h", "uri": "/x", "protocol": ""}
