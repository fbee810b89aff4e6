"""Interpreter exit while daemon threads are inside ixws calls that released the
GIL: the process must exit cleanly (code 0, nothing on stderr), never abort.

CPython ends (3.9-3.13) or hangs (3.14+) a thread that takes the GIL back after
finalization began; src/gil_release.h keeps such threads out of Python.
Each scenario runs in fresh subprocesses, several times: the race with
finalization does not hit every run.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

RUNS = 4

SENDERS_AT_EXIT = """
import threading
import ixws

server = ixws.Server(port=0, method=lambda ev: None)
assert server.start()["success"]
client = ixws.Client(url="ws://127.0.0.1:%d/" % server.port, method=lambda ev: None)
assert client.start(timeout=5)["success"]
data = b"x" * 65536
sending = threading.Barrier(5)

def sender():
    sending.wait()
    while True:
        client.send(data)

for _ in range(4):
    threading.Thread(target=sender, daemon=True).start()
sending.wait()
print("sending", flush=True)
# The main thread returns while four threads are inside client.send().
"""

# Callbacks busy on engine threads (inline) and on the dispatcher thread: an
# echo server whose clients are fed from daemon threads.
CALLBACKS_AT_EXIT = SENDERS_AT_EXIT.replace(
    'server = ixws.Server(port=0, method=lambda ev: None)',
    'server = ixws.Server(port=0, method=lambda ev: ev.type == "message" and server.send(ev.data, [ev.client]))',
).replace('data = b"x" * 65536', 'data = "x" * 512')

BLOCKED_SEND_AT_EXIT = """
import socket
import threading
import ixws

server = ixws.Server(port=0, method=lambda ev: None, send_buffer_limit=65536,
                     on_slow_consumer="block", send_timeout=30)
assert server.start()["success"]
# A peer that completes the opening handshake and then never reads.
peer = socket.create_connection(("127.0.0.1", server.port), timeout=10)
peer.sendall(("GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\n"
              "Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n"
              "Sec-WebSocket-Version: 13\\r\\n\\r\\n").encode())
head = b""
while b"\\r\\n\\r\\n" not in head:
    head += peer.recv(4096)
assert head.startswith(b"HTTP/1.1 101"), head
for _ in range(500):
    if server.clients():
        break
    threading.Event().wait(0.01)
assert server.clients()
blocked = threading.Event()

peer_id = server.clients()[0]

def sender():
    chunk = b"y" * 65536
    for _ in range(100000):
        before = server.buffered_amount(peer_id) or 0
        if before > 0:
            blocked.set()  # the socket is full: this send waits for room that never comes
        server.send(chunk)

threading.Thread(target=sender, daemon=True).start()
assert blocked.wait(20)
print("blocked", flush=True)
"""

# The thread that finalizes the interpreter may still call ixws (a __del__ at
# module teardown): it must get the GIL back, unlike the other threads.
CALLS_DURING_FINALIZATION = """
import ixws

server = ixws.Server(port=0, method=lambda ev: None)
assert server.start()["success"]
client = ixws.Client(url="ws://127.0.0.1:%d/" % server.port, method=lambda ev: None)
assert client.start(timeout=5)["success"]

class CallsAtTeardown:
    def __del__(self):
        server.stop()
        client.stop()
        print("teardown calls returned", flush=True)

holder = CallsAtTeardown()
print("ready", flush=True)
"""


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("script,marker", [
    pytest.param(SENDERS_AT_EXIT, "sending", id="four-senders"),
    pytest.param(CALLBACKS_AT_EXIT, "sending", id="echo-callbacks-running"),
    pytest.param(CALLS_DURING_FINALIZATION, "teardown calls returned", id="main-thread-calls-at-teardown"),
    pytest.param(BLOCKED_SEND_AT_EXIT, "blocked", id="send-blocked-by-slow-consumer",
                 marks=pytest.mark.engine_extension),
])
def test_exit_with_daemon_threads_inside_ixws_calls_is_clean(script, marker):
    for run in range(RUNS):
        proc = _run(script)
        assert marker in proc.stdout, (run, proc.stdout, proc.stderr)
        assert proc.returncode == 0, (run, proc.returncode, proc.stderr)
        assert proc.stderr == "", (run, proc.stderr)
