"""The opening handshake has its own bounds (maxPendingHandshakes, handshakeTimeout).

A connection that has not finished its upgrade request holds a pending-handshake
slot, not one of maxConnections: a wave of slow sockets (slowloris) cannot
lock legitimate clients out of established connections, and a handshake that
times out is answered 408 before the socket closes.
"""
from __future__ import annotations

import queue
import socket
import time

import pytest

import ixws

try:
    from _peers import read_http_head, read_until_eof, upgrade_request
except ImportError:  # pragma: no cover - run from the repository root
    from tests._peers import read_http_head, read_until_eof, upgrade_request

pytestmark = pytest.mark.engine_extension


def _partial_request(port: int) -> socket.socket:
    """A socket that sent the start of an upgrade request and will say no more
    (the next step of a slowloris peer would be one more byte per second)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    request, _ = upgrade_request("127.0.0.1", port)
    sock.sendall(request[:20])
    return sock


def _wait_accepted(port: int) -> None:
    """Returns once the server has accepted every socket connected before this
    call: a request on a new socket is answered after them (one loop, accepts
    in order). The request is invalid, so it never takes a connection slot."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        head, _ = read_http_head(sock, timeout=10)
        assert _status(head) == 400, head
    finally:
        sock.close()


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def _client(port: int) -> "tuple[ixws.Client, dict]":
    client = ixws.Client(url=f"ws://127.0.0.1:{port}/", enable_automatic_reconnection=False)
    return client, client.start(timeout=5)


def _server(**options) -> "tuple[ixws.Server, queue.Queue]":
    events: "queue.Queue[ixws.Event]" = queue.Queue()
    server = ixws.Server(port=0, method=events.put, handshake_timeout=30, **options)
    assert server.start()["success"]
    return server, events


def test_slow_handshakes_do_not_take_established_connection_slots():
    # Slow sockets (fewer than the pending limit, by default maxConnections)
    # leave every connection slot to real clients.
    server, _ = _server(max_connections=3)
    slow = [_partial_request(server.port) for _ in range(2)]
    clients = []
    try:
        _wait_accepted(server.port)
        for _ in range(3):
            client, res = _client(server.port)
            clients.append(client)
            assert res["success"] and res["http_status"] == 101, res
        # The established limit still holds: a fourth client is refused.
        extra, res = _client(server.port)
        clients.append(extra)
        assert not res["success"] and res["http_status"] == 503, res
    finally:
        for c in clients:
            c.close()
        for s in slow:
            s.close()
        server.close()


def test_pending_handshakes_have_their_own_limit():
    server, _ = _server(max_connections=2, max_pending_handshakes=4)
    slow = [_partial_request(server.port) for _ in range(4)]
    clients = []
    try:
        # Pending slots are full: a new socket is answered 503 at once.
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        head, _ = read_http_head(sock, timeout=5)
        sock.close()
        assert _status(head) == 503 and b"Too many pending handshakes" in head, head
        # One slow peer gives up: its pending slot frees, a real client gets in.
        slow.pop().close()
        client, res = _client(server.port)
        clients.append(client)
        for _ in range(200):  # the close may race the next connect: bounded retries
            if res["success"]:
                break
            client.close()
            time.sleep(0.01)
            client, res = _client(server.port)
            clients.append(client)
        assert res["success"], res
        assert server.clients() != []
    finally:
        for c in clients:
            c.close()
        for s in slow:
            s.close()
        server.close()


def test_a_complete_request_over_max_connections_is_answered_503():
    # Both requests are pending together; the established limit (1) is applied
    # when a request completes, so the second one gets 503, not a 101.
    server, _ = _server(max_connections=1, max_pending_handshakes=4)
    first, second = _partial_request(server.port), _partial_request(server.port)
    try:
        _wait_accepted(server.port)
        request, _ = upgrade_request("127.0.0.1", server.port)
        first.sendall(request[20:])
        assert _status(read_http_head(first, timeout=5)[0]) == 101
        second.sendall(request[20:])
        head, _ = read_http_head(second, timeout=5)
        assert _status(head) == 503 and b"Too many connections" in head, head
        assert server.clients() and len(server.clients()) == 1
    finally:
        first.close()
        second.close()
        server.close()


def test_a_handshake_timeout_is_answered_408():
    server = ixws.Server(port=0, method=lambda ev: None, handshake_timeout=1)
    assert server.start()["success"]
    try:
        sock = _partial_request(server.port)
        start = time.monotonic()
        data, eof = read_until_eof(sock, timeout=10)
        sock.close()
        assert eof
        assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
        assert time.monotonic() - start < 5
    finally:
        server.close()


@pytest.mark.parametrize("value,exc", [(-1, ValueError), ("8", TypeError), (True, TypeError)])
def test_bad_max_pending_handshakes_names_the_key(value, exc):
    with pytest.raises(exc, match="maxPendingHandshakes"):
        ixws.Server(port=0, max_pending_handshakes=value)
