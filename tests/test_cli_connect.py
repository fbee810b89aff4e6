"""``python -m ixws connect URL`` (an interactive client) and ``--version``,
driven as child processes: lines written to their stdin, an ixws echo server
in this process. Every child runs with a timeout and is always stopped."""
from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional

import pytest

import ixws
from _peers import accept_for, parse_headers, read_http_head

PY = sys.executable
TIMEOUT = 20.0


class EchoServer:
    """An ixws server that echoes, records what it sees, and obeys a few words."""

    def __init__(self, **options: Any) -> None:
        self.cond = threading.Condition()
        self.events: List[Any] = []
        self.server = ixws.Server({"port": 0, "method": self._on_event, "subprotocols": ["chat", "superchat"],
                                   **options})
        assert self.server.start()["success"]
        self.port = self.server.config["port"]

    def _on_event(self, ev: Any) -> None:
        if ev.type == "message":
            if ev.data == "send binary":
                self.server.send(b"\x00\x7f\xff", clients=[ev.client])
            elif ev.data == "close me":
                self.server.close_client(ev.client, 4000, "as asked")
            else:
                self.server.send(ev.data, clients=[ev.client])
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def wait_for(self, kind: str) -> Any:
        with self.cond:
            assert self.cond.wait_for(lambda: any(e.type == kind for e in self.events), TIMEOUT), self.events
            return next(e for e in self.events if e.type == kind)

    def messages(self) -> List[Any]:
        with self.cond:
            return [e.data for e in self.events if e.type == "message"]

    def close(self) -> None:
        self.server.stop()
        self.server.close()


@pytest.fixture
def echo_server():
    made: List[EchoServer] = []

    def factory(**options: Any) -> EchoServer:
        made.append(EchoServer(**options))
        return made[-1]

    yield factory
    for server in made:
        server.close()


class Connect:
    """A ``python -m ixws connect`` child: stdin written by the test, stdout read by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([PY, "-m", "ixws", "connect", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.seen: List[str] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send_line(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def end_input(self) -> None:
        self.proc.stdin.close()

    def expect(self, pattern: str) -> "re.Match[str]":
        regex = re.compile(pattern)
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line matching {pattern!r}; seen {self.seen!r}; "
                                     f"exit={self.proc.poll()}")
            self.seen.append(line)
            match = regex.search(line)
            if match:
                return match

    def wait(self) -> int:
        return self.proc.wait(timeout=TIMEOUT)

    def __enter__(self) -> "Connect":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        self._reader.join(timeout=5)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "ixws", *args], capture_output=True, text=True, timeout=60)


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    engine = ixws.engine_info()
    assert result.stdout.strip() == (f"ixws {ixws.__version__} ({engine['engine']} engine, "
                                     f"IXWebSocket API {engine['version']})")


def test_lines_typed_are_sent_and_messages_printed(echo_server):
    server = echo_server()
    url = f"ws://127.0.0.1:{server.port}/chat"
    with Connect(url) as child:
        child.expect(rf"^connected to {re.escape(url)}$")
        child.send_line("hello")
        child.expect(r"^< hello$")
        child.send_line("second line é")
        child.expect(r"^< second line é$")
        child.send_line("send binary")
        child.expect(r"^< binary 3 bytes: 00 7f ff$")
        child.end_input()
        child.expect(r"^connection closed: code=1000 ")
        assert child.wait() == 0
    assert server.messages() == ["hello", "second line é", "send binary"]
    close = server.wait_for("close")
    assert (close.code, close.remote) == (1000, True)


def test_headers_and_subprotocol_reach_the_server(echo_server):
    server = echo_server()
    url = f"ws://127.0.0.1:{server.port}/"
    with Connect(url, "--header", "X-Token: abc:def", "-H", "X-Other:1", "--subprotocol", "superchat") as child:
        child.expect(r"^connected to .* \(subprotocol: superchat\)$")
        child.end_input()
        assert child.wait() == 0
    opened: Dict[str, Any] = server.wait_for("open").context
    assert opened["X-Token"] == "abc:def" and opened["X-Other"] == "1"
    assert opened["protocol"] == "superchat"


def test_a_close_from_the_server_ends_the_session(echo_server):
    server = echo_server()
    with Connect(f"ws://127.0.0.1:{server.port}/") as child:
        child.expect("^connected to ")
        child.send_line("close me")  # stdin stays open: the close alone ends the command
        child.expect(r"^connection closed: code=4000 reason='as asked'$")
        assert child.wait() == 0


def test_a_connection_lost_without_a_close_exits_1():
    """A peer that completes the upgrade and then drops the TCP connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT)  # the peer thread waits for the child, bounded
        port = listener.getsockname()[1]

        def answer_then_drop() -> None:
            conn, _ = listener.accept()
            with conn:
                head, _rest = read_http_head(conn)
                key = parse_headers(head)["sec-websocket-key"]
                conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_for(key)}\r\n\r\n").encode())

        peer = threading.Thread(target=answer_then_drop, daemon=True)
        peer.start()
        with Connect(f"ws://127.0.0.1:{port}/") as child:
            child.expect("^connected to ")
            child.expect(r"^connection closed: code=1006 ")
            assert child.wait() == 1
        peer.join(TIMEOUT)


def test_refused_connection_fails_clearly():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run([PY, "-m", "ixws", "connect", "--timeout", "5", f"ws://127.0.0.1:{port}/"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert f"cannot connect to ws://127.0.0.1:{port}/" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--header", "no-colon", "ws://127.0.0.1:9/"], "expected NAME:VALUE"),
    (["--ca-file", "x.pem", "ws://127.0.0.1:9/"], "need a wss:// URL"),
    (["--insecure", "--ca-file", "x.pem", "wss://127.0.0.1:9/"], "contradict"),
    (["http://127.0.0.1:9/"], "ws:// or wss://"),
])
def test_bad_arguments_fail_clearly(args, message):
    result = subprocess.run([PY, "-m", "ixws", "connect", *args], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode in (1, 2)
    assert message in result.stderr


def test_tls_options(echo_server, tmp_path):
    pytest.importorskip("cryptography")
    from _certs import CA

    ca = CA(str(tmp_path))
    issued = ca.issue("server")
    server = echo_server(tls={"certFile": issued.cert_file, "keyFile": issued.key_file})
    url = f"wss://127.0.0.1:{server.port}/"
    for trust in (["--ca-file", ca.cert_file], ["--insecure"]):
        with Connect(*trust, url) as child:
            child.expect(f"^connected to {re.escape(url)}$")
            child.send_line("over tls")
            child.expect("^< over tls$")
            child.end_input()
            assert child.wait() == 0
    # Without them the system store does not trust this CA.
    result = subprocess.run([PY, "-m", "ixws", "connect", "--timeout", "5", url], capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "cannot connect" in result.stderr
