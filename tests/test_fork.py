"""os.fork() in a process with a started server and client.

In the child, inherited servers and clients are closed without touching the
wire (their sockets are the parent's too), the child exits promptly, and new
servers and clients work there (the engine's loops are made afresh).
Each scenario runs in a subprocess that forks: the test runner never forks.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = """
import json, os, queue, sys, threading, time
import ixws

SENDING_THREAD = {sending_thread}

def echo_server():
    def on_event(ev):
        if ev.type == "message":
            server.send(ev.data, [ev.client])
    server = ixws.Server(port=0, method=on_event)
    assert server.start()["success"]
    return server

def echo_once(server, text):
    events = queue.Queue()
    client = ixws.Client(url="ws://127.0.0.1:%d/" % server.port, method=events.put,
                         enable_automatic_reconnection=False)
    ok = client.start(timeout=5)["success"]
    if ok:
        client.send(text)
    deadline = time.monotonic() + 5
    while ok and time.monotonic() < deadline:
        try:
            ev = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if ev.type == "message":
            client.close()
            return ev.data
    client.close()
    return None

parent_events = queue.Queue()
server = echo_server()
client = ixws.Client(url="ws://127.0.0.1:%d/" % server.port, method=parent_events.put,
                     enable_automatic_reconnection=False)
assert client.start(timeout=5)["success"]
assert echo_once(server, "warm-up") == "warm-up"

stop_sending = threading.Event()
if SENDING_THREAD:
    # Keeps engine locks busy while the fork happens.
    def sender():
        for _ in range(1000000):
            if stop_sending.is_set():
                return
            client.send("background")
    threading.Thread(target=sender, daemon=True).start()
    time.sleep(0.05)  # let it get going: the fork must land mid-traffic

read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    report = {{"inherited_client": client.ready_state, "inherited_server_clients": server.clients()}}
    fresh = echo_server()
    report["echo"] = echo_once(fresh, "from the child")
    fresh.close()
    os.write(write_end, json.dumps(report).encode())
    os.close(write_end)
    sys.exit(0)  # a normal exit: atexit runs ixws's shutdown

os.close(write_end)
t0 = time.monotonic()
_, status = os.waitpid(pid, 0)
child_seconds = time.monotonic() - t0
child = json.loads(os.read(read_end, 65536).decode() or "{{}}")
stop_sending.set()
time.sleep(0.2)  # what the child might have written has arrived by now
drained = []
while not parent_events.empty():
    drained.append(parent_events.get())
result = {{
    "child_status": status,
    "child_seconds": child_seconds,
    "child": child,
    "parent_close_events": [ev.code for ev in drained if ev.type == "close"],
    "parent_client": client.ready_state,
    "parent_server_clients": len(server.clients()),
    "parent_echo": echo_once(server, "parent still serves"),
}}
client.send("still connected")
deadline = time.monotonic() + 5
got = None
while time.monotonic() < deadline:
    try:
        ev = parent_events.get(timeout=0.1)
    except queue.Empty:
        continue
    if ev.type == "message" and ev.data == "still connected":
        got = ev.data
        break
    if ev.type == "close":
        break
result["parent_client_echo"] = got
print(json.dumps(result), flush=True)
"""


def _run(sending_thread: bool) -> dict:
    script = textwrap.dedent(SCRIPT).format(sending_thread=sending_thread)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(result: dict) -> None:
    assert result["child_status"] == 0, result
    # The child saw its inherited objects closed and made new ones that work.
    assert result["child"]["inherited_client"] == "CLOSED", result
    assert result["child"]["inherited_server_clients"] == [], result
    assert result["child"]["echo"] == "from the child", result
    # The parent lost nothing: no Close came from the child.
    assert result["parent_close_events"] == [], result
    assert result["parent_client"] == "OPEN", result
    assert result["parent_server_clients"] == 1, result
    assert result["parent_echo"] == "parent still serves", result
    assert result["parent_client_echo"] == "still connected", result
    # Nothing left to wait for in the child (it used to wait out close
    # timeouts on loops that no longer exist there); a loose bound.
    assert result["child_seconds"] < 5, result


def test_child_of_fork_leaves_the_parents_connections_alone_and_works():
    _check(_run(sending_thread=False))


def test_fork_while_another_thread_sends():
    _check(_run(sending_thread=True))
