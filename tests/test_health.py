"""Connections that stay healthy: reconnection with backoff, heartbeats with
pingTimeout, handshake control (timeouts, headers, subprotocols, redirects),
the server's handshake hook and its graceful stop.

Every wait is for an event with a deadline. Intervals are as small as the API
allows (backoff in ms, heartbeats and handshake timeouts in whole seconds).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import ixws

try:  # tests/ is on sys.path (rootdir-relative imports) unless it becomes a package
    from _peers import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, RawConn, Recorder, accept_for,
                        build_frame, close_payload, parse_close, parse_headers, read_http_head,
                        read_until_eof, upgrade_request, wait_until)
except ImportError:  # pragma: no cover
    from tests._peers import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, RawConn, Recorder, accept_for,
                              build_frame, close_payload, parse_close, parse_headers, read_http_head,
                              read_until_eof, upgrade_request, wait_until)

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402

HOST = "127.0.0.1"
WAIT = 10.0

extension = pytest.mark.engine_extension


# ------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture
def closing():
    """closing(obj) registers a Server/Client (or anything with close/stop) for cleanup."""
    objs: List[Any] = []

    def add(obj: Any) -> Any:
        objs.append(obj)
        return obj

    yield add
    for obj in reversed(objs):
        (getattr(obj, "close", None) or obj.stop)()


def make_server(closing: Callable[[Any], Any], echo: bool = False, **options: Any) -> Tuple[Any, Recorder]:
    holder: Dict[str, Any] = {}

    def on_event(ev: Any) -> None:
        if echo and ev.type == "message":
            holder["server"].send(ev.data, clients=[ev.client])

    rec = Recorder(on_event)
    opts: Dict[str, Any] = {"host": HOST, "port": 0, "method": rec}
    opts.update(options)
    server = closing(ixws.Server(opts))
    holder["server"] = server
    assert server.start() == {"success": True, "message": ""}
    return server, rec


def make_client(closing: Callable[[Any], Any], url: str, **options: Any) -> Tuple[Any, Recorder]:
    rec = Recorder()
    opts: Dict[str, Any] = {"url": url, "method": rec}
    opts.update(options)
    return closing(ixws.Client(opts)), rec


def url_of(server: Any, path: str = "/") -> str:
    return f"ws://{HOST}:{server.config['port']}{path}"


def backoff(n: int, lo: int, hi: int) -> int:
    """Upstream's wait before retry n+1 (spec 17.4), n counted from 0."""
    if n >= 26:
        return hi
    return min(max(100 * 2 ** n, lo), hi)


class HttpPeer:
    """A plain HTTP server on a thread: answer(path) -> the response bytes for
    each request; records the request targets. Connections are one request each."""

    def __init__(self, answer: Callable[[str], Optional[bytes]]) -> None:
        self.answer = answer
        self.paths: List[str] = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(32)
        self.port = self.listener.getsockname()[1]
        self.held: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="http-peer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                head, _ = read_http_head(sock, 5.0)
                path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                self.paths.append(path)
                response = self.answer(path)
                if response is None:  # keep the socket, never answer
                    self.held.append(sock)
                    continue
                sock.sendall(response)
            except (OSError, AssertionError, IndexError):
                pass
            sock.close()

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(5)
        for s in self.held:
            s.close()


def redirect(status: int, location: str) -> bytes:
    return (f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n").encode()


class RawServerPeer:
    """A one-connection WebSocket server over a plain socket, driven by the test:
    accept() completes the handshake and returns a RawConn (unmasked frames)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind((HOST, 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.url = f"ws://{HOST}:{self.port}/"

    def accept(self, timeout: float = WAIT) -> RawConn:
        self.listener.settimeout(timeout)
        sock, _ = self.listener.accept()
        head, rest = read_http_head(sock, timeout)
        key = parse_headers(head)["sec-websocket-key"]
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_for(key)}\r\n\r\n").encode())
        return RawConn(sock, rest, mask=False)

    def close(self) -> None:
        self.listener.close()


def raw_upgrade(port: int, path: str = "/", extra: str = "", tail: bytes = b"") -> Tuple[socket.socket, bytes, bytes]:
    """Sends an upgrade request (plus `tail`); returns (socket, response head, rest)."""
    sock = socket.create_connection((HOST, port), timeout=WAIT)
    req, _ = upgrade_request(HOST, port, path, extra=extra)
    sock.sendall(req + tail)
    head, rest = read_http_head(sock, WAIT)
    return sock, head, rest


# ------------------------------------------------------------- reconnection


@extension
@pytest.mark.timeout(30)
def test_backoff_sequence_follows_the_formula_within_min_and_max(closing):
    """retries count 1, 2, 3...; wait_time is 100 ms * 2^n raised to min and capped at max."""
    port = free_port()  # nothing listens: every attempt is refused at once
    a, arec = make_client(closing, f"ws://{HOST}:{port}/a",
                          minWaitBetweenReconnectionRetries=1, maxWaitBetweenReconnectionRetries=400)
    b, brec = make_client(closing, f"ws://{HOST}:{port}/b",
                          minWaitBetweenReconnectionRetries=250, maxWaitBetweenReconnectionRetries=400)
    assert a.start(timeout=5)["success"] is False
    assert b.start(timeout=5)["success"] is False
    for client, rec, lo, hi in ((a, arec, 1, 400), (b, brec, 250, 400)):
        errors = rec.wait_for("error", count=5, timeout=WAIT)[:5]
        assert [e.retries for e in errors] == [1, 2, 3, 4, 5]
        assert [e.wait_time for e in errors] == [backoff(n, lo, hi) for n in range(5)]
        assert all(e.http_status == 0 and "Connection refused" in e.reason for e in errors)
        assert errors[0].context["retries"] == 1 and errors[0].context["wait_time"] == backoff(0, lo, hi)
        assert client.ready_state == "CONNECTING"  # between attempts
        client.stop()
        assert client.ready_state == "CLOSED"
    assert [backoff(n, 1, 10000) for n in range(9)] == [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000]


@extension
@pytest.mark.timeout(30)
def test_server_restarted_on_same_port_while_client_backs_off(closing):
    server, srec = make_server(closing)
    client, crec = make_client(closing, url_of(server, "/again"),
                               minWaitBetweenReconnectionRetries=1, maxWaitBetweenReconnectionRetries=200)
    assert client.start(timeout=5)["success"] is True
    crec.wait_for("open")
    srec.wait_for("open")

    server.stop()  # the client sees the close, reconnects at once, is refused, backs off
    ev = crec.wait_for("close")[0]
    assert (ev.code, ev.reason, ev.remote) == (1001, "Going away", True)
    errors = crec.wait_for("error", count=3, timeout=WAIT)
    assert [e.retries for e in errors[:3]] == [1, 2, 3]

    assert server.start()["success"] is True  # same port (config["port"] was kept)
    crec.wait_for("open", count=2, timeout=WAIT)
    assert srec.wait_for("open", count=2, timeout=WAIT)[-1].uri == "/again"
    assert wait_until(lambda: client.send("back")["success"], 5)

    # The backoff starts over after a successful open.
    before = len(crec.of("error"))
    server.stop()
    crec.wait_for("error", count=before + 1, timeout=WAIT)
    assert crec.of("error")[before].retries == 1
    client.stop()


@extension
@pytest.mark.timeout(30)
def test_stop_interrupts_the_backoff_wait_at_once(closing):
    port = free_port()
    client, rec = make_client(closing, f"ws://{HOST}:{port}/",
                              minWaitBetweenReconnectionRetries=60000,
                              maxWaitBetweenReconnectionRetries=60000)
    assert client.start(timeout=5)["success"] is False
    ev = rec.wait_for("error")[0]
    assert (ev.retries, ev.wait_time) == (1, 60000)
    done = threading.Event()
    t = threading.Thread(target=lambda: (client.stop(), done.set()), daemon=True)
    t.start()
    assert done.wait(WAIT), "stop() waited for the 60 s backoff"
    assert client.ready_state == "CLOSED"
    # The stopped client can be started again (a fresh attempt, counted from 1).
    assert client.start(timeout=5)["success"] is False
    errors = rec.wait_for("error", count=2)
    assert errors[1].retries == 1
    client.stop()


@extension
@pytest.mark.timeout(30)
def test_no_reconnection_after_user_stop(closing):
    server, srec = make_server(closing)
    client, crec = make_client(closing, url_of(server, "/once"),
                               minWaitBetweenReconnectionRetries=1, maxWaitBetweenReconnectionRetries=20)
    assert client.start(timeout=5)["success"] is True
    srec.wait_for("open")
    client.stop(4000, "bye")
    assert crec.wait_for("close")[0].code == 4000
    assert srec.wait_for("close")[0].code == 4000
    # A probe connection opens after it: had the stopped client reconnected
    # (with waits of at most 20 ms), its open would be there too by then.
    probe, prec = make_client(closing, url_of(server, "/probe"), enableAutomaticReconnection=False)
    assert probe.start(timeout=5)["success"] is True
    srec.wait_for("open", count=2, pred=lambda e: True)
    with pytest.raises(AssertionError):
        srec.wait_for("open", count=3, timeout=0.5)
    assert [e.uri for e in srec.of("open")] == ["/once", "/probe"]
    assert crec.of("error") == [] and len(crec.of("open")) == 1


@extension
@pytest.mark.timeout(30)
def test_stop_cancels_a_slow_first_attempt_without_an_error_event(closing):
    peer = HttpPeer(lambda path: None)  # never answers the upgrade
    try:
        client, rec = make_client(closing, f"ws://{HOST}:{peer.port}/slow")
        result: Dict[str, Any] = {}
        t = threading.Thread(target=lambda: result.update(client.start(timeout=30)), daemon=True)
        t.start()
        assert wait_until(lambda: peer.paths, WAIT)
        client.stop()
        t.join(WAIT)
        assert not t.is_alive(), "start() still waits after stop()"
        assert result["success"] is False and result["errorStr"] == "Cancelled"
        assert client.ready_state == "CLOSED"
        # Events are delivered in order: a later marker event proves nothing came before it.
        client.start(timeout=1)
        rec.wait_for("error")
        assert all(e.reason != "Cancelled" for e in rec.of("error"))
        client.stop()
    finally:
        peer.stop()


def test_reconnection_off_gives_one_error_with_zero_retries(closing):
    port = free_port()
    client, rec = make_client(closing, f"ws://{HOST}:{port}/", enableAutomaticReconnection=False)
    res = client.start(timeout=5)
    assert res["success"] is False
    ev = rec.wait_for("error")[0]
    assert (ev.retries, ev.wait_time) == (0, 0)
    assert client.ready_state == "CLOSED"


# -------------------------------------------------------------- heartbeats


@extension
@pytest.mark.timeout(30)
def test_ping_timeout_against_a_peer_that_swallows_pings(closing):
    peer = RawServerPeer()
    try:
        client, rec = make_client(closing, peer.url, enableAutomaticReconnection=False,
                                  pingInterval=1, pingTimeout=1)
        result: Dict[str, Any] = {}
        t = threading.Thread(target=lambda: result.update(client.start(timeout=5)), daemon=True)
        t.start()
        conn = peer.accept()
        t.join(WAIT)
        assert result["success"] is True
        # Swallow pings; answer the client's Close so the close handshake completes.
        close = None
        for _ in range(20):
            frame = conn.recv_frame(WAIT)
            assert frame is not None, "connection dropped without a Close frame"
            if frame.opcode == OP_CLOSE:
                close = parse_close(frame.payload)
                conn.send_frame(OP_CLOSE, frame.payload, mask=False)
                break
            assert frame.opcode == OP_PING and frame.masked
        assert close == (1011, "Ping timeout")
        ev = rec.wait_for("close", timeout=WAIT)[0]
        assert (ev.code, ev.reason, ev.remote) == (1011, "Ping timeout", False)
        assert ev.context == {"code": 1011, "reason": "Ping timeout", "remote": False}
        conn.close()
    finally:
        peer.close()


@extension
@pytest.mark.timeout(40)
def test_any_frame_from_the_peer_counts_as_liveness(closing):
    """A peer that answers pings with data instead of pongs stays connected under
    pingTimeout; once it goes silent the client closes with 1011."""
    peer = RawServerPeer()
    try:
        client, rec = make_client(closing, peer.url, enableAutomaticReconnection=False,
                                  pingInterval=1, pingTimeout=2)
        t = threading.Thread(target=lambda: client.start(timeout=5), daemon=True)
        t.start()
        conn = peer.accept()
        t.join(WAIT)
        for _ in range(2):  # the heartbeats at 0 s and 1 s are answered with data
            frame = conn.recv_frame(WAIT)
            assert frame is not None and frame.opcode == OP_PING, frame
            conn.send_frame(OP_TEXT, b"alive", mask=False)
        # The third heartbeat (2 s) comes after the first deadline (2 s) passed:
        # upstream's rule would have closed at 1 s for the missing pong.
        frame = conn.recv_frame(WAIT)
        assert frame is not None and frame.opcode == OP_PING, frame
        rec.wait_for("message", count=2)
        assert rec.of("close") == [], "closed although the peer kept talking"
        assert rec.of("pong") == []
        # Now silence: the deadline armed with that ping closes the connection.
        for _ in range(20):
            frame = conn.recv_frame(WAIT)
            assert frame is not None
            if frame.opcode == OP_CLOSE:
                assert parse_close(frame.payload) == (1011, "Ping timeout")
                conn.send_frame(OP_CLOSE, frame.payload, mask=False)
                break
        ev = rec.wait_for("close", timeout=WAIT)[0]
        assert (ev.code, ev.reason) == (1011, "Ping timeout")
        conn.close()
    finally:
        peer.close()


@pytest.mark.parametrize("enable_pong", [True, False])
def test_client_enable_pong(closing, enable_pong):
    peer = RawServerPeer()
    try:
        holder: Dict[str, Any] = {}

        def on_event(ev: Any) -> None:
            rec(ev)
            if ev.type == "ping":
                holder["client"].send("saw-ping")

        rec = Recorder()
        client = closing(ixws.Client(url=peer.url, method=on_event, enable_automatic_reconnection=False,
                                     enable_pong=enable_pong))
        holder["client"] = client
        t = threading.Thread(target=lambda: client.start(timeout=5), daemon=True)
        t.start()
        conn = peer.accept()
        t.join(WAIT)
        conn.send_frame(OP_PING, b"are-you-there", mask=False)
        frame = conn.recv_frame(WAIT)
        if enable_pong:
            assert (frame.opcode, frame.payload) == (OP_PONG, b"are-you-there")
            frame = conn.recv_frame(WAIT)
        # Without pong, the first thing back is what the callback sent after the Ping event.
        assert (frame.opcode, frame.payload) == (OP_TEXT, b"saw-ping")
        assert rec.wait_for("ping")[0].data == "are-you-there"
        conn.close()
    finally:
        peer.close()


@pytest.mark.timeout(30)
def test_server_ping_interval_applies_to_every_connection(closing):
    server, srec = make_server(closing, pingInterval=1)
    socks = []
    try:
        for path in ("/one", "/two"):
            sock, head, rest = raw_upgrade(server.config["port"], path)
            assert head.startswith(b"HTTP/1.1 101")
            socks.append(RawConn(sock, rest))
        for conn in socks:
            frame = conn.recv_frame(WAIT)
            assert frame is not None and frame.opcode == OP_PING and not frame.masked
            conn.send_frame(OP_PONG, frame.payload)
        srec.wait_for("pong", count=2)
    finally:
        for conn in socks:
            conn.close()


def test_server_enable_pong_false(closing):
    server, srec = make_server(closing, enablePong=False, echo=True)
    sock, head, rest = raw_upgrade(server.config["port"])
    conn = RawConn(sock, rest)
    try:
        conn.send_frame(OP_PING, b"p")
        conn.send_frame(OP_TEXT, b"after")
        frame = conn.recv_frame(WAIT)  # the echo, not a pong
        assert (frame.opcode, frame.payload) == (OP_TEXT, b"after")
        assert srec.wait_for("ping")[0].data == "p"
    finally:
        conn.close()


# ---------------------------------------------------------------- handshake


@pytest.mark.timeout(30)
def test_client_handshake_timeout_then_backoff_continues(closing):
    peer = HttpPeer(lambda path: None)  # accepts TCP, reads the request, never answers
    try:
        client, rec = make_client(closing, f"ws://{HOST}:{peer.port}/silent", handshakeTimeout=1,
                                  minWaitBetweenReconnectionRetries=1, maxWaitBetweenReconnectionRetries=50)
        res = client.start(timeout=1)
        assert res["success"] is False and res["http_status"] == 0
        errors = rec.wait_for("error", count=2, timeout=WAIT)
        assert errors[0].http_status == 0
        if ixws.engine_info()["extensions"]:  # upstream's wording differs
            assert errors[0].reason.startswith("Timed out after 1000 ms connecting to ws://")
            assert [e.retries for e in errors[:2]] == [1, 2]
        assert wait_until(lambda: len(peer.paths) >= 2, WAIT)
        client.stop()
    finally:
        peer.stop()


@pytest.mark.timeout(30)
def test_server_handshake_timeout_drops_a_silent_client(closing):
    server, srec = make_server(closing, handshakeTimeout=1)
    sock = socket.create_connection((HOST, server.config["port"]), timeout=WAIT)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        data, eof = read_until_eof(sock, WAIT)
        assert eof
        assert srec.events == []
    finally:
        sock.close()


@extension
def test_http_404_gives_error_event_with_status_and_reason(closing):
    peer = HttpPeer(lambda path: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    try:
        client, rec = make_client(closing, f"ws://{HOST}:{peer.port}/nothing-here",
                                  maxWaitBetweenReconnectionRetries=50)
        res = client.start(timeout=5)
        assert res["success"] is False and res["http_status"] == 404
        ev = rec.wait_for("error")[0]
        assert ev.http_status == 404 and "404" in ev.reason
        assert (ev.retries, ev.wait_time) == (1, 50)
        client.stop()
    finally:
        peer.stop()


@extension
@pytest.mark.timeout(30)
def test_redirects_are_followed_to_the_final_server(closing):
    server, srec = make_server(closing)
    final = url_of(server, "/final?x=1")

    def answer(path: str) -> bytes:
        if path == "/start":
            return redirect(302, "/next")       # an absolute path on the same host
        if path == "/next":
            return redirect(307, "hop")         # relative to "/"
        return redirect(301, final)             # an absolute URL elsewhere

    peer = HttpPeer(answer)
    try:
        client, rec = make_client(closing, f"ws://{HOST}:{peer.port}/start", enableAutomaticReconnection=False)
        res = client.start(timeout=5)
        assert res["success"] is True, res
        assert res["uri"] == "/final?x=1"
        ev = rec.wait_for("open")[0]
        assert ev.uri == "/final?x=1"
        assert srec.wait_for("open")[0].uri == "/final?x=1"
        assert peer.paths == ["/start", "/next", "/hop"]
        assert rec.of("error") == []
    finally:
        peer.stop()


@extension
@pytest.mark.timeout(30)
def test_redirect_loop_gives_error_event(closing):
    peer = HttpPeer(lambda path: redirect(301, "/loop"))
    try:
        client, rec = make_client(closing, f"ws://{HOST}:{peer.port}/loop",
                                  maxWaitBetweenReconnectionRetries=60000,
                                  minWaitBetweenReconnectionRetries=60000)
        res = client.start(timeout=5)
        assert res["success"] is False and res["http_status"] == 301
        ev = rec.wait_for("error")[0]
        assert ev.http_status == 301
        assert "Too many redirects" in ev.reason and "/loop" in ev.reason
        assert ev.retries == 1
        assert len(peer.paths) == 11  # the request and 10 redirects
        client.stop()
    finally:
        peer.stop()


@extension
@pytest.mark.timeout(30)
def test_redirect_from_ws_to_wss(closing, tmp_path):
    certs = pytest.importorskip("_certs")
    ca = certs.CA(str(tmp_path), "ixws health CA")
    issued = ca.issue("server")
    server, srec = make_server(closing, tls={"certFile": issued.cert_file, "keyFile": issued.key_file})
    target = f"wss://127.0.0.1:{server.config['port']}/secure"
    peer = HttpPeer(lambda path: redirect(308, target))
    try:
        client, rec = make_client(closing, f"ws://{HOST}:{peer.port}/plain", enableAutomaticReconnection=False,
                                  tls={"caFile": ca.cert_file})
        res = client.start(timeout=10)
        assert res["success"] is True, res
        assert rec.wait_for("open")[0].uri == "/secure"
        assert srec.wait_for("open")[0].uri == "/secure"
    finally:
        peer.stop()


@extension
def test_bad_redirect_location_gives_error_event(closing):
    peer = HttpPeer(lambda path: redirect(302, "ftp://example.com/"))
    try:
        client, rec = make_client(closing, f"ws://{HOST}:{peer.port}/", enableAutomaticReconnection=False)
        assert client.start(timeout=5)["success"] is False
        ev = rec.wait_for("error")[0]
        assert ev.http_status == 302 and "Invalid redirect Location" in ev.reason
    finally:
        peer.stop()


@extension
def test_client_extra_headers_and_subprotocols(closing):
    server, srec = make_server(closing, subprotocols=["chat"])
    client, crec = make_client(closing, url_of(server, "/h"), enableAutomaticReconnection=False,
                               extraHeaders={"X-Token": "t0k3n", "Origin": "http://example.test"},
                               subprotocols=["v2.chat", "chat"])
    res = client.start(timeout=5)
    assert res["success"] is True
    cev = crec.wait_for("open")[0]
    assert cev.protocol == "chat" and cev.context["protocol"] == "chat"
    sev = srec.wait_for("open")[0]
    assert sev.protocol == "chat"
    lower = {k.lower(): v for k, v in sev.headers.items()}
    assert lower["x-token"] == "t0k3n"
    assert lower["origin"] == "http://example.test"
    assert lower["sec-websocket-protocol"] == "v2.chat,chat"


@extension
def test_browser_like_client_asking_for_a_subprotocol(closing):
    """Browsers fail the connection unless the server answers one of the
    subprotocols they asked for (upstream never answers, defect 16)."""
    server, srec = make_server(closing, subprotocols=["graphql-transport-ws"], echo=True)
    port = server.config["port"]
    extra = ("Pragma: no-cache\r\nCache-Control: no-cache\r\n"
             "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36\r\n"
             "Origin: http://localhost:3000\r\nAccept-Encoding: gzip, deflate, br\r\n"
             "Accept-Language: en-US,en;q=0.9\r\n"
             "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
             "Sec-WebSocket-Protocol: graphql-ws, graphql-transport-ws\r\n")
    sock, head, rest = raw_upgrade(port, "/graphql", extra=extra)
    conn = RawConn(sock, rest)
    try:
        assert head.startswith(b"HTTP/1.1 101"), head
        headers = parse_headers(head)
        assert headers["sec-websocket-protocol"] == "graphql-transport-ws"
        ev = srec.wait_for("open")[0]
        assert ev.protocol == "graphql-transport-ws" and ev.context["protocol"] == "graphql-transport-ws"
        conn.send_frame(OP_TEXT, b'{"type":"connection_init"}')
        frame = conn.recv_frame(WAIT)
        assert frame is not None and frame.opcode == OP_TEXT and frame.fin
        payload = frame.payload
        if frame.rsv & 0x4:  # the server accepted the browser's permessage-deflate offer
            assert "permessage-deflate" in headers.get("sec-websocket-extensions", "")
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        assert payload == b'{"type":"connection_init"}'
    finally:
        conn.close()


@extension
def test_websockets_client_gets_the_servers_subprotocol(closing):
    server, srec = make_server(closing, subprotocols=["json", "chat"])

    async def main() -> Optional[str]:
        async with ws_connect(url_of(server), subprotocols=["chat", "xml"], compression=None,
                              open_timeout=WAIT) as ws:
            return ws.subprotocol

    assert asyncio.run(main()) == "chat"
    assert srec.wait_for("open")[0].protocol == "chat"


# ------------------------------------------------------------ handshake hook


def _connect_websockets(url: str, **kwargs: Any) -> Any:
    async def main() -> Any:
        async with ws_connect(url, compression=None, open_timeout=WAIT, **kwargs) as ws:
            await ws.send("hi")
            return await ws.recv()

    return asyncio.run(main())


@extension
@pytest.mark.timeout(30)
def test_on_handshake_rejects_with_401_seen_by_websockets_client(closing):
    seen: List[Any] = []

    def on_handshake(request: Any) -> Any:
        seen.append(request)
        if request.headers.get("authorization") != "Bearer good":
            return (401, "Unauthorized")
        return True

    server, srec = make_server(closing, echo=True, onHandshake=on_handshake)
    with pytest.raises(InvalidStatus) as info:
        _connect_websockets(url_of(server, "/private?room=7"))
    assert info.value.response.status_code == 401
    assert info.value.response.reason_phrase == "Unauthorized"
    assert _connect_websockets(url_of(server, "/private?room=8"),
                               additional_headers={"Authorization": "Bearer good"}) == "hi"
    opens = srec.wait_for("open")
    srec.wait_for("close")
    # The rejected connection never reached `method`.
    assert [e.uri for e in srec.events if e.type == "open"] == ["/private?room=8"]
    assert len(srec.of("close")) == 1
    req = seen[0]
    assert (req.uri, req.path, req.query) == ("/private?room=7", "/private", "room=7")
    assert req.remote_ip == "127.0.0.1" and 0 < req.remote_port < 65536
    assert req.headers["HOST"] == req.headers["host"] and "Upgrade" in req.headers
    assert isinstance(req.headers, ixws.Headers)
    assert opens[0].uri == "/private?room=8"


@extension
@pytest.mark.timeout(30)
def test_on_handshake_sees_the_peer_address_and_false_rejects_403(closing):
    seen: List[Any] = []

    def on_handshake(request: Any) -> bool:
        seen.append(request)
        return False

    server, srec = make_server(closing, onHandshake=on_handshake)
    sock, head, _ = raw_upgrade(server.config["port"], "/x")
    try:
        local_port = sock.getsockname()[1]
        assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n"), head
        assert b"Content-Length:" in head
        assert (seen[0].remote_ip, seen[0].remote_port) == ("127.0.0.1", local_port)
        _, eof = read_until_eof(sock, WAIT)
        assert eof
    finally:
        sock.close()
    assert srec.events == []


@extension
@pytest.mark.timeout(30)
def test_on_handshake_exception_rejects_with_500_and_is_logged(closing, caplog):
    def on_handshake(request: Any) -> Any:
        raise RuntimeError("hook exploded")

    server, srec = make_server(closing, onHandshake=on_handshake)
    with caplog.at_level(logging.ERROR, logger="ixws"):
        sock, head, _ = raw_upgrade(server.config["port"])
        sock.close()
        assert head.startswith(b"HTTP/1.1 500 "), head
        assert wait_until(lambda: any("hook exploded" in (r.exc_text or "") or
                                      (r.exc_info and "hook exploded" in str(r.exc_info[1]))
                                      for r in caplog.records), 5)
    assert srec.events == []


@extension
@pytest.mark.parametrize("value", [None, (200, "OK"), (401,), ("401", "x"), "yes"])
def test_on_handshake_bad_return_value_rejects_with_500(closing, caplog, value):
    server, srec = make_server(closing, onHandshake=lambda request: value)
    with caplog.at_level(logging.ERROR, logger="ixws"):
        sock, head, _ = raw_upgrade(server.config["port"])
        sock.close()
    assert head.startswith(b"HTTP/1.1 500 "), head
    assert any("onHandshake returned" in r.getMessage() for r in caplog.records)


@extension
def test_on_handshake_by_module_name_and_pipelined_frames(closing):
    server, srec = make_server(closing, echo=True, onHandshake="test_health:accept_all")
    # A frame in the same segment as the request waits for the hook's answer.
    sock, head, rest = raw_upgrade(server.config["port"], "/early", tail=build_frame(OP_TEXT, b"early"))
    conn = RawConn(sock, rest)
    try:
        assert head.startswith(b"HTTP/1.1 101"), head
        assert conn.recv_message(WAIT) == (OP_TEXT, b"early")
        srec.wait_for("message")
        types = [e.type for e in srec.events]
        assert types.index("open") < types.index("message")
    finally:
        conn.close()


def accept_all(request: Any) -> bool:
    return True


@extension
@pytest.mark.timeout(30)
def test_on_handshake_that_answers_too_late_gets_503(closing):
    release = threading.Event()

    def slow(request: Any) -> bool:
        release.wait(WAIT)
        return True

    server, srec = make_server(closing, handshakeTimeout=1, onHandshake=slow)
    try:
        sock, head, _ = raw_upgrade(server.config["port"])
        sock.close()
        assert head.startswith(b"HTTP/1.1 503 Handshake hook timed out"), head
    finally:
        release.set()
    assert srec.events == []


@extension
@pytest.mark.timeout(30)
def test_too_much_data_while_the_hook_decides_gets_400(closing):
    release = threading.Event()

    def slow(request: Any) -> bool:
        release.wait(WAIT)
        return True

    server, srec = make_server(closing, handshakeTimeout=5, onHandshake=slow)
    try:
        sock, head, _ = raw_upgrade(server.config["port"], tail=build_frame(OP_TEXT, b"x" * 20000))
        sock.close()
        assert head.startswith(b"HTTP/1.1 400 Too much data"), head
    finally:
        release.set()
    assert srec.events == []


def test_on_handshake_is_rejected_for_clients_and_validated():
    with pytest.raises(ValueError, match="on_handshake"):
        ixws.Client(url="ws://127.0.0.1:1/", on_handshake=print)
    with pytest.raises(TypeError, match="onHandshake"):
        ixws.Server(port=0, on_handshake=42)
    with pytest.raises(ValueError, match="onHandshake"):
        ixws.Server(port=0, on_handshake="no_such_module_xyz:f")


def test_headers_mapping_is_case_insensitive():
    h = ixws.Headers({"Sec-WebSocket-Protocol": "chat", "X-A": "1"})
    assert h["sec-websocket-protocol"] == "chat" and h["X-a"] == "1"
    assert "x-A" in h and "nope" not in h and 3 not in h
    assert h.get("missing") is None and len(h) == 2
    assert sorted(h) == ["Sec-WebSocket-Protocol", "X-A"]
    assert dict(h) == {"Sec-WebSocket-Protocol": "chat", "X-A": "1"}
    r = ixws.HandshakeRequest("/p?q=1", {"Host": "h"}, "127.0.0.1", 5)
    assert (r.path, r.query, r.headers["host"]) == ("/p", "q=1", "h")
    assert ixws.HandshakeRequest("/p", {}, "", 0).query == ""


# ------------------------------------------------------------ client stop


def _accept_and_upgrade(listener: socket.socket) -> Tuple[socket.socket, bytes]:
    listener.settimeout(WAIT)
    sock, _ = listener.accept()
    head, rest = read_http_head(sock, WAIT)
    key = parse_headers(head)["sec-websocket-key"]
    sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept_for(key)}\r\n\r\n").encode("ascii"))
    return sock, rest


@contextlib.contextmanager
def _client_open_to_raw_peer(closing, path: str):
    """A client opened (start() returned success) against a raw peer that we
    drive by hand: yields (client, recorder, peer RawConn, peer socket)."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(1)
    try:
        port = listener.getsockname()[1]
        client, rec = make_client(closing, f"ws://{HOST}:{port}{path}", enableAutomaticReconnection=False)
        result: Dict[str, Any] = {}
        t = threading.Thread(target=lambda: result.update(client.start(timeout=5)), daemon=True)
        t.start()
        sock, rest = _accept_and_upgrade(listener)
        peer = RawConn(sock, rest, mask=False)
        try:
            t.join(WAIT)
            assert result.get("success") is True
            yield client, rec, peer, sock
        finally:
            peer.close()
    finally:
        listener.close()


@pytest.mark.timeout(30)
def test_client_stop_against_a_peer_that_never_answers_the_close(closing):
    """stop() writes the Close itself and bounds the wait for the peer's: then
    the connection is dropped and the Close event carries our code."""
    with _client_open_to_raw_peer(closing, "/mute") as (client, rec, peer, _):
        rec.wait_for("open")
        done = threading.Event()
        threading.Thread(target=lambda: (client.stop(4000, "bye"), done.set()), daemon=True).start()
        frame = peer.recv_frame(WAIT)
        assert frame is not None and frame.opcode == OP_CLOSE and frame.masked
        assert parse_close(frame.payload) == (4000, "bye")
        # No answer: stop() returns on its own, after the Close event.
        assert done.wait(WAIT), "stop() did not return"
        ev = rec.wait_for("close")[0]
        assert (ev.code, ev.reason, ev.remote) == (4000, "bye", False)
        assert client.ready_state == "CLOSED"
        assert peer.wait_eof(WAIT)


@pytest.mark.timeout(30)
def test_client_stop_when_the_peer_answers_close_and_fin_together(closing):
    """A peer that sends its Close and its FIN in one go (as most servers do):
    stop() returns after the Close event and the socket is closed at once."""
    with _client_open_to_raw_peer(closing, "/fin") as (client, rec, peer, sock):
        done = threading.Event()
        threading.Thread(target=lambda: (client.stop(), done.set()), daemon=True).start()
        frame = peer.recv_frame(WAIT)
        assert frame is not None and frame.opcode == OP_CLOSE
        peer.send_frame(OP_CLOSE, close_payload(1000, "ok"))
        sock.shutdown(socket.SHUT_WR)
        assert done.wait(WAIT), "stop() did not return"
        ev = rec.wait_for("close")[0]
        # We started the closing handshake: the event tells our Close.
        assert (ev.code, ev.reason, ev.remote) == (1000, "Normal closure", False)
        assert peer.wait_eof(WAIT)  # the client closed its side too
        assert client.ready_state == "CLOSED"


# ------------------------------------------------------------ graceful stop


@extension
@pytest.mark.timeout(30)
def test_graceful_stop_sends_1001_and_stops_within_its_timeout(closing):
    server, srec = make_server(closing)
    port = server.config["port"]
    client, crec = make_client(closing, url_of(server, "/polite"), enableAutomaticReconnection=False)
    assert client.start(timeout=5)["success"] is True
    # A peer that never answers the Close: only the timeout ends it.
    sock, head, rest = raw_upgrade(port, "/rude")
    rude = RawConn(sock, rest)
    try:
        srec.wait_for("open", count=2)
        done = threading.Event()
        t = threading.Thread(target=lambda: (server.stop(timeout=0.3), done.set()), daemon=True)
        t.start()
        frame = rude.recv_frame(WAIT)
        assert frame is not None and frame.opcode == OP_CLOSE
        assert parse_close(frame.payload) == (1001, "Going away")
        assert done.wait(WAIT), "stop() did not return"
        assert rude.wait_eof(WAIT)
        ev = crec.wait_for("close")[0]
        assert (ev.code, ev.reason, ev.remote) == (1001, "Going away", True)
        closes = srec.wait_for("close", count=2)
        assert all((e.code, e.reason, e.remote) == (1001, "Going away", False) for e in closes)
        # It stopped accepting.
        with pytest.raises(OSError):
            socket.create_connection((HOST, port), timeout=WAIT).close()
        assert server.running is False
    finally:
        rude.close()


@extension
def test_graceful_stop_with_a_custom_code(closing):
    server, srec = make_server(closing)
    client, crec = make_client(closing, url_of(server), enableAutomaticReconnection=False)
    assert client.start(timeout=5)["success"] is True
    srec.wait_for("open")
    server.stop(code=4001, reason="maintenance", timeout=2)
    ev = crec.wait_for("close")[0]
    assert (ev.code, ev.reason, ev.remote) == (4001, "maintenance", True)
    # Restartable on the same port.
    assert server.start()["success"] is True


def test_server_stop_arguments_are_checked(closing):
    server, _ = make_server(closing)
    with pytest.raises(TypeError):
        server.stop(code="1000")
    with pytest.raises(ValueError):
        server.stop(code=70000)
    with pytest.raises(TypeError):
        server.stop(reason=5)
    with pytest.raises(ValueError):
        server.stop(timeout=-1)
    with pytest.raises(TypeError):
        server.stop(timeout="1")
    assert server.running
