"""Signal handlers run while ixws blocks: Ctrl-C (SIGINT) during start(), a
send blocked by the slow-consumer policy and messages() raises
KeyboardInterrupt promptly; during a server's or a client's stop too. The
object stays usable (or cleanly stopped and restartable).

Each scenario runs in a subprocess that sends itself SIGINT 0.2 s into a call
that would otherwise block for 20 s; the child reports how long the call took
(the bound asserted here is loose on purpose: speed is not what is tested,
only that the interruption does not wait for the call's own timeout).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.engine_extension

BLOCKING_SECONDS = 20
INTERRUPT_AT = 0.2

PRELUDE = """
import base64, hashlib, json, os, signal, socket, threading, time
import ixws

INTERRUPT_AT = None  # set from the test module
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
UPGRADE = ("GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n")

def read_head(sock):
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    return head

def answer_handshake(sock):
    head = read_head(sock).decode()
    key = [l.split(":", 1)[1].strip() for l in head.split("\\r\\n") if l.lower().startswith("sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    sock.sendall(("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                  "Sec-WebSocket-Accept: %s\\r\\n\\r\\n" % accept).encode())

def raw_client(port):
    # Completes the opening handshake, then reads nothing.
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(UPGRADE.encode())
    assert read_head(sock).startswith(b"HTTP/1.1 101")
    return sock

def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)

def interrupted(call):
    # Runs call() with a SIGINT sent to this process INTERRUPT_AT s later; returns
    # (raised KeyboardInterrupt, seconds the call took).
    timer = threading.Timer(INTERRUPT_AT, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    try:
        call()
        raised = False
    except KeyboardInterrupt:
        raised = True
    elapsed = time.monotonic() - t0
    timer.join()
    return raised, elapsed

result = {}
""".replace("INTERRUPT_AT = None", "INTERRUPT_AT = %r" % INTERRUPT_AT)

START = """
# A server that accepts TCP and never answers the first connection, then
# answers the next one properly.
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
port = listener.getsockname()[1]
held = []

def serve():
    held.append(listener.accept()[0])  # silent
    sock = listener.accept()[0]
    answer_handshake(sock)
    held.append(sock)

threading.Thread(target=serve, daemon=True).start()
client = ixws.Client(url="ws://127.0.0.1:%d/" % port, method=lambda ev: None,
                     enable_automatic_reconnection=False)
result["raised"], result["elapsed"] = interrupted(lambda: client.start(timeout=20))
result["state_after"] = client.ready_state
result["restart"] = client.start(timeout=10)["success"]
client.close()
"""

SERVER_SEND = """
server = ixws.Server(port=0, method=lambda ev: None, send_buffer_limit=65536,
                     on_slow_consumer="block", send_timeout=20)
assert server.start()["success"]
peer = raw_client(server.port)
wait_until(lambda: server.clients())
peer_id = server.clients()[0]
chunk = b"z" * 65536
for _ in range(20000):  # fill the socket buffers until sends must wait
    server.send(chunk)
    if server.buffered_amount(peer_id):
        break
assert server.buffered_amount(peer_id)
result["raised"], result["elapsed"] = interrupted(lambda: server.send(chunk))
# Usable afterwards: once the peer reads, sends go through.
stop = threading.Event()

def drain():
    peer.settimeout(0.2)
    while not stop.is_set():
        try:
            if not peer.recv(1 << 20):
                return
        except socket.timeout:
            pass

threading.Thread(target=drain, daemon=True).start()
result["send_after"] = server.send(b"after")[0]["success"]
result["clients_after"] = server.clients() == [peer_id]
stop.set()
server.close()
"""

SERVER_STOP = """
server = ixws.Server(port=0, method=lambda ev: None)
assert server.start()["success"]
port = server.port
peer = raw_client(port)  # never answers the server's Close
wait_until(lambda: server.clients())
result["raised"], result["elapsed"] = interrupted(lambda: server.stop(timeout=20))
result["state_after"] = server.running
# Restartable: a client connects to it again.
result["restart"] = server.start()["success"]
client = ixws.Client(url="ws://127.0.0.1:%d/" % port, method=lambda ev: None)
result["connect_after"] = client.start(timeout=10)["success"]
client.close()
server.close()
"""

CLIENT_STOP = """
# A server that answers the handshake and never answers the client's Close.
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
port = listener.getsockname()[1]
held = []

def serve():
    for _ in range(2):
        sock = listener.accept()[0]
        answer_handshake(sock)
        held.append(sock)

threading.Thread(target=serve, daemon=True).start()
client = ixws.Client(url="ws://127.0.0.1:%d/" % port, method=lambda ev: None,
                     enable_automatic_reconnection=False)
assert client.start(timeout=10)["success"]
result["raised"], result["elapsed"] = interrupted(lambda: client.stop())
wait_until(lambda: client.ready_state == "CLOSED")
result["state_after"] = client.ready_state
result["restart"] = client.start(timeout=10)["success"]
client.close()
"""

REENTRANT_STOP = """
# A handler (run during server.stop()'s wait, on this thread) that stops the
# same server and tries to start it: no deadlock, the outer stop goes on.
server = ixws.Server(port=0, method=lambda ev: None)
assert server.start()["success"]
peer = raw_client(server.port)  # never answers the server's Close
wait_until(lambda: server.clients())
inner = []

def handler(signum, frame):
    server.stop()
    inner.append(server.start()["success"])

signal.signal(signal.SIGUSR1, handler)
timer = threading.Timer(INTERRUPT_AT, os.kill, (os.getpid(), signal.SIGUSR1))
timer.start()
server.stop(timeout=20)
timer.join()
result["inner_start"] = inner
result["state_after"] = server.running
result["restart"] = server.start()["success"]
server.close()
"""

MESSAGES = """
server = ixws.Server(port=0)
assert server.start()["success"]
result["raised"], result["elapsed"] = interrupted(lambda: server.messages(timeout=20))
result["state_after"] = server.running
server.close()
"""


def _run(body: str) -> dict:
    script = textwrap.dedent(PRELUDE) + textwrap.dedent(body) + "\nprint(json.dumps(result), flush=True)\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_prompt(result: dict) -> None:
    assert result["raised"], result
    # Far below the call's own 20 s: the handler ran while the call blocked.
    assert result["elapsed"] < BLOCKING_SECONDS / 2, result


def test_ctrl_c_interrupts_start_and_a_later_start_connects():
    result = _run(START)
    _assert_prompt(result)
    assert result["state_after"] == "CLOSED", result
    assert result["restart"] is True, result


def test_ctrl_c_interrupts_a_send_blocked_by_the_slow_consumer_policy():
    result = _run(SERVER_SEND)
    _assert_prompt(result)
    assert result["send_after"] is True, result
    assert result["clients_after"] is True, result


def test_ctrl_c_during_server_stop_leaves_it_stopped_and_restartable():
    # Each close handshake is bounded by the connection's 1 s close timeout
    # whatever stop's timeout says: as for the client, no promptness to show.
    result = _run(SERVER_STOP)
    assert result["raised"], result
    assert result["state_after"] is False, result
    assert result["restart"] is True, result
    assert result["connect_after"] is True, result


def test_ctrl_c_during_client_stop_leaves_it_stopped_and_restartable():
    # The close handshake waits 1 s at most: no promptness to show here, only
    # that the interruption leaves a cleanly stopped client.
    result = _run(CLIENT_STOP)
    assert result["raised"], result
    assert result["state_after"] == "CLOSED", result
    assert result["restart"] is True, result


def test_ctrl_c_interrupts_messages():
    result = _run(MESSAGES)
    _assert_prompt(result)
    assert result["state_after"] is True, result


def test_a_handler_stopping_the_server_inside_its_stop_does_not_deadlock():
    result = _run(REENTRANT_STOP)
    assert result["inner_start"] == [False], result  # refused: the stop is under way
    assert result["state_after"] is False, result
    assert result["restart"] is True, result
