"""A server holding thousands of idle connections on a fixed number of threads.

The connections are opened from this process with raw non-blocking sockets
and a hand-made upgrade request (much lighter than client objects), driven by
one selector with a deadline.
"""
from __future__ import annotations

import os
import resource
import selectors
import socket
import threading
import time
from typing import Dict, List, Tuple

import pytest

import ixws

try:
    from _peers import accept_for, parse_headers, upgrade_request, wait_until
except ImportError:  # pragma: no cover
    from tests._peers import accept_for, parse_headers, upgrade_request, wait_until

HOST = "127.0.0.1"
N = 2000
BASELINE = 10
NEEDED_FDS = 4500  # N client sockets + N server sockets + slack
MAX_IN_FLIGHT = 256


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.fixture
def enough_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if target < NEEDED_FDS:
        pytest.skip(f"RLIMIT_NOFILE hard limit is {hard}; this test needs at least {NEEDED_FDS} "
                    f"file descriptors ({N} client + {N} server sockets)")
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Counter:
    """The server's `method`: counts opens/closes and signals when a target is reached."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.opens = 0
        self.closes = 0
        self.messages = 0
        self.close_codes: Dict[int, int] = {}
        self.opened_target = 0
        self.closed_target = 0
        self.opened = threading.Event()
        self.closed = threading.Event()

    def expect(self, opens: int = 0, closes: int = 0) -> None:
        with self.lock:
            self.opened_target, self.closed_target = opens, closes
            self.opened.clear()
            self.closed.clear()
            self._check()

    def _check(self) -> None:
        if self.opened_target and self.opens >= self.opened_target:
            self.opened.set()
        if self.closed_target and self.closes >= self.closed_target:
            self.closed.set()

    def __call__(self, ev) -> None:
        with self.lock:
            if ev.type == "open":
                self.opens += 1
            elif ev.type == "close":
                self.closes += 1
                self.close_codes[ev.code] = self.close_codes.get(ev.code, 0) + 1
            elif ev.type == "message":
                self.messages += 1
            self._check()


def open_connections(port: int, n: int, timeout: float) -> List[socket.socket]:
    """Opens n WebSocket connections with raw non-blocking sockets.

    At most MAX_IN_FLIGHT handshakes run at once. Returns the sockets
    (non-blocking, handshake done); raises AssertionError on failure/timeout.
    """
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    done: List[socket.socket] = []
    # per socket: [phase, outgoing bytes, incoming bytes, key]
    state: Dict[socket.socket, list] = {}
    started = 0
    try:
        while len(done) < n:
            while started < n and len(state) < MAX_IN_FLIGHT:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                err = s.connect_ex((HOST, port))
                if err not in (0, 115):  # EINPROGRESS
                    s.close()
                    raise AssertionError(f"connect #{started} failed: {os.strerror(err)}")
                req, key = upgrade_request(HOST, port, f"/idle/{started}")
                state[s] = ["connect", req, b"", key]
                sel.register(s, selectors.EVENT_WRITE)
                started += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"opened only {len(done)} of {n} connections within {timeout}s")
            for key_obj, _mask in sel.select(min(left, 1.0)):
                s = key_obj.fileobj
                st = state[s]
                if st[0] == "connect":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise AssertionError(f"connect failed: {os.strerror(err)}")
                    st[0] = "send"
                if st[0] == "send":
                    try:
                        sent = s.send(st[1])
                    except BlockingIOError:
                        continue
                    st[1] = st[1][sent:]
                    if not st[1]:
                        st[0] = "recv"
                        sel.modify(s, selectors.EVENT_READ)
                    continue
                # recv
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise AssertionError(f"server closed during the handshake: {st[2]!r}")
                st[2] += chunk
                if b"\r\n\r\n" in st[2]:
                    head, _, rest = st[2].partition(b"\r\n\r\n")
                    assert head.startswith(b"HTTP/1.1 101"), head
                    assert parse_headers(head + b"\r\n\r\n").get("sec-websocket-accept") == accept_for(st[3])
                    assert rest == b"", f"unexpected bytes after the 101 answer: {rest!r}"
                    sel.unregister(s)
                    del state[s]
                    done.append(s)
    except BaseException:
        for s in list(state) + done:
            s.close()
        raise
    finally:
        sel.close()
    return done


def read_one_frame_each(socks: List[socket.socket], expected: bytes, timeout: float) -> int:
    """Reads len(expected) bytes from every socket; returns how many got exactly expected."""
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    got: Dict[socket.socket, bytes] = {}
    for s in socks:
        got[s] = b""
        sel.register(s, selectors.EVENT_READ)
    pending = len(socks)
    try:
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key_obj, _mask in sel.select(min(left, 1.0)):
                s = key_obj.fileobj
                try:
                    chunk = s.recv(len(expected) - len(got[s]))
                except BlockingIOError:
                    continue
                if not chunk:
                    raise AssertionError("a connection was closed instead of receiving the broadcast")
                got[s] += chunk
                if len(got[s]) == len(expected):
                    sel.unregister(s)
                    pending -= 1
    finally:
        sel.close()
    return sum(1 for v in got.values() if v == expected)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_2000_idle_connections_on_fixed_threads(enough_fds):
    counter = Counter()
    server = ixws.Server({"host": HOST, "port": 0, "method": counter,
                          "maxConnections": N + 100, "backlog": 1024})
    socks: List[socket.socket] = []
    try:
        res = server.start()
        assert res["success"], res
        port = server.config["port"]

        # baseline: a few connections, every engine/dispatcher thread already up
        counter.expect(opens=BASELINE)
        socks += open_connections(port, BASELINE, timeout=30)
        assert counter.opened.wait(15), f"only {counter.opens} open events"
        assert wait_until(lambda: len(server.clients()) == BASELINE, 10), len(server.clients())
        baseline_threads = thread_count()

        counter.expect(opens=N)
        socks += open_connections(port, N - BASELINE, timeout=120)
        assert counter.opened.wait(60), f"only {counter.opens} of {N} open events"
        assert wait_until(lambda: len(server.clients()) == N, 30), len(server.clients())
        ids = server.clients()
        assert ids == sorted(ids) and len(set(ids)) == N

        threads = thread_count()
        assert threads <= baseline_threads + 2, (
            f"thread count grew with the connections: {baseline_threads} threads with "
            f"{BASELINE} connections, {threads} with {N}")

        # broadcast one text message to everybody
        results = server.send("x")
        assert len(results) == N
        failed = [r for r in results if not r["success"]]
        assert not failed, f"{len(failed)} sends failed, e.g. {failed[:3]}"
        assert {r["client"] for r in results} == set(ids)
        assert all(r["payloadSize"] == 1 and r["wireSize"] == 1 for r in results)
        received = read_one_frame_each(socks, b"\x81\x01x", timeout=60)
        assert received == N, f"only {received} of {N} connections got the broadcast frame"
        assert counter.messages == 0

        # clients drop their TCP connections; the server notices every one
        counter.expect(closes=N)
        for s in socks:
            s.close()
        socks = []
        assert counter.closed.wait(60), f"only {counter.closes} of {N} close events"
        assert counter.close_codes == {1006: N}  # TCP drop without a close frame
        assert wait_until(lambda: server.clients() == [], 15), len(server.clients())
        assert thread_count() <= baseline_threads + 2
    finally:
        for s in socks:
            s.close()
        server.close()
