"""Client host names are resolved on a bounded pool of engine threads.

A storm of reconnecting clients to a name (here "localhost", resolved by the
system resolver) queues its lookups on that pool instead of starting a thread
per lookup, and the pool shrinks back once the clients are stopped.
"""
from __future__ import annotations

import os
import socket
import time

import pytest

import ixws
from ixws import _ixws

pytestmark = pytest.mark.engine_extension

STORM_CLIENTS = 64
SAMPLE_SECONDS = 1.5


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def refused_port() -> int:
    """A loopback port nothing listens on (connects are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def storm_client(port: int) -> ixws.Client:
    return ixws.Client({"url": f"ws://localhost:{port}/",
                        "minWaitBetweenReconnectionRetries": 1,
                        "maxWaitBetweenReconnectionRetries": 5})


def test_resolver_pool_reports_its_bound():
    pool = _ixws.resolver_threads()
    assert set(pool) == {"threads", "max_threads"}
    assert 1 <= pool["max_threads"] <= 8
    assert 0 <= pool["threads"] <= pool["max_threads"]


def test_reconnection_storm_stays_within_the_resolver_pool():
    bound = _ixws.resolver_threads()["max_threads"]
    port = refused_port()
    # The engine's shared client loop and the dispatcher exist before counting.
    warm = storm_client(port)
    warm.start(timeout=5)
    warm.stop()
    baseline = thread_count()

    clients = [storm_client(port) for _ in range(STORM_CLIENTS)]
    try:
        for c in clients:
            result = c.start(timeout=5)
            assert not result["success"]  # refused; reconnection goes on
        peak_threads = thread_count()
        peak_pool = 0
        deadline = time.monotonic() + SAMPLE_SECONDS
        while time.monotonic() < deadline:
            peak_threads = max(peak_threads, thread_count())
            peak_pool = max(peak_pool, _ixws.resolver_threads()["threads"])
            time.sleep(0.002)
    finally:
        for c in clients:
            c.stop()
            c.close()
    assert peak_pool <= bound
    # Every lookup of the storm ran on the pool: no thread per lookup.
    assert peak_threads - baseline <= bound, (baseline, peak_threads, bound)


def test_resolver_pool_shrinks_after_the_storm():
    port = refused_port()
    clients = [storm_client(port) for _ in range(16)]
    for c in clients:
        c.start(timeout=5)
    for c in clients:
        c.stop()
        c.close()
    deadline = time.monotonic() + 10
    while _ixws.resolver_threads()["threads"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ixws.resolver_threads()["threads"] == 0
