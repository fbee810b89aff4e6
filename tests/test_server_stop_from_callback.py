"""Server.stop() called from a callback running on another engine loop.

Client connections all live on the engine's shared client loop, and inline
callbacks of clients run on that loop's thread. A client callback that stops
a server whose peers are those same clients must keep the client loop turning
while it waits for the close handshakes (EventLoop::waitTurning); a plain wait
would stall the very loop the handshakes need until the close timeout.
"""
from __future__ import annotations

import threading

import pytest

import ixws
from ixws import _dispatch

from _peers import wait_until

pytestmark = pytest.mark.engine_extension


def test_stop_from_a_client_callback_completes_the_close_handshakes():
    ixws.set_inline_callbacks(True)  # the default: callbacks run on the engine thread
    seen = {}
    stopped = threading.Event()
    clients = []

    def on_client(ev):
        if ev.type == "message" and ev.data == "stop now":
            seen["inline"] = bool(getattr(_dispatch._inline, "active", False))
            server.stop()
            # Each handshake completed during stop(): every client already got
            # the server's Close and answered it (their loop kept turning).
            seen["states"] = [c.ready_state for c in clients]
            stopped.set()

    server = ixws.Server(port=0, method=lambda ev: None)
    try:
        assert server.start()["success"]
        for _ in range(3):
            c = ixws.Client(url="ws://127.0.0.1:%d/" % server.port, method=on_client,
                            enable_automatic_reconnection=False)
            clients.append(c)
            assert c.start(timeout=5)["success"]
        assert wait_until(lambda: len(server.clients()) == 3, 5)
        server.send("stop now", [server.clients()[0]])
        assert stopped.wait(10)
        assert seen["inline"], "the callback did not run on the client loop: nothing tested"
        assert seen["states"] == ["CLOSED"] * 3, seen
        assert not server.running
    finally:
        for c in clients:
            c.close()
        server.close()
