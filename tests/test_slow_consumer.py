"""Slow consumers: a peer that never reads must not grow our memory without bound.

sendBufferLimit (bytes queued per connection) with onSlowConsumer "drop",
"block" (waits up to sendTimeout seconds, GIL released) or "close" (1008).
The peers here are raw sockets that complete the handshake and then never
read (until a test drains them on purpose).
"""
from __future__ import annotations

import base64
import hashlib
import os
import queue
import socket
import threading
import zlib

import pytest

import ixws

pytestmark = pytest.mark.engine_extension

LIMIT = 64 * 1024
CHUNK = b"\x00" * (16 * 1024)
MAX_SENDS = 20000  # 320 MB at most: far more than any loopback socket buffers
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _read_head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "peer closed during the handshake"
        head += chunk
        assert len(head) < 65536
    return head


def raw_upgrade(port: int, path: str = "/", extra_headers: str = ""):
    """A client socket that does the opening handshake: (socket, response head)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n".encode()
    )
    head = _read_head(sock)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, head


def raw_client(port: int, path: str = "/") -> socket.socket:
    """A client socket that does the opening handshake, then reads nothing."""
    return raw_upgrade(port, path)[0]


def drain(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            if not sock.recv(1 << 20):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def make_server(**options):
    events: "queue.Queue[ixws.Event]" = queue.Queue()
    server = ixws.Server(port=0, method=events.put, **options)
    assert server.start()["success"]
    return server, events


def wait_for(events: "queue.Queue[ixws.Event]", kind: str) -> ixws.Event:
    for _ in range(1000):
        ev = events.get(timeout=10)
        if ev.type == kind:
            return ev
    raise AssertionError(f"no {kind} event")


def fill_until_refused(send):
    for i in range(MAX_SENDS):
        res = send()
        if not res["success"]:
            return i, res
    raise AssertionError("the send buffer limit never applied")


def test_drop_refuses_sends_over_the_limit_and_keeps_the_connection():
    server, events = make_server(send_buffer_limit=LIMIT, on_slow_consumer="drop")
    with server:
        sock = raw_client(server.port)
        cid = wait_for(events, "open").client
        sent, res = fill_until_refused(lambda: server.send(CHUNK, clients=[cid])[0])
        assert sent > 0
        assert res == {"client": cid, "success": False, "compressionError": False,
                       "payloadSize": len(CHUNK), "wireSize": 0, "reason": "send buffer full"}
        buffered = server.buffered_amount(cid)
        assert 0 < buffered <= LIMIT + len(CHUNK) + 14
        # Still open: a drained buffer accepts messages again.
        stop = threading.Event()
        reader = threading.Thread(target=drain, args=(sock, stop))
        reader.start()
        try:
            for _ in range(1000):
                if server.send(CHUNK, clients=[cid])[0]["success"]:
                    break
                threading.Event().wait(0.01)
            else:
                raise AssertionError("sends never succeeded again after draining")
            assert cid in server.clients()
        finally:
            stop.set()
            reader.join()
            sock.close()


def test_broadcast_drops_only_for_the_slow_connection():
    server, events = make_server(send_buffer_limit=LIMIT, on_slow_consumer="drop")
    with server:
        slow = raw_client(server.port)
        slow_id = wait_for(events, "open").client
        got = queue.Queue()
        fast = ixws.Client(url=f"ws://127.0.0.1:{server.port}/", method=got.put,
                           enable_automatic_reconnection=False)
        with fast:
            assert fast.start(timeout=10)["success"]
            fast_id = wait_for(events, "open").client
            delivered_to_fast = 0
            refused = None
            for _ in range(MAX_SENDS):
                results = {r["client"]: r for r in server.send(CHUNK)}
                delivered_to_fast += results[fast_id]["success"]
                if not results[slow_id]["success"]:
                    refused = results
                    break
            assert refused is not None
            assert refused[slow_id]["reason"] == "send buffer full"
            # A dropped message is dropped whole; every accepted one arrives intact.
            received = 0
            while received < delivered_to_fast:
                ev = got.get(timeout=10)
                if ev.type == "message":
                    assert ev.data == CHUNK
                    received += 1
            assert fast_id in server.clients() and slow_id in server.clients()
        slow.close()


def test_block_waits_without_the_gil_and_succeeds_once_the_peer_reads():
    server, events = make_server(send_buffer_limit=LIMIT, on_slow_consumer="block", send_timeout=60)
    with server:
        sock = raw_client(server.port)
        cid = wait_for(events, "open").client
        entered = threading.Event()
        result = {}

        def sender():
            # Fill the kernel's buffers until our own queue holds bytes.
            for _ in range(MAX_SENDS):
                if server.buffered_amount(cid) > 0:
                    break
                assert server.send(CHUNK, clients=[cid])[0]["success"]
            # Larger than the limit: admitted only once the queue is empty,
            # which needs the peer to read.
            entered.set()
            result["res"] = server.send(b"\x01" * (2 * LIMIT), clients=[cid])[0]

        t = threading.Thread(target=sender)
        t.start()
        assert entered.wait(30)
        # This thread runs Python while the sender is blocked in send(): the GIL
        # is released during the wait. The sender cannot finish before we drain.
        assert "res" not in result
        stop = threading.Event()
        reader = threading.Thread(target=drain, args=(sock, stop))
        reader.start()
        t.join(60)
        stop.set()
        reader.join()
        sock.close()
        assert not t.is_alive()
        assert result["res"]["success"] is True


def test_block_gives_up_after_send_timeout():
    server, events = make_server(send_buffer_limit=LIMIT, on_slow_consumer="block", send_timeout=0.05)
    with server:
        sock = raw_client(server.port)
        cid = wait_for(events, "open").client
        _, res = fill_until_refused(lambda: server.send(CHUNK, clients=[cid])[0])
        assert res["reason"] == "send buffer full"
        assert cid in server.clients()
        sock.close()


def test_close_policy_closes_the_slow_connection_with_1008():
    server, events = make_server(send_buffer_limit=LIMIT, on_slow_consumer="close")
    with server:
        sock = raw_client(server.port)
        cid = wait_for(events, "open").client
        _, res = fill_until_refused(lambda: server.send(CHUNK, clients=[cid])[0])
        assert res["reason"] == "send buffer full"
        ev = wait_for(events, "close")
        assert ev.client == cid and ev.code == 1008
        assert cid not in server.clients()
        sock.close()


def test_client_side_limit_against_a_server_that_never_reads():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    accepted = []

    def serve():
        conn, _ = listener.accept()
        head = _read_head(conn).decode()
        key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                   if line.lower().startswith("sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        accepted.append(conn)  # never read from it

    t = threading.Thread(target=serve)
    t.start()
    client = ixws.Client(url=f"ws://127.0.0.1:{port}/", enable_automatic_reconnection=False,
                         send_buffer_limit=LIMIT, on_slow_consumer="drop")
    try:
        assert client.start(timeout=10)["success"]
        t.join(10)
        _, res = fill_until_refused(lambda: client.send(CHUNK))
        assert res == {"success": False, "compressionError": False, "payloadSize": len(CHUNK),
                       "wireSize": 0, "reason": "send buffer full"}
        assert 0 < client.buffered_amount <= LIMIT + len(CHUNK) + 14
    finally:
        client.close()
        for c in accepted:
            c.close()
        listener.close()


@pytest.mark.parametrize("key,value,exc", [
    ("onSlowConsumer", "wait", ValueError),
    ("onSlowConsumer", 1, TypeError),
    ("sendTimeout", 0, ValueError),
    ("sendTimeout", "1", TypeError),
    ("sendBufferLimit", -1, ValueError),
    ("sendBufferLimit", 1.5, TypeError),
])
def test_bad_slow_consumer_options_name_the_key(key, value, exc):
    with pytest.raises(exc, match=key):
        ixws.Server({key: value})
    with pytest.raises(exc, match=key):
        ixws.Client({"url": "ws://127.0.0.1:9/", key: value})


def _read_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "peer closed"
        out += chunk
    return out


def _read_frame(sock: socket.socket):
    """One unmasked server frame: (opcode, rsv1, payload)."""
    b0, b1 = _read_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(_read_exact(sock, 2), "big")
    elif n == 127:
        n = int.from_bytes(_read_exact(sock, 8), "big")
    return b0 & 0x0F, bool(b0 & 0x40), _read_exact(sock, n)


def test_a_dropped_compressed_message_leaves_the_compression_context_intact():
    # With context takeover, every compressed message may refer back to earlier
    # ones. A message refused as "send buffer full" must never have entered the
    # compressor, or the next message refers to bytes the peer never got.
    server, events = make_server(sendBufferLimit=LIMIT, onSlowConsumer="drop")
    sock, head = raw_upgrade(server.port, extra_headers="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    assert b"permessage-deflate" in head.lower(), head
    try:
        cid = wait_for(events, "open").client
        blocks = [os.urandom(4096)]
        sent = []  # the messages the server accepted, in order
        refused = None
        for i in range(MAX_SENDS):
            blocks.append(os.urandom(4096))
            msg = blocks[-2] + blocks[-1]  # repeats the previous message's new block
            res = server.send(msg, clients=[cid])[0]
            if not res["success"]:
                assert res["reason"] == "send buffer full"
                refused = msg
                break
            sent.append(msg)
        assert refused is not None, "the buffer never filled"
        # The next message repeats the refused one's block: the compressor must
        # not know it. Drain first so this one is accepted.
        inflater = zlib.decompressobj(-15)
        got = []
        while len(got) < len(sent):
            op, rsv1, payload = _read_frame(sock)
            assert op == 2 and rsv1
            got.append(inflater.decompress(payload + b"\x00\x00\xff\xff"))
        assert got == sent
        follow = blocks[-1] + os.urandom(4096)
        assert server.send(follow, clients=[cid])[0]["success"]
        op, rsv1, payload = _read_frame(sock)
        assert inflater.decompress(payload + b"\x00\x00\xff\xff") == follow
    finally:
        sock.close()
        server.close()


def test_block_inside_a_callback_waits_for_the_peer_and_succeeds():
    # Callbacks may run on the server's own engine thread: a blocked send there
    # keeps that loop turning, so the connection drains once the peer reads.
    entered = threading.Event()
    finished = threading.Event()
    result = {}
    box = {}

    def on_event(ev):
        if ev.type == "open" and ev.uri == "/slow":
            box["slow"] = ev.client
        elif ev.type == "message" and ev.data == "go":
            server, cid = box["server"], box["slow"]
            for _ in range(MAX_SENDS):
                if server.buffered_amount(cid) > 0:
                    break
                assert server.send(CHUNK, clients=[cid])[0]["success"]
            entered.set()
            result["res"] = server.send(b"\x01" * (2 * LIMIT), clients=[cid])[0]
            finished.set()

    server = ixws.Server(port=0, method=on_event, send_buffer_limit=LIMIT, on_slow_consumer="block",
                         send_timeout=30)
    box["server"] = server
    assert server.start()["success"]
    with server:
        sock = raw_client(server.port, "/slow")
        trigger = ixws.Client(url=f"ws://127.0.0.1:{server.port}/go", enable_automatic_reconnection=False)
        try:
            assert trigger.start(timeout=10)["success"]
            assert "slow" in box
            trigger.send("go")
            assert entered.wait(30)
            # Our queue held bytes when the big send began, so it had to wait (the
            # kernel may still take some before the peer reads; then it waits less).
            stop = threading.Event()
            reader = threading.Thread(target=drain, args=(sock, stop))
            reader.start()
            finished.wait(30)
            stop.set()
            reader.join()
        finally:
            trigger.close()
            sock.close()
        assert result["res"]["success"] is True, result
