"""Tests of the command line, ``python -m ixws ...``, run as child processes.

Every child runs with a timeout and is always terminated (see ``Child``).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from typing import List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

import ixws  # noqa: F401  (the CLI needs the built package)

websocket = pytest.importorskip("websocket")  # websocket-client

PY = sys.executable
CLI_TIMEOUT = 60  # seconds for a whole CLI run


def run_cli(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "ixws", *args], capture_output=True, text=True, timeout=timeout
    )


class Child:
    """A ``python -m ixws`` child whose stdout lines are read by a thread.

    Use as a context manager: the child is always terminated (then killed) on exit.
    """

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "ixws", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.seen: List[str] = []
        self.stderr_text = ""
        self._out = threading.Thread(target=self._pump, daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._pump_err, daemon=True)
        self._err.start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _pump_err(self) -> None:
        self.stderr_text = self.proc.stderr.read()

    def expect_line(self, pattern: str, timeout: float = 20.0) -> "re.Match[str]":
        regex = re.compile(pattern)
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                try:
                    line = self.lines.get(timeout=0.2)
                except queue.Empty:
                    continue
                if line is None:
                    break
                self.seen.append(line)
                match = regex.search(line)
                if match:
                    return match
        finally:
            timer.cancel()
        self._err.join(timeout=2)
        raise AssertionError(
            f"no line matching {pattern!r} within {timeout} s; stdout so far: {self.seen!r}; "
            f"exit={self.proc.poll()}; stderr: {self.stderr_text[-2000:]!r}"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.join(timeout=5)
        self._err.join(timeout=5)


# ---------------------------------------------------------------- help / usage


def test_help_lists_commands():
    res = run_cli("--help")
    assert res.returncode == 0, res.stderr
    for command in ("demo", "echo-server", "autobahn"):
        assert command in res.stdout


def test_no_command_prints_usage_and_fails():
    res = run_cli()
    assert res.returncode == 2
    assert "usage:" in res.stderr


def test_autobahn_help():
    res = run_cli("autobahn", "--help")
    assert res.returncode == 0, res.stderr
    for option in ("--url", "--agent", "--cases", "--case-timeout"):
        assert option in res.stdout


def test_echo_server_help():
    res = run_cli("echo-server", "--help")
    assert res.returncode == 0, res.stderr
    for option in ("--host", "--port", "--max-message-size"):
        assert option in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["autobahn"], "--url"),
        (["echo-server", "--port", "70000"], "port must be in 0..65535"),
        (["echo-server", "--port", "x"], "expected a port number"),
        (["demo", "--clients", "0"], "positive integer"),
        (["bogus"], "invalid choice"),
    ],
)
def test_usage_errors(args, message):
    res = run_cli(*args)
    assert res.returncode == 2
    assert message in res.stderr


def test_autobahn_rejects_non_ws_url():
    res = run_cli("autobahn", "--url", "http://127.0.0.1:1")
    assert res.returncode == 1
    assert "must start with ws://" in res.stderr


def test_autobahn_reports_unreachable_server():
    port = _unused_port()
    res = run_cli("autobahn", "--url", f"ws://127.0.0.1:{port}")
    assert res.returncode == 1
    assert "cannot connect" in res.stderr


# ------------------------------------------------------------------------ demo

DEMO_SUMMARY = re.compile(r"^demo ok: (\d+) clients, (\d+) messages, (\d+) bytes, (\d+) ms$")


def _demo_messages(clients: int) -> int:
    # server receives 2 per client; each client gets 2 replies + 1 broadcast;
    # client 1 also gets the binary message sent to a subset.
    return 2 * clients + 2 * clients + clients + 1


def test_demo_exits_0_with_summary():
    res = run_cli("demo", timeout=CLI_TIMEOUT)
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    lines = res.stdout.strip().splitlines()
    match = DEMO_SUMMARY.match(lines[-1])
    assert match, f"last line is not the summary: {lines[-1]!r}"
    assert int(match.group(1)) == 3
    assert int(match.group(2)) == _demo_messages(3)
    assert int(match.group(3)) > 0
    # Events are printed as readable lines.
    text = res.stdout
    assert "[server]   open" in text
    assert "[client 1] message" in text
    assert "[client 3] close" in text
    assert "broadcast: hello everyone" in text


def test_demo_more_clients_quiet():
    res = run_cli("demo", "--clients", "5", "--quiet")
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, lines
    match = DEMO_SUMMARY.match(lines[0])
    assert match, lines
    assert int(match.group(1)) == 5
    assert int(match.group(2)) == _demo_messages(5)


# ----------------------------------------------------------------- echo server


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_echo_server_echoes_and_stops_on_signal(sig):
    with Child("echo-server", "--host", "127.0.0.1", "--port", "0") as child:
        match = child.expect_line(r"^listening on ws://127\.0\.0\.1:(\d+)$")
        port = int(match.group(1))
        assert port > 0

        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/", timeout=10)
        try:
            ws.send("héllo ✓")
            opcode, data = ws.recv_data()
            assert opcode == websocket.ABNF.OPCODE_TEXT
            assert data.decode("utf-8") == "héllo ✓"

            payload = bytes(range(256)) * 300  # 76800 bytes: several frames
            ws.send_binary(payload)
            opcode, data = ws.recv_data()
            assert opcode == websocket.ABNF.OPCODE_BINARY
            assert data == payload

            ws.send("")
            opcode, data = ws.recv_data()
            assert opcode == websocket.ABNF.OPCODE_TEXT
            assert data == b""
        finally:
            ws.close()

        assert child.stop(sig) == 0, child.stderr_text
        child._out.join(timeout=5)
        rest = []
        while True:
            try:
                line = child.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                rest.append(line)
        assert "stopped" in rest, rest


def test_echo_server_explicit_port_and_many_clients():
    port = _unused_port()
    with Child("echo-server", "--port", str(port)) as child:
        child.expect_line(rf"^listening on ws://127\.0\.0\.1:{port}$")
        conns = [websocket.create_connection(f"ws://127.0.0.1:{port}/c{i}", timeout=10) for i in range(8)]
        try:
            for i, ws in enumerate(conns):
                ws.send(f"message {i}")
            for i, ws in enumerate(conns):
                assert ws.recv() == f"message {i}"
        finally:
            for ws in conns:
                ws.close()
        assert child.stop() == 0


def test_echo_server_port_in_use_fails_clearly():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        res = run_cli("echo-server", "--port", str(port), timeout=30)
    assert res.returncode == 1
    assert "cannot listen" in res.stderr


@pytest.mark.engine_extension
def test_echo_server_max_message_size_closes_1009():
    with Child("echo-server", "--port", "0", "--max-message-size", "1000") as child:
        port = int(child.expect_line(r"^listening on ws://127\.0\.0\.1:(\d+)$").group(1))
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/", timeout=10)
        try:
            ws.send("x" * 1000)
            assert ws.recv() == "x" * 1000
            ws.send("y" * 1001)
            opcode, data = ws.recv_data(control_frame=True)
            assert opcode == websocket.ABNF.OPCODE_CLOSE
            assert int.from_bytes(data[:2], "big") == 1009
        finally:
            ws.close()
        assert child.stop() == 0


# ----------------------------------------------- autobahn client, mock server


class MiniFuzzingServer:
    """A tiny stand-in for an Autobahn fuzzingserver, built on `websockets`.

    Case i sends a text and a binary message, checks the echoes, then closes
    with 1000. It records what the client did, per agent.
    """

    CASES = ["1.1.1", "1.2.1", "2.1"]

    def __init__(self, server_header: Optional[str], compression: Optional[str] = None) -> None:
        self.server_header = server_header
        self.compression = compression
        self.extensions: List[str] = []  # Sec-WebSocket-Extensions answered per connection
        self.log: List[tuple] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Future] = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handler(self, ws) -> None:
        self.extensions.append(ws.response.headers.get("Sec-WebSocket-Extensions", ""))
        parts = urlsplit(ws.request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path == "/getCaseCount":
            await ws.send(str(len(self.CASES)))
            await ws.close()
        elif path == "/getCaseInfo":
            case = int(query["case"])
            await ws.send(json.dumps({"id": self.CASES[case - 1], "description": "mock"}))
            await ws.close()
        elif path == "/runCase":
            case = int(query["case"])
            text, data = f"case {case} text", bytes([case]) * 70000
            await ws.send(text)
            await ws.send(data)
            echoed_text = await ws.recv()
            echoed_data = await ws.recv()
            ok = echoed_text == text and echoed_data == data
            self.log.append(("run", query.get("agent"), self.CASES[case - 1], ok))
            await ws.close(1000)
        elif path == "/updateReports":
            self.log.append(("update", query.get("agent")))
            await ws.close()
        else:
            await ws.close(1008, "unknown path")

    def _run(self) -> None:
        import websockets

        async def main():
            self._loop = asyncio.get_running_loop()
            self._stop = self._loop.create_future()
            kwargs = {"max_size": None, "compression": self.compression}
            if self.server_header is not None:
                kwargs["server_header"] = self.server_header
            else:
                kwargs["server_header"] = None
            async with websockets.serve(self._handler, "127.0.0.1", 0, **kwargs) as server:
                self.port = list(server.sockets)[0].getsockname()[1]
                self._ready.set()
                await self._stop

        asyncio.run(main())

    def __enter__(self) -> "MiniFuzzingServer":
        pytest.importorskip("websockets")
        self._thread.start()
        assert self._ready.wait(10), "mock fuzzing server did not start"
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
        self._thread.join(timeout=10)


def test_autobahn_protocol_against_mock_server():
    with MiniFuzzingServer(server_header=None) as mock:
        res = run_cli("autobahn", "--url", f"ws://127.0.0.1:{mock.port}", "--agent", "cli-test")
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    runs = [entry for entry in mock.log if entry[0] == "run"]
    assert [r[2] for r in runs] == MiniFuzzingServer.CASES
    assert all(r[1] == "cli-test" and r[3] for r in runs), runs
    assert mock.log[-1] == ("update", "cli-test")
    assert "autobahn done: 3 cases run" in res.stdout


def test_autobahn_deflate_offer():
    with MiniFuzzingServer(server_header=None, compression="deflate") as mock:
        res = run_cli("autobahn", "--url", f"ws://127.0.0.1:{mock.port}", "--deflate", "--no-context-takeover")
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert all(r[3] for r in mock.log if r[0] == "run"), mock.log
    # Every connection negotiated deflate, with client_no_context_takeover.
    assert mock.extensions and all("permessage-deflate" in e and "client_no_context_takeover" in e
                                   for e in mock.extensions), mock.extensions


def test_autobahn_no_context_takeover_needs_deflate():
    res = run_cli("autobahn", "--url", "ws://127.0.0.1:1", "--no-context-takeover")
    assert res.returncode == 1
    assert "--no-context-takeover needs --deflate" in res.stderr


def test_autobahn_cases_filter_uses_case_info_when_announced():
    with MiniFuzzingServer(server_header="AutobahnTestSuite/0.8.2-0.10.9") as mock:
        res = run_cli("autobahn", "--url", f"ws://127.0.0.1:{mock.port}", "--cases", "1.2.*,2.1")
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    runs = [entry for entry in mock.log if entry[0] == "run"]
    assert [r[2] for r in runs] == ["1.2.1", "2.1"]
    assert all(r[1] == "ixws" and r[3] for r in runs), runs


def test_autobahn_cases_filter_without_case_info_runs_all():
    with MiniFuzzingServer(server_header=None) as mock:
        res = run_cli("autobahn", "--url", f"ws://127.0.0.1:{mock.port}", "--cases", "1.2.*")
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert "running all cases" in res.stderr
    runs = [entry for entry in mock.log if entry[0] == "run"]
    assert [r[2] for r in runs] == MiniFuzzingServer.CASES
