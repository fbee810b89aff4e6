"""Large payloads end to end, against hand-made peers: large fragmented
messages reassembled by a server, and large messages a client masks on their
way out of its per-thread buffer, including when the socket is full.
Behaviour only."""
from __future__ import annotations

import os
import queue
import socket
import threading

import ixws
from _peers import (MIB, OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawConn, accept_for,
                    build_frame, parse_headers, read_http_head)


def wait_for(q: "queue.Queue[ixws.Event]", kind: str) -> ixws.Event:
    for _ in range(100000):
        ev = q.get(timeout=10)
        if ev.type == kind:
            return ev
    raise AssertionError(f"no {kind} event")


def test_client_masks_large_messages_even_when_the_socket_fills():
    # A peer that reads nothing until every message was handed to the client:
    # with a small receive buffer most of each frame has to be queued.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)
    port = listener.getsockname()[1]
    inbox: "queue.Queue[ixws.Event]" = queue.Queue()
    client = ixws.Client(url=f"ws://127.0.0.1:{port}/", method=inbox.put,
                         enable_automatic_reconnection=False)
    started: list = []
    starter = threading.Thread(target=lambda: started.append(client.start(timeout=10)))
    starter.start()  # blocks until the handshake below is answered
    sock, _ = listener.accept()
    listener.close()
    try:
        head, rest = read_http_head(sock, 10.0)
        key = parse_headers(head)["sec-websocket-key"]
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_for(key)}\r\n\r\n").encode())
        starter.join(10)
        assert started and started[0]["success"]
        wait_for(inbox, "open")
        sizes = [64 * 1024, MIB + 3, 3 * MIB + 7, 200 * 1024 + 1, 65536 + 65535]
        payloads = [os.urandom(n) for n in sizes]
        payloads.insert(2, "é" * (MIB // 2 + 1))  # text, 1 MiB + 2 bytes of UTF-8
        for p in payloads:
            assert client.send(p)["success"]
        conn = RawConn(sock, rest, mask=False)
        for p in payloads:
            frame = conn.recv_frame(timeout=20)
            assert frame is not None and frame.fin and frame.masked
            if isinstance(p, str):
                assert frame.opcode == OP_TEXT and frame.payload == p.encode()
            else:
                assert frame.opcode == OP_BINARY and frame.payload == p
        # Later small sends go out after the queued bytes, in order.
        assert client.send(b"tail")["success"]
        frame = conn.recv_frame(timeout=10)
        assert frame is not None and frame.payload == b"tail"
    finally:
        client.close()
        sock.close()


def test_server_reassembles_large_fragmented_messages_with_pings_between():
    inbox: "queue.Queue[ixws.Event]" = queue.Queue()
    with ixws.Server(port=0, method=inbox.put) as server:
        assert server.start()["success"]
        conn = RawConn.connect("127.0.0.1", server.port)
        try:
            wait_for(inbox, "open")
            a, b, c = os.urandom(300 * 1024 + 1), os.urandom(17), os.urandom(MIB)
            # Fragments sent in odd-sized writes, a ping between fragments.
            wire = (conn_frame(OP_BINARY, a, fin=False) + conn_frame(OP_PING, b"p") +
                    conn_frame(OP_CONT, b, fin=False) + conn_frame(OP_CONT, c))
            for i in range(0, len(wire), 99991):
                conn.send_raw(wire[i:i + 99991])
            assert wait_for(inbox, "message").data == a + b + c
            pong = conn.recv_frame(timeout=10)
            assert pong is not None and pong.opcode == OP_PONG and pong.payload == b"p"
            # A large text message whose last byte breaks UTF-8: 1007.
            conn.send_raw(conn_frame(OP_TEXT, b"x" * (MIB - 1) + b"\xff"))
            assert conn.expect_close(timeout=10)[0] == 1007
        finally:
            conn.close()


def conn_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return build_frame(opcode, payload, fin=fin, mask=True)
