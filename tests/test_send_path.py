"""The send path: replies batched per callback batch, broadcast framed once,
large messages written from the caller's buffer. Behaviour only (no timing)."""
from __future__ import annotations

import os
import queue

import pytest

import ixws


def wait_for(q: "queue.Queue[ixws.Event]", kind: str) -> ixws.Event:
    for _ in range(100000):
        ev = q.get(timeout=10)
        if ev.type == kind:
            return ev
    raise AssertionError(f"no {kind} event")


def connect(port: int, inbox: "queue.Queue[ixws.Event]") -> ixws.Client:
    c = ixws.Client(url=f"ws://127.0.0.1:{port}/", method=inbox.put, enable_automatic_reconnection=False)
    assert c.start(timeout=10)["success"]
    return c


def test_replies_sent_in_a_callback_arrive_in_order_before_its_close():
    server = None

    def on_event(ev):
        if ev.type == "message" and ev.data == "go":
            for i in range(500):
                assert server.send(f"m{i}", clients=[ev.client])[0]["success"]
            server.close_client(ev.client, 1000, "done")

    server = ixws.Server(port=0, method=on_event)
    assert server.start()["success"]
    inbox: "queue.Queue[ixws.Event]" = queue.Queue()
    with server, connect(server.port, inbox) as client:
        wait_for(inbox, "open")
        client.send("go")
        got = []
        while True:
            ev = inbox.get(timeout=10)
            if ev.type == "message":
                got.append(ev.data)
            elif ev.type == "close":
                break
        assert got == [f"m{i}" for i in range(500)]
        assert ev.code == 1000 and ev.reason == "done"


def test_broadcast_reaches_every_client_exactly_once():
    server = ixws.Server(port=0, method=lambda ev: None)
    assert server.start()["success"]
    inboxes = [queue.Queue() for _ in range(20)]
    with server:
        clients = [connect(server.port, q) for q in inboxes]
        try:
            for q in inboxes:
                wait_for(q, "open")
            assert len(server.clients()) == len(clients)
            payloads = [os.urandom(1000) for _ in range(50)] + ["text é"]
            for p in payloads:
                results = server.send(p)
                assert len(results) == len(clients)
                assert all(r["success"] and r["payloadSize"] == len(p if isinstance(p, bytes) else
                                                                     p.encode()) for r in results)
            for q in inboxes:
                got = [wait_for(q, "message").data for _ in payloads]
                assert got == payloads
        finally:
            for c in clients:
                c.close()


@pytest.mark.parametrize("size", [64 * 1024, 3 * 1024 * 1024 + 7])
def test_large_messages_echo_intact(size):
    server = None

    def on_event(ev):
        if ev.type == "message":
            server.send(ev.data, clients=[ev.client])

    server = ixws.Server(port=0, method=on_event)
    assert server.start()["success"]
    inbox: "queue.Queue[ixws.Event]" = queue.Queue()
    with server, connect(server.port, inbox) as client:
        wait_for(inbox, "open")
        data = os.urandom(size)
        for _ in range(3):
            assert client.send(data)["success"]
        for _ in range(3):
            assert wait_for(inbox, "message").data == data
