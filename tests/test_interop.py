"""Interoperability of ixws.Server and ixws.Client with real peers.

Peers: the `websockets` package (asyncio), `websocket-client`, a hand-made
echo server over plain sockets, and raw sockets that break the protocol on
purpose. Every wait is bounded; servers and clients are closed by fixtures.
"""
from __future__ import annotations

import asyncio
import os
import threading
import socket
import struct
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import ixws

try:  # tests/ is on sys.path (rootdir-relative imports) unless it becomes a package
    from _peers import (MIB, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawConn,
                        Recorder, TinyEchoServer, WebsocketsServer, build_frame, close_payload,
                        parse_close, parse_headers, read_http_head, read_until_eof,
                        upgrade_request, wait_until)
except ImportError:  # pragma: no cover
    from tests._peers import (MIB, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawConn,
                              Recorder, TinyEchoServer, WebsocketsServer, build_frame, close_payload,
                              parse_close, parse_headers, read_http_head, read_until_eof,
                              upgrade_request, wait_until)

websockets = pytest.importorskip("websockets")
websocket = pytest.importorskip("websocket")  # websocket-client
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

HOST = "127.0.0.1"
BIG = 16 * MIB


def big_text() -> str:
    """Nearly 16 MiB of UTF-8 with multi-byte characters, so that frame splits
    fall inside code points (within the default maxMessageSize of 16 MiB)."""
    unit = "h\u00e9llo w\u00f6rld \u20ac \U0001f600 "  # 1+2+3+4-byte characters
    n = BIG // len(unit.encode("utf-8"))
    return unit * n


def big_binary() -> bytes:
    return os.urandom(BIG)


def as_bytes(data: Any) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def make_server():
    """make_server(echo=True, **options) -> (server, recorder), started on a free port."""
    made: List[Any] = []

    def factory(echo: bool = True, **options: Any) -> Tuple[Any, Recorder]:
        holder: Dict[str, Any] = {}

        def on_event(ev: Any) -> None:
            if echo and ev.type == "message":
                holder["server"].send(ev.data, clients=[ev.client])

        rec = Recorder(on_event)
        opts = {"host": HOST, "port": 0, "method": rec}
        opts.update(options)
        server = ixws.Server(opts)
        holder["server"] = server
        made.append(server)
        res = server.start()
        assert res == {"success": True, "message": ""}, res
        assert server.config["port"] != 0
        return server, rec

    yield factory
    for server in made:
        server.close()


@pytest.fixture
def make_client():
    """make_client(url, **options) -> (client, recorder); not started."""
    made: List[Any] = []

    def factory(url: str, **options: Any) -> Tuple[Any, Recorder]:
        rec = Recorder()
        opts = {"url": url, "method": rec, "enableAutomaticReconnection": False}
        opts.update(options)
        client = ixws.Client(opts)
        made.append(client)
        return client, rec

    yield factory
    for client in made:
        client.close()


def url_of(server: Any, path: str = "/") -> str:
    return f"ws://{HOST}:{server.config['port']}{path}"


def run_async(coro: Any, timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wsc_connect(server: Any, path: str = "/", timeout: float = 10.0) -> Any:
    return websocket.create_connection(url_of(server, path), timeout=timeout)


def connect_async(server: Any, path: str = "/") -> Any:
    return ws_connect(url_of(server, path), compression=None, max_size=None,
                      ping_interval=None, open_timeout=10, close_timeout=5)


def only_client(server: Any, timeout: float = 5.0) -> int:
    ids = wait_until(server.clients, timeout)
    assert ids and len(ids) == 1, ids
    return ids[0]


# ============================================= ixws.Server <-> `websockets`


def test_server_websockets_text_binary_empty(make_server):
    server, rec = make_server()

    async def go() -> None:
        async with connect_async(server, "/chat?room=1") as ws:
            for msg in ["hello", "h\u00e9llo \u20ac \U0001f600", "", b"\x00\x01\xff", b""]:
                await ws.send(msg)
                got = await asyncio.wait_for(ws.recv(), 10)
                assert type(got) is type(msg) and got == msg

    run_async(go())
    opened = rec.wait_for("open")
    assert opened[0].context["uri"] == "/chat?room=1"
    msgs = rec.wait_for("message", count=5)
    assert [(type(e.data), e.binary) for e in msgs] == [
        (str, False), (str, False), (str, False), (bytes, True), (bytes, True)]
    assert msgs[2].data == "" and msgs[4].data == b""
    ctx = msgs[3].context
    assert ctx["binary"] is True and ctx["data"] == b"\x00\x01\xff" and ctx["wireSize"] == 3


@pytest.mark.timeout(120)
def test_server_websockets_16mib(make_server):
    server, rec = make_server()
    text, blob = big_text(), big_binary()

    async def go() -> None:
        async with connect_async(server) as ws:
            await ws.send(text)
            got = await asyncio.wait_for(ws.recv(), 60)
            assert isinstance(got, str) and len(got) == len(text) and got == text
            await ws.send(blob)
            got = await asyncio.wait_for(ws.recv(), 60)
            assert isinstance(got, bytes) and got == blob

    run_async(go(), 110)
    msgs = rec.wait_for("message", count=2)
    assert msgs[0].wireSize == len(text.encode("utf-8"))
    assert msgs[1].wireSize == BIG


@pytest.mark.parametrize("code,reason", [(1000, ""), (1000, "done"), (4000, "bye")])
def test_server_websockets_peer_closes(make_server, code, reason):
    server, rec = make_server()

    async def go() -> Tuple[Optional[int], Optional[str]]:
        ws = await connect_async(server)
        await ws.close(code, reason)
        return ws.close_code, ws.close_reason

    peer_code, peer_reason = run_async(go())
    # the peer got our echo of its close frame
    assert (peer_code, peer_reason) == (code, reason)
    ev = rec.wait_for("close")[0]
    assert ev.context == {"code": code, "reason": reason, "remote": True}
    assert wait_until(lambda: server.clients() == [], 5), server.clients()


def test_server_websockets_server_closes(make_server):
    server, rec = make_server()

    async def go() -> Tuple[Optional[int], Optional[str]]:
        async with connect_async(server) as ws:
            cid = await asyncio.get_running_loop().run_in_executor(None, only_client, server)
            assert server.close_client(cid, 4001, "server bye") is True
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code, ws.close_reason

    assert run_async(go()) == (4001, "server bye")
    ev = rec.wait_for("close")[0]
    assert ev.context == {"code": 4001, "reason": "server bye", "remote": False}


def test_server_websockets_ping_pong(make_server):
    server, rec = make_server()

    async def go() -> float:
        async with connect_async(server) as ws:
            waiter = await ws.ping(b"abc")
            return await asyncio.wait_for(waiter, 5)

    latency = run_async(go())
    assert latency >= 0
    ev = rec.wait_for("ping")[0]
    assert as_bytes(ev.data) == b"abc"
    assert ev.context["wireSize"] == 3


# ======================================== ixws.Server <-> websocket-client


def test_server_wsclient_text_binary_empty(make_server):
    server, rec = make_server()
    ws = wsc_connect(server)
    try:
        for msg in ["hello", "\u00e9\u20ac\U0001f600", ""]:
            ws.send(msg)
            assert ws.recv_data() == (websocket.ABNF.OPCODE_TEXT, msg.encode("utf-8"))
        for msg in [b"\x00\xff\x10", b""]:
            ws.send_binary(msg)
            assert ws.recv_data() == (websocket.ABNF.OPCODE_BINARY, msg)
    finally:
        ws.close()
    msgs = rec.wait_for("message", count=5)
    assert [e.binary for e in msgs] == [False, False, False, True, True]
    assert msgs[2].data == "" and msgs[4].data == b""


@pytest.mark.timeout(120)
def test_server_wsclient_16mib(make_server):
    server, _ = make_server()
    text, blob = big_text(), big_binary()
    ws = wsc_connect(server, timeout=60)
    try:
        ws.send(text)
        op, data = ws.recv_data()
        assert op == websocket.ABNF.OPCODE_TEXT and data == text.encode("utf-8")
        ws.send_binary(blob)
        op, data = ws.recv_data()
        assert op == websocket.ABNF.OPCODE_BINARY and data == blob
    finally:
        ws.close()


@pytest.mark.parametrize("code,reason", [(1000, ""), (4000, "bye")])
def test_server_wsclient_peer_closes(make_server, code, reason):
    server, rec = make_server()
    ws = wsc_connect(server)
    only_client(server)
    ws.close(status=code, reason=reason.encode("utf-8"))
    ev = rec.wait_for("close")[0]
    assert ev.context == {"code": code, "reason": reason, "remote": True}
    assert wait_until(lambda: server.clients() == [], 5), server.clients()


def test_server_wsclient_server_closes(make_server):
    server, rec = make_server()
    ws = wsc_connect(server)
    try:
        cid = only_client(server)
        assert server.close_client(cid, 4002, "go away") is True
        op, payload = ws.recv_data(control_frame=True)
        assert op == websocket.ABNF.OPCODE_CLOSE
        assert parse_close(payload) == (4002, "go away")
    finally:
        ws.close()
    ev = rec.wait_for("close")[0]
    assert ev.context == {"code": 4002, "reason": "go away", "remote": False}


def test_server_wsclient_ping_pong(make_server):
    server, rec = make_server()
    ws = wsc_connect(server)
    try:
        ws.ping(b"hello-ping")
        op, payload = ws.recv_data(control_frame=True)
        assert (op, payload) == (websocket.ABNF.OPCODE_PONG, b"hello-ping")
        # the connection still carries data after the control frames
        ws.send("after")
        assert ws.recv() == "after"
    finally:
        ws.close()
    ev = rec.wait_for("ping")[0]
    assert as_bytes(ev.data) == b"hello-ping"


def test_server_stop_closes_peers_with_1000(make_server):
    server, rec = make_server()
    peers = [wsc_connect(server) for _ in range(3)]
    try:
        assert wait_until(lambda: len(server.clients()) == 3, 5)
        server.stop(1000, "Normal closure")  # the default is 1001 "Going away"
        for ws in peers:
            op, payload = ws.recv_data(control_frame=True)
            assert op == websocket.ABNF.OPCODE_CLOSE
            assert parse_close(payload)[0] == 1000
        closes = rec.wait_for("close", count=3)
        assert all(e.code == 1000 and e.remote is False for e in closes)
    finally:
        for ws in peers:
            ws.close()


@pytest.mark.engine_extension
def test_server_max_message_size_1009(make_server):
    server, rec = make_server(maxMessageSize=1000)
    ws = wsc_connect(server)
    try:
        ws.send_binary(b"a" * 1000)
        assert ws.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"a" * 1000)
        ws.send_binary(b"a" * 1001)
        op, payload = ws.recv_data(control_frame=True)
        assert op == websocket.ABNF.OPCODE_CLOSE
        assert parse_close(payload)[0] == 1009
    finally:
        ws.close()
    ev = rec.wait_for("close")[0]
    assert ev.code == 1009 and ev.remote is False
    assert len(rec.of("message")) == 1


# ================================== ixws.Client <-> `websockets` / tiny echo


@pytest.fixture(params=["websockets", "tiny"])
def peer(request):
    server = WebsocketsServer() if request.param == "websockets" else TinyEchoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def started_client(make_client, peer, path: str = "/chat?x=1", **options: Any) -> Tuple[Any, Recorder]:
    client, rec = make_client(peer.url + path, **options)
    res = client.start(timeout=10)
    assert res["success"] is True, res
    assert res["http_status"] == 101
    return client, rec


def test_client_open_event(make_client, peer):
    client, rec = make_client(peer.url + "/chat?x=1")
    res = client.start(timeout=10)
    assert res["success"] is True and res["http_status"] == 101, res
    assert res["uri"] == "/chat?x=1"
    assert "sec-websocket-accept" in {k.lower() for k in res["headers"]}
    ev = rec.wait_for("open")[0]
    assert ev.server == 0
    ctx = ev.context
    assert ctx["uri"] == "/chat?x=1"
    lower = {k.lower(): v for k, v in ctx.items() if isinstance(v, str)}
    assert lower.get("upgrade", "").lower() == "websocket"
    assert "sec-websocket-accept" in lower
    if isinstance(peer, TinyEchoServer):
        assert lower.get("x-tiny-echo") == "yes"
        head = peer.requests.get(timeout=5)
        assert head.startswith(b"GET /chat?x=1 HTTP/1.1\r\n")
    else:
        path, headers = peer.requests.get(timeout=5)
        assert path == "/chat?x=1"
        assert headers["upgrade"].lower() == "websocket"


def test_client_text_binary_round_trip(make_client, peer):
    client, rec = started_client(make_client, peer)
    res = client.send("hello")
    assert res == {"success": True, "compressionError": False, "payloadSize": 5, "wireSize": 5}
    res = client.send("\u20ac")  # payloadSize counts UTF-8 bytes
    assert res["success"] is True and res["payloadSize"] == 3 and res["wireSize"] == 3
    res = client.send(b"\x00\x01\x02\xff")
    assert res == {"success": True, "compressionError": False, "payloadSize": 4, "wireSize": 4}
    res = client.send(b"")
    assert res["success"] is True and res["payloadSize"] == 0
    msgs = rec.wait_for("message", count=4)
    assert [(m.data, m.binary) for m in msgs] == [
        ("hello", False), ("\u20ac", False), (b"\x00\x01\x02\xff", True), (b"", True)]
    assert all(m.client == client.ref and m.server == 0 for m in msgs)
    if isinstance(peer, TinyEchoServer):
        assert peer.frames_seen >= 4 and peer.unmasked_frames == 0


@pytest.mark.timeout(120)
def test_client_16mib_round_trip(make_client, peer):
    client, rec = started_client(make_client, peer)
    text, blob = big_text(), big_binary()
    res = client.send(text)
    assert res["success"] is True and res["payloadSize"] == len(text.encode("utf-8"))
    got = rec.wait_for("message", timeout=60)[0]
    assert got.binary is False and got.data == text
    res = client.send(blob)
    assert res["success"] is True and res["payloadSize"] == BIG and res["wireSize"] == BIG
    got = rec.wait_for("message", timeout=60, count=2)[1]
    assert got.binary is True and got.data == blob
    if isinstance(peer, TinyEchoServer):
        assert peer.unmasked_frames == 0


@pytest.mark.parametrize("code,reason", [(1000, "normal"), (4002, "later")])
def test_client_server_initiated_close(make_client, peer, code, reason):
    client, rec = started_client(make_client, peer)
    assert client.send(f"close:{code}:{reason}")["success"] is True
    ev = rec.wait_for("close", timeout=10)[0]
    assert ev.context == {"code": code, "reason": reason, "remote": True}
    # after the close, sending fails without raising
    res = client.send("too late")
    assert res["success"] is False
    res = client.send(b"too late")
    assert res["success"] is False
    # automatic reconnection is off: no second open
    assert len(rec.of("open")) == 1


def test_client_stop_with_code(make_client, peer):
    client, rec = started_client(make_client, peer)
    client.stop(4000, "bye")
    ev = rec.wait_for("close", timeout=10)[0]
    assert ev.context == {"code": 4000, "reason": "bye", "remote": False}
    received = peer.closed if isinstance(peer, WebsocketsServer) else peer.closes
    assert received.get(timeout=5) == (4000, "bye")
    assert client.send("x")["success"] is False


def test_client_ping_pong(make_client, peer):
    client, rec = started_client(make_client, peer)
    assert client.ping(b"ping!")["success"] is True
    ev = rec.wait_for("pong", timeout=5)[0]
    assert as_bytes(ev.data) == b"ping!"


def test_client_connection_refused_is_a_result():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    rec = Recorder()
    client = ixws.Client({"url": f"ws://{HOST}:{port}/", "method": rec,
                          "enableAutomaticReconnection": False})
    try:
        res = client.start(timeout=5)
        assert res["success"] is False
        assert res["errorStr"]
        rec.wait_for("error", timeout=5)
        assert client.send("x")["success"] is False
    finally:
        client.close()


# ===================================================== protocol violations


def _raw(server: Any, path: str = "/") -> RawConn:
    return RawConn.connect(HOST, server.config["port"], path)


VIOLATIONS = [
    pytest.param(lambda: build_frame(OP_TEXT, b"hi", mask=False), 1002, id="unmasked",
                 marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_TEXT, b"hi", rsv=2), 1002, id="rsv2"),
    pytest.param(lambda: build_frame(OP_TEXT, b"hi", rsv=1), 1002, id="rsv3"),
    pytest.param(lambda: build_frame(OP_TEXT, b"hi", rsv=4), 1002, id="rsv1-without-deflate"),
    pytest.param(lambda: build_frame(OP_TEXT, b"ok \xff\xfe"), 1007, id="invalid-utf8"),
    pytest.param(lambda: build_frame(OP_TEXT, b"\xed\xa0\x80"), 1007, id="utf8-surrogate"),
    pytest.param(lambda: build_frame(OP_PING, b"p" * 126), 1002, id="ping-126-bytes"),
    pytest.param(lambda: build_frame(0x3, b"x"), 1002, id="reserved-opcode"),
    pytest.param(lambda: build_frame(OP_PING, b"x", fin=False), 1002, id="fragmented-ping"),
    pytest.param(lambda: build_frame(OP_CONT, b"x"), 1002, id="continuation-without-start"),
    pytest.param(lambda: build_frame(OP_TEXT, b"a", fin=False) + build_frame(OP_TEXT, b"b"), 1002,
                 id="new-message-inside-fragmented"),
    pytest.param(lambda: build_frame(OP_CLOSE, close_payload(999)), 1002, id="close-code-999"),
    pytest.param(lambda: build_frame(OP_CLOSE, close_payload(1004)), 1002, id="close-code-1004"),
    pytest.param(lambda: build_frame(OP_CLOSE, b"\x03\xe8\xff"), 1007, id="close-reason-not-utf8"),
    pytest.param(lambda: build_frame(OP_PING, b"x", rsv=4), 1002, id="rsv1-on-ping"),
    # below: checks upstream lacks (spec section 19, defects 4, 12, 13)
    pytest.param(lambda: build_frame(OP_CLOSE, close_payload(1000, "r" * 124)), 1002,
                 id="close-126-bytes", marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_CLOSE, b"\x03"), 1002, id="close-1-byte",
                 marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_CLOSE, close_payload(1005)), 1002, id="close-code-1005",
                 marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_CLOSE, close_payload(1006)), 1002, id="close-code-1006",
                 marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_CLOSE, close_payload(5000)), 1002, id="close-code-5000",
                 marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_CLOSE, close_payload(65535)), 1002, id="close-code-65535",
                 marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_PONG, b"p" * 126), 1002, id="pong-126-bytes",
                 marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_TEXT, b"ok \xc0\xaf", fin=False), 1007,
                 id="utf8-fail-fast-first-fragment", marks=pytest.mark.engine_extension),
    pytest.param(lambda: build_frame(OP_TEXT, b"ok", fin=False) + build_frame(OP_CONT, b"\xf5", fin=False),
                 1007, id="utf8-fail-fast-later-fragment", marks=pytest.mark.engine_extension),
    pytest.param(lambda: b"\x82\xff" + b"\x80" + b"\x00" * 7 + b"\x00\x00\x00\x00", 1002,
                 id="64bit-length-top-bit", marks=pytest.mark.engine_extension),
]


@pytest.mark.parametrize("make_bad,expected", VIOLATIONS)
def test_protocol_violation_closes_only_that_peer(make_server, make_bad, expected):
    server, rec = make_server()
    bystander = wsc_connect(server)
    raw = None
    try:
        bystander_id = only_client(server)
        raw = _raw(server)
        assert wait_until(lambda: len(server.clients()) == 2, 5)
        raw_id = [c for c in server.clients() if c != bystander_id][0]
        raw.send_raw(make_bad())
        code, _reason = raw.expect_close(5)
        assert code == expected
        assert raw.wait_eof(5), "server kept the TCP connection open after the protocol error"
        ev = rec.wait_for("close", pred=lambda e: e.client == raw_id)[0]
        assert ev.code == expected
        # nothing of the bad frame reached the application
        assert rec.of("message", raw_id) == []
        # the other peer is unaffected
        assert wait_until(lambda: server.clients() == [bystander_id], 5), server.clients()
        bystander.send("still here")
        assert bystander.recv() == "still here"
    finally:
        if raw is not None:
            raw.close()
        bystander.close()


def test_fragmented_message_with_interleaved_ping(make_server):
    """Not a violation: control frames may sit between fragments."""
    server, rec = make_server()
    raw = _raw(server)
    try:
        raw.send_raw(build_frame(OP_TEXT, b"hel", fin=False)
                     + build_frame(OP_PING, b"mid")
                     + build_frame(OP_CONT, b"lo \xe2\x82", fin=False)  # euro sign split
                     + build_frame(OP_CONT, b"\xac"))
        pong = raw.recv_frame(5)
        assert pong is not None and (pong.opcode, pong.payload) == (OP_PONG, b"mid")
        assert not pong.masked
        op, payload = raw.recv_message(5)
        assert (op, payload) == (OP_TEXT, "hello \u20ac".encode())
        raw.send_frame(OP_CLOSE, close_payload(1000, "ok"))
        assert raw.expect_close(5) == (1000, "ok")
    finally:
        raw.close()
    ev = rec.wait_for("close")[0]
    assert (ev.code, ev.reason, ev.remote) == (1000, "ok", True)


def _http_exchange(port: int, request: bytes, timeout: float = 5.0) -> Tuple[bytes, bool]:
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_until_eof(s, timeout)
    finally:
        s.close()


BAD_REQUESTS = [
    pytest.param(b"GARBAGE\r\n\r\n", 400, id="garbage"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", 400,
                 id="tls-hello"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n", 400, id="no-key"),
    pytest.param(b"POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 400, id="post"),
    # RFC 6455 4.2.2: an unsupported version gets e.g. 426 plus the supported version
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
                 426, id="version-8"),
]


@pytest.mark.parametrize("request_bytes,status", BAD_REQUESTS)
def test_bad_http_request_gets_4xx(make_server, request_bytes, status):
    server, rec = make_server()
    data, eof = _http_exchange(server.config["port"], request_bytes)
    # upstream answers 400 to all of these
    assert data.startswith(b"HTTP/1.1 400") or data.startswith(f"HTTP/1.1 {status}".encode()), data
    assert eof, "server did not close after the error answer"
    assert rec.of("open") == []
    # the server still serves normal peers
    ws = wsc_connect(server)
    try:
        ws.send("ok")
        assert ws.recv() == "ok"
    finally:
        ws.close()


def _check_well_formed_http_error(data: bytes, status: int) -> Dict[str, str]:
    assert data.startswith(f"HTTP/1.1 {status} ".encode()), data
    assert b"\r\n\r\n" in data, f"no blank line after the head: {data!r}"
    head, _, body = data.partition(b"\r\n\r\n")
    headers = parse_headers(head + b"\r\n\r\n")
    assert "content-length" in headers, f"no Content-Length: {data!r}"
    assert int(headers["content-length"]) == len(body), data
    return headers


@pytest.mark.engine_extension
@pytest.mark.parametrize("request_bytes,status", BAD_REQUESTS)
def test_bad_http_request_answer_is_well_formed(make_server, request_bytes, status):
    server, _ = make_server()
    data, eof = _http_exchange(server.config["port"], request_bytes)
    headers = _check_well_formed_http_error(data, status)
    if status == 426:
        assert headers.get("sec-websocket-version") == "13", data
    assert eof


@pytest.mark.engine_extension
def test_oversized_request_head_gets_431(make_server):
    server, rec = make_server()
    req, _ = upgrade_request(HOST, server.config["port"])
    pad = "".join(f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(17)).encode()  # ~17.3 KB
    # no terminating blank line: the limit must trip while the head is still open
    data, eof = _http_exchange(server.config["port"], req[:-2] + pad)
    _check_well_formed_http_error(data, 431)
    assert eof
    # a complete head just below the limit is still accepted
    small_pad = "".join(f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(12)).encode()
    s = socket.create_connection((HOST, server.config["port"]), timeout=5)
    try:
        s.sendall(req[:-2] + small_pad + b"\r\n")
        head, _ = read_http_head(s, 5)
        assert head.startswith(b"HTTP/1.1 101"), head
    finally:
        s.close()


@pytest.mark.timeout(30)
def test_silent_tcp_client_dropped_after_handshake_timeout(make_server):
    server, rec = make_server(handshakeTimeout=1)
    port = server.config["port"]
    silent = socket.create_connection((HOST, port), timeout=10)
    partial = socket.create_connection((HOST, port), timeout=10)
    try:
        t0 = time.monotonic()
        partial.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        # while both hang, a normal peer still gets through
        ws = wsc_connect(server)
        try:
            ws.send("ok")
            assert ws.recv() == "ok"
        finally:
            ws.close()
        _data, eof = read_until_eof(silent, 8)
        elapsed = time.monotonic() - t0
        assert eof, "silent client not dropped within 8 s (handshakeTimeout=1)"
        assert 0.5 <= elapsed <= 5.0, elapsed
        _data, eof = read_until_eof(partial, 5)
        assert eof, "half-sent request not dropped"
        assert time.monotonic() - t0 <= 6.0
    finally:
        silent.close()
        partial.close()
    assert len(rec.of("open")) == 1  # only the normal peer


@pytest.mark.engine_extension
def test_max_connections_answers_503(make_server):
    server, rec = make_server(maxConnections=2)
    port = server.config["port"]
    a = wsc_connect(server)
    b = wsc_connect(server)
    try:
        assert wait_until(lambda: len(server.clients()) == 2, 5)
        req, _ = upgrade_request(HOST, port)
        data, eof = _http_exchange(port, req)
        headers = _check_well_formed_http_error(data, 503)
        assert eof
        assert headers  # e.g. Retry-After; not required
        # the existing connections are untouched
        a.send("a")
        assert a.recv() == "a"
        # freeing a slot lets the next one in
        b.close()
        assert wait_until(lambda: len(server.clients()) == 1, 5)
        c = websocket.create_connection(url_of(server), timeout=10)
        try:
            c.send("c")
            assert c.recv() == "c"
        finally:
            c.close()
    finally:
        a.close()
        b.close()
    assert len(rec.of("open")) == 3


def test_our_client_against_our_server(make_server, make_client):
    server, srec = make_server()
    client, crec = make_client(url_of(server, "/self?a=b"))
    assert client.start(timeout=10)["success"] is True
    assert client.send("hi")["success"] is True
    assert client.send(b"\x01")["success"] is True
    msgs = crec.wait_for("message", count=2)
    assert [(m.data, m.binary) for m in msgs] == [("hi", False), (b"\x01", True)]
    assert srec.wait_for("open")[0].uri == "/self?a=b"
    client.stop(4005, "done")
    ev = srec.wait_for("close")[0]
    assert ev.context == {"code": 4005, "reason": "done", "remote": True}
    ev = crec.wait_for("close")[0]
    assert ev.context == {"code": 4005, "reason": "done", "remote": False}


# ===================================================== more close paths


def test_peer_close_without_status_gives_1005(make_server):
    server, rec = make_server()
    raw = _raw(server)
    try:
        raw.send_frame(OP_CLOSE, b"")
        code, _ = raw.expect_close(5)
        assert code is None  # answered with an empty close frame
        assert raw.wait_eof(5)
    finally:
        raw.close()
    ev = rec.wait_for("close")[0]
    assert ev.code == 1005 and ev.remote is True


def test_peer_tcp_drop_gives_1006(make_server):
    server, rec = make_server()
    raw = _raw(server)
    only_client(server)
    raw.close()
    ev = rec.wait_for("close")[0]
    assert ev.code == 1006 and ev.remote is False
    assert wait_until(lambda: server.clients() == [], 5), server.clients()


def test_server_close_with_unicode_reason(make_server):
    server, rec = make_server()
    reason = "\u00e9" * 61  # 122 bytes: the longest reason that fits a close frame with a code
    raw = _raw(server)
    try:
        cid = only_client(server)
        assert server.close_client(cid, 4003, reason) is True
        assert raw.expect_close(5) == (4003, reason)
        raw.send_frame(OP_CLOSE, close_payload(4003, reason))
        assert raw.wait_eof(5)
    finally:
        raw.close()
    ev = rec.wait_for("close")[0]
    assert ev.context == {"code": 4003, "reason": reason, "remote": False}


def test_send_to_gone_or_unknown_client(make_server):
    server, rec = make_server()
    ws = wsc_connect(server)
    cid = only_client(server)
    ws.close()
    rec.wait_for("close")
    res = server.send("x", clients=[cid, 9999])
    assert [r["client"] for r in res] == [cid, 9999]
    assert [r["success"] for r in res] == [False, False]
    assert server.close_client(9999, 1000, "") is False


# ================================== handshake validation by our client


@pytest.mark.parametrize("mode", [
    "status-404",
    "bad-accept",
    pytest.param("unknown-extension", marks=pytest.mark.engine_extension),
    pytest.param("bad-upgrade", marks=pytest.mark.engine_extension),
])
def test_client_rejects_bad_handshake(make_client, mode):
    peer = TinyEchoServer(mode).start()
    try:
        client, rec = make_client(peer.url + "/")
        res = client.start(timeout=5)
        assert res["success"] is False, res
        assert res["errorStr"]
        if mode == "status-404":
            assert res["http_status"] == 404
        err = rec.wait_for("error", timeout=5)[0]
        assert err.context["reason"]
        if mode == "status-404":
            assert err.http_status == 404
        assert rec.of("open") == []
        assert client.send("x")["success"] is False
    finally:
        peer.stop()


@pytest.mark.engine_extension
def test_client_rejects_masked_frames_from_server(make_client):
    peer = TinyEchoServer("masked").start()
    try:
        client, rec = make_client(peer.url + "/")
        assert client.start(timeout=5)["success"] is True
        client.send("hi")  # the echo comes back masked: a protocol error for a client
        ev = rec.wait_for("close", timeout=5)[0]
        assert ev.code == 1002 and ev.remote is False
        assert rec.of("message") == []
        assert peer.closes.get(timeout=5)[0] == 1002
    finally:
        peer.stop()


# ====================================================== concurrency, fragments


def test_server_many_concurrent_websockets_clients_in_order(make_server):
    server, rec = make_server()
    n_clients, n_msgs = 20, 200

    async def one(i: int) -> None:
        async with connect_async(server, f"/c{i}") as ws:
            async def reader() -> List[Any]:
                return [await ws.recv() for _ in range(n_msgs)]
            task = asyncio.ensure_future(reader())
            for j in range(n_msgs):
                await ws.send(f"{i}:{j}" if j % 2 else f"{i}:{j}".encode())
            got = await asyncio.wait_for(task, 30)
            assert got == [f"{i}:{j}" if j % 2 else f"{i}:{j}".encode() for j in range(n_msgs)]

    async def all_clients() -> None:
        await asyncio.gather(*(one(i) for i in range(n_clients)))

    run_async(all_clients(), 60)
    rec.wait_for("close", count=n_clients, timeout=10)
    rec.wait_for("message", count=n_clients * n_msgs, timeout=10)
    # ids are reused once a connection is gone: follow each id's open event
    path_of: Dict[int, str] = {}
    by_path: Dict[str, List[str]] = {}
    for ev in list(rec.events):
        if ev.type == "open":
            path_of[ev.client] = ev.uri
        elif ev.type == "message":
            by_path.setdefault(path_of[ev.client], []).append(as_bytes(ev.data).decode())
    assert sorted(by_path) == sorted(f"/c{i}" for i in range(n_clients))
    for path, seq in by_path.items():
        i = path[2:]
        assert seq == [f"{i}:{j}" for j in range(n_msgs)], path
    rec.wait_for("close", count=n_clients, timeout=10)


def test_server_fragmented_message_from_websockets(make_server):
    server, rec = make_server()

    async def go() -> None:
        async with connect_async(server) as ws:
            await ws.send(["fra", "gme", "nted \u20ac"])
            assert await asyncio.wait_for(ws.recv(), 5) == "fragmented \u20ac"
            await ws.send([b"\x00", b"\x01"])
            assert await asyncio.wait_for(ws.recv(), 5) == b"\x00\x01"

    run_async(go())
    msgs = rec.wait_for("message", count=2)
    assert msgs[0].data == "fragmented \u20ac" and msgs[1].data == b"\x00\x01"
    frags = rec.of("fragment")
    # one per non-final frame; websockets ends a fragmented send with an empty
    # final frame, so every part given is a non-final frame: 3 + 2
    assert len(frags) == 5
    assert all(f.data in ("", b"") for f in frags)


# ===================================================== subprotocols, headers


def test_client_extra_headers_reach_the_server(make_client):
    peer = WebsocketsServer().start()
    try:
        client, rec = make_client(peer.url + "/h", extraHeaders={"X-Test-Header": "v1"})
        assert client.start(timeout=10)["success"] is True
        path, headers = peer.requests.get(timeout=5)
        assert path == "/h" and headers.get("x-test-header") == "v1"
    finally:
        peer.stop()


def test_client_subprotocol_with_websockets_server(make_client):
    peer = WebsocketsServer(subprotocols=["chat.v2", "chat"]).start()
    try:
        client, rec = make_client(peer.url + "/", subprotocols=["chat"])
        res = client.start(timeout=10)
        assert res["success"] is True, res
        ev = rec.wait_for("open")[0]
        assert ev.protocol == "chat" and ev.context["protocol"] == "chat"
    finally:
        peer.stop()


@pytest.mark.engine_extension
@pytest.mark.engine_extension
def test_server_subprotocol_negotiation_with_websockets_client(make_server):
    server, rec = make_server(subprotocols=["chat"])

    async def go() -> Optional[str]:
        async with ws_connect(url_of(server), compression=None, subprotocols=["superchat", "chat"],
                              ping_interval=None, open_timeout=10) as ws:
            return ws.subprotocol

    assert run_async(go()) == "chat"
    assert rec.wait_for("open")[0].protocol == "chat"


# permessage-deflate interop (websockets, every parameter combination, both
# directions) lives in test_deflate.py.


# ============================================ pipelining, heartbeats, reconnection


def test_server_frame_in_same_segment_as_upgrade_request(make_server):
    server, rec = make_server()
    port = server.config["port"]
    req, key = upgrade_request(HOST, port, "/pipelined")
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        s.sendall(req + build_frame(OP_TEXT, b"early") + build_frame(OP_BINARY, b"\x01\x02"))
        head, rest = read_http_head(s, 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        raw = RawConn(s, rest)
        assert raw.recv_message(5) == (OP_TEXT, b"early")
        assert raw.recv_message(5) == (OP_BINARY, b"\x01\x02")
    finally:
        s.close()


def test_client_frame_in_same_segment_as_101(make_client):
    peer = TinyEchoServer("greet").start()
    try:
        client, rec = make_client(peer.url + "/")
        assert client.start(timeout=5)["success"] is True
        ev = rec.wait_for("message", timeout=5)[0]
        assert (ev.data, ev.binary) == ("welcome", False)
        types = [e.type for e in rec.events]
        assert types.index("open") < types.index("message")
    finally:
        peer.stop()


@pytest.mark.engine_extension
def test_server_keeps_long_header_lines(make_server):
    """Upstream splits request header lines over 1023 bytes (defect 31)."""
    server, rec = make_server()
    cookie = "c=" + "x" * 3000
    ws = websocket.create_connection(url_of(server, "/long"), timeout=10, header=[f"Cookie: {cookie}"])
    try:
        ev = rec.wait_for("open")[0]
        headers = {k.lower(): v for k, v in ev.headers.items()}
        assert headers.get("cookie") == cookie
    finally:
        ws.close()


@pytest.mark.timeout(30)
def test_server_heartbeat_ping_to_raw_peer(make_server):
    server, rec = make_server(pingInterval=1)
    raw = _raw(server)
    try:
        frame = raw.recv_frame(5)
        assert frame is not None and frame.opcode == OP_PING and not frame.masked
        raw.send_frame(OP_PONG, frame.payload)
        rec.wait_for("pong", timeout=5)
        # a connection that answers pings stays open
        raw.send_frame(OP_TEXT, b"alive")
        assert raw.recv_message(5) == (OP_TEXT, b"alive")
    finally:
        raw.close()


@pytest.mark.engine_extension
@pytest.mark.timeout(30)
def test_client_ping_timeout_closes_1011(make_client):
    peer = TinyEchoServer("no-pong").start()
    try:
        client, rec = make_client(peer.url + "/", pingInterval=1, pingTimeout=1)
        assert client.start(timeout=5)["success"] is True
        ev = rec.wait_for("close", timeout=10)[0]
        assert ev.code == 1011 and ev.remote is False
    finally:
        peer.stop()


@pytest.mark.timeout(30)
def test_client_reconnects_after_server_close(make_client):
    peer = WebsocketsServer().start()
    try:
        client, rec = make_client(peer.url + "/again", enableAutomaticReconnection=True,
                                  minWaitBetweenReconnectionRetries=1,
                                  maxWaitBetweenReconnectionRetries=200)
        assert client.start(timeout=10)["success"] is True
        assert client.send("close:1001:going away")["success"] is True
        ev = rec.wait_for("close", timeout=10)[0]
        assert (ev.code, ev.reason, ev.remote) == (1001, "going away", True)
        rec.wait_for("open", count=2, timeout=10)
        assert wait_until(lambda: client.send("back")["success"], 5)
        got = rec.wait_for("message", timeout=5, pred=lambda e: e.data == "back")
        assert got
        client.stop()
    finally:
        peer.stop()


def test_client_sees_1006_when_server_drops_tcp(make_client):
    peer = TinyEchoServer("drop").start()
    try:
        client, rec = make_client(peer.url + "/")
        assert client.start(timeout=5)["success"] is True
        client.send("bye")
        ev = rec.wait_for("close", timeout=10)[0]
        assert ev.code == 1006 and ev.remote is False
        assert client.send("x")["success"] is False
    finally:
        peer.stop()


@pytest.mark.engine_extension
@pytest.mark.timeout(60)
def test_server_send_to_non_reading_peer_does_not_block_others(make_server):
    """Upstream's server send blocks until the peer reads; ours queues."""
    server, rec = make_server()
    raw = _raw(server)  # never reads
    bystander = None
    try:
        raw_id = only_client(server)
        done = threading.Event()
        results: List[Any] = []

        def blast() -> None:
            for _ in range(4):
                results.extend(server.send(b"z" * BIG, clients=[raw_id]))
            done.set()

        t = threading.Thread(target=blast, daemon=True)
        t.start()
        assert done.wait(20), "server.send blocked on a peer that does not read"
        assert len(results) == 4
        bystander = wsc_connect(server)
        bystander.send("still fast")
        assert bystander.recv() == "still fast"
    finally:
        raw.close()
        if bystander is not None:
            bystander.close()
    rec.wait_for("close", pred=lambda e: e.client == raw_id, timeout=10)
