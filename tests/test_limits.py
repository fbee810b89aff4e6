"""The Python API's bounded defaults: message size, output queued per
connection, listen backlog (README, "Options and their defaults").

maxMessageSize defaults to 16 MiB (0 = unlimited on purpose): a frame whose
header already announces more fails with 1009 before any payload is read.
sendBufferLimit defaults to 64 MiB with onSlowConsumer "close": a peer that
never reads is closed with 1008 instead of growing our memory.
"""
from __future__ import annotations

import queue
import shutil
import socket
import struct
import subprocess
import time

import pytest

import ixws
from ixws import _options

try:
    from _peers import OP_BINARY, RawConn, read_http_head, upgrade_request
except ImportError:  # pragma: no cover - run from the repository root
    from tests._peers import OP_BINARY, RawConn, read_http_head, upgrade_request

MIB = 1024 * 1024


def _events_server(**options):
    events: "queue.Queue[ixws.Event]" = queue.Queue()
    server = ixws.Server(port=0, method=events.put, **options)
    assert server.start()["success"]
    return server, events


def _next(events: "queue.Queue[ixws.Event]", kind: str, timeout: float = 10) -> ixws.Event:
    deadline = time.monotonic() + timeout
    while True:
        ev = events.get(timeout=max(0.01, deadline - time.monotonic()))
        if ev.type == kind:
            return ev


def _announce(length: int) -> bytes:
    """A masked binary frame header announcing `length` payload bytes (none follow)."""
    return struct.pack("!BBQ", 0x82, 0x80 | 127, length) + b"\x01\x02\x03\x04"


# ------------------------------------------------------------ maxMessageSize


@pytest.mark.engine_extension
def test_a_frame_announcing_2_to_the_62_bytes_is_refused_at_once_by_default():
    server, events = _events_server()
    conn = RawConn.connect("127.0.0.1", server.port)
    try:
        _next(events, "open")
        start = time.monotonic()
        conn.send_raw(_announce(1 << 62))  # and nothing more
        assert conn.expect_close(timeout=5) == (1009, "Message too big")
        assert time.monotonic() - start < 2
        ev = _next(events, "close")
        assert ev.context["code"] == 1009
    finally:
        conn.close()
        server.close()


@pytest.mark.engine_extension
def test_a_continuation_that_takes_the_message_over_the_limit_is_refused_at_its_header():
    server, events = _events_server(max_message_size=1000)
    conn = RawConn.connect("127.0.0.1", server.port)
    try:
        conn.send_frame(OP_BINARY, b"x" * 600, fin=False)
        conn.send_raw(struct.pack("!BBH", 0x80, 0x80 | 126, 401) + b"\x00\x00\x00\x00")  # 600 + 401 > 1000
        assert conn.expect_close(timeout=5) == (1009, "Message too big")
    finally:
        conn.close()
        server.close()


@pytest.mark.engine_extension
def test_max_size_messages_pass_both_ways_with_the_defaults():
    # Server and client with default options: a 16 MiB message is echoed
    # (maxMessageSize is inclusive; the send-buffer limit admits it).
    payload = bytes(range(256)) * (_options.DEFAULT_MAX_MESSAGE_SIZE // 256)

    def echo(ev):
        if ev.type == "message":
            server.send(ev.data, clients=[ev.client])

    server = ixws.Server(port=0, method=echo)
    assert server.start()["success"]
    inbox: "queue.Queue[ixws.Event]" = queue.Queue()
    client = ixws.Client(url=f"ws://127.0.0.1:{server.port}/", method=inbox.put,
                         enable_automatic_reconnection=False)
    try:
        assert client.start(timeout=5)["success"]
        assert client.send(payload)["success"]
        assert _next(inbox, "message", timeout=30).data == payload
        # One byte more is refused by the client's default limit.
        server.send(payload + b"!")
        assert _next(inbox, "close", timeout=30).context["code"] == 1009
    finally:
        client.close()
        server.close()


@pytest.mark.engine_extension
def test_max_message_size_zero_is_unlimited_on_purpose():
    server, events = _events_server(max_message_size=0)
    conn = RawConn.connect("127.0.0.1", server.port)
    try:
        _next(events, "open")
        conn.send_raw(_announce(17 * MIB))
        chunk = b"\x00" * MIB  # masked with 01 02 03 04: the payload is that key repeated
        for _ in range(17):
            conn.send_raw(chunk)
        ev = _next(events, "message", timeout=30)
        assert len(ev.data) == 17 * MIB
    finally:
        conn.close()
        server.close()


# ----------------------------------------------------------- sendBufferLimit


def _never_reading_peer(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request, _ = upgrade_request("127.0.0.1", port)
    sock.sendall(request)
    head, _ = read_http_head(sock, timeout=5)
    assert b" 101 " in head
    return sock


@pytest.mark.engine_extension
def test_a_peer_that_never_reads_is_closed_with_1008_once_64_mib_are_queued():
    server, events = _events_server()
    sock = _never_reading_peer(server.port)
    try:
        client = _next(events, "open").client
        chunk = b"\x00" * MIB
        refused = None
        for i in range(200):  # the default limit is 64 MiB: 200 MiB is far past it
            res = server.send(chunk, clients=[client])[0]
            if not res["success"]:
                refused = i
                break
            assert server.buffered_amount(client) <= _options.DEFAULT_SEND_BUFFER_LIMIT
        assert refused is not None, "the default send-buffer limit never applied"
        assert 56 <= refused <= 72, refused  # 64 MiB, give or take the socket buffers
        ev = _next(events, "close")
        assert ev.context["code"] == 1008
    finally:
        sock.close()
        server.close()


@pytest.mark.engine_extension
def test_send_buffer_limit_zero_is_unlimited_on_purpose():
    server, events = _events_server(send_buffer_limit=0)
    sock = _never_reading_peer(server.port)
    try:
        client = _next(events, "open").client
        chunk = b"\x00" * MIB
        for _ in range(80):  # past the default limit
            assert server.send(chunk, clients=[client])[0]["success"]
        assert server.buffered_amount(client) > _options.DEFAULT_SEND_BUFFER_LIMIT
    finally:
        sock.close()
        server.close()


# ------------------------------------------------------------------- backlog


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_the_listen_backlog_defaults_to_511():
    # ss shows a listening socket's backlog as its Send-Q.
    with ixws.Server(port=0) as server:
        assert server.config["backlog"] == 511
        assert server.start()["success"]
        out = subprocess.run(["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
        fields = out.split()
        assert fields and fields[0] == "LISTEN", out
        assert int(fields[2]) == 511, out


# ------------------------------------------------- built against upstream


def test_against_upstream_the_defaults_stay_upstreams_and_explicit_limits_are_refused():
    config = _options.server_options({})
    assert _options.max_message_size(config, False) == 0
    assert _options.slow_consumer_args(config, False) is None
    assert _options.max_pending_handshakes(config, False) == 0
    assert _options.max_message_size(config, True) == 16 * MIB
    assert _options.slow_consumer_args(config, True) == (64 * MIB, 2, 5000)  # 2: "close"
    assert _options.max_pending_handshakes(config, True) == config["maxConnections"]
    with pytest.raises(ValueError, match="maxPendingHandshakes"):
        _options.check_extensions({"maxPendingHandshakes": 8}, False, "system")
    _options.check_extensions({"maxPendingHandshakes": 0}, False, "system")
