"""Connection ids are unique for the life of a Server object.

An application keeps ids (a user's session, a subscription list). If a closed
connection's id were handed to the next connection, a message meant for the
user who left would reach whoever connected next.
"""
from __future__ import annotations

import queue
from typing import List

import ixws


def _next(events: "queue.Queue[ixws.Event]", kind: str) -> ixws.Event:
    for _ in range(100):
        ev = events.get(timeout=10)
        if ev.type == kind:
            return ev
    raise AssertionError(f"no {kind!r} event")


def _connect(port: int, inbox: "queue.Queue[ixws.Event]") -> ixws.Client:
    client = ixws.Client(url=f"ws://127.0.0.1:{port}/", method=inbox.put, enable_automatic_reconnection=False)
    res = client.start(timeout=5)
    assert res["success"], res
    return client


def test_an_id_is_never_given_to_a_later_connection():
    events: "queue.Queue[ixws.Event]" = queue.Queue()
    with ixws.Server(port=0, method=events.put) as server:
        assert server.start()["success"]
        port = server.port
        first_inbox: "queue.Queue[ixws.Event]" = queue.Queue()
        first = _connect(port, first_inbox)
        first_id = _next(events, "open").client
        first.stop()
        assert _next(events, "close").client == first_id

        # A new user connects after the first one left; the application still
        # holds first_id (say, a reply computed for the first user).
        second_inbox: "queue.Queue[ixws.Event]" = queue.Queue()
        second = _connect(port, second_inbox)
        second_id = _next(events, "open").client
        assert second_id != first_id
        res = server.send("for the first user only", clients=[first_id])
        assert res[0]["success"] is False
        # The second user receives what is sent to it, and nothing else before it.
        assert server.send("for the second user", clients=[second_id])[0]["success"]
        assert _next(second_inbox, "message").data == "for the second user"
        second.close()


def test_ids_increase_across_many_connections_and_a_restart():
    events: "queue.Queue[ixws.Event]" = queue.Queue()
    with ixws.Server(port=0, method=events.put) as server:
        assert server.start()["success"]
        port = server.port
        seen: List[int] = []
        for _ in range(5):
            client = _connect(port, queue.Queue())
            seen.append(_next(events, "open").client)
            client.stop()
            _next(events, "close")
        server.stop()
        assert server.start()["success"]
        client = _connect(server.port, queue.Queue())
        seen.append(_next(events, "open").client)
        client.close()
        assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
