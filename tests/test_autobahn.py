"""Autobahn TestSuite conformance, driven by kosoku (PyPI), in both directions.

* Server: ``kosoku -m fuzzingclient`` against ``python -m ixws echo-server``.
* Client: ``kosoku -m fuzzingserver`` with ``python -m ixws autobahn`` connecting.

Both run the cases 1.* to 10.*, and the permessage-deflate cases 12.* and 13.*
(the echo server accepts deflate by default; the client offers it with
``--deflate``, plus client_no_context_takeover for 13.*, whose servers only accept
offers that allow asking for it). kosoku writes Autobahn-style reports; we read its
``index.json`` (found under the -o outdir) and require every case to be rated
OK or INFORMATIONAL, for the message exchange (``behavior``) and for the closing
handshake (``behaviorClose``). NON-STRICT counts as a failure here, although
kosoku itself treats it as a pass.

About 9.* (limits/performance: messages up to 16 MiB, many frames): it runs in
its own test so a failure there is reported separately. Measured on the dev box:
server side 9.* ~2.5 s (all of 1-7 and 10 ~6.5 s), client side all of 1-10 ~16 s.
That is far below the ~3 minute budget, so 9.* is part of the default run and is
NOT marked slow. If it ever grows past that, mark ``test_*[9]`` with
``pytest.mark.slow`` and keep it out of the default selection.

Every child process runs with a timeout and is always terminated.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import ixws  # noqa: F401  (the CLI needs the built package)

KOSOKU = shutil.which("kosoku")
pytestmark = pytest.mark.skipif(KOSOKU is None, reason="kosoku is not installed (pip install kosoku)")

PY = sys.executable
KOSOKU_TIMEOUT = 600  # seconds for one kosoku run (the whole 1-10 range takes < 30 s)
ACCEPTED = ("OK", "INFORMATIONAL")
AGENT = "ixws-pytest"

# Case groups: each is one kosoku run (Autobahn has no 8.*; 11.* and 14.*-16.* are
# not in kosoku's case set).
GROUPS = {
    "1-7,10": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"],
    "9": ["9.*"],
    "12": ["12.*"],
    "13": ["13.*"],
}
# How many cases each group holds in the Autobahn TestSuite (301 in 1.* to 10.*,
# 90 in 12.*, 126 in 13.*, counted from kosoku runs): a run that silently skipped
# cases must not pass.
EXPECTED_CASES = {"1-7,10": 247, "9": 54, "12": 90, "13": 126}
# Extra arguments of `python -m ixws autobahn` per group.
CLIENT_ARGS = {"12": ["--deflate"], "13": ["--deflate", "--no-context-takeover"]}
# 12.* and 13.* send 1000 compressed messages of up to 128 KiB per case (216
# cases): a few minutes per direction, so they are marked slow.
SLOW_GROUPS = {"12", "13"}


SLOW_TIMEOUT = 1800  # seconds for one kosoku run of a slow group


def _group_params():
    return [pytest.param(g, id=g, marks=[pytest.mark.slow, pytest.mark.timeout(SLOW_TIMEOUT + 300)]
                         if g in SLOW_GROUPS else []) for g in GROUPS]


def _run_timeout(group: str) -> float:
    return SLOW_TIMEOUT if group in SLOW_GROUPS else KOSOKU_TIMEOUT


class Proc:
    """A child process whose stdout and stderr lines are collected by threads."""

    def __init__(self, argv: List[str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.all_lines: List[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        with open(self.log_path, "w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                line = line.rstrip("\n")
                with self._lock:
                    self.all_lines.append(line)
                self.lines.put(line)
        self.lines.put(None)

    def output(self, last: int = 40) -> str:
        with self._lock:
            return "\n".join(self.all_lines[-last:])

    def expect_line(self, pattern: str, timeout: float = 30.0) -> "re.Match[str]":
        regex = re.compile(pattern)
        done = threading.Event()
        timer = threading.Timer(timeout, done.set)
        timer.start()
        try:
            while not done.is_set():
                try:
                    line = self.lines.get(timeout=0.2)
                except queue.Empty:
                    continue
                if line is None:
                    break
                match = regex.search(line)
                if match:
                    return match
        finally:
            timer.cancel()
        raise AssertionError(
            f"{self.argv[:3]}: no line matching {pattern!r} within {timeout} s "
            f"(exit={self.proc.poll()}); output:\n{self.output()}"
        )

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{' '.join(self.argv[:4])} did not finish within {timeout} s; output:\n{self.output()}"
            ) from None

    def __enter__(self) -> "Proc":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


def _include_args(patterns: List[str]) -> List[str]:
    args: List[str] = []
    for pattern in patterns:
        args += ["-i", pattern]
    return args


def find_index(outdir: Path) -> Path:
    found = sorted(outdir.rglob("index.json"))
    if not found:
        raise AssertionError(f"kosoku wrote no index.json under {outdir}")
    return found[0]


def failing_cases(outdir: Path, agent: Optional[str] = None) -> Dict[str, dict]:
    """Reads kosoku's index.json; returns {case id: entry} for cases not OK/INFORMATIONAL.

    Each entry is enriched from the per-case report with the expected and observed
    close codes and kosoku's explanation.
    """
    index_path = find_index(outdir)
    index = json.loads(index_path.read_text())
    agents = [agent] if agent is not None else list(index)
    if agent is not None and agent not in index:
        raise AssertionError(f"no results for agent {agent!r} in {index_path}; agents: {list(index)}")
    failing: Dict[str, dict] = {}
    for name in agents:
        for case_id, entry in index[name].items():
            if entry.get("behavior") in ACCEPTED and entry.get("behaviorClose") in ACCEPTED:
                continue
            detail = dict(entry)
            report = index_path.parent / entry.get("reportfile", "")
            if report.is_file():
                case = json.loads(report.read_text())
                detail["expectedCloseCodes"] = (case.get("expectedClose") or {}).get("closeCode")
                detail["localCloseCode"] = case.get("localCloseCode")
                detail["result"] = case.get("result")
                detail["resultClose"] = case.get("resultClose")
                detail["expected"] = case.get("expected")
                detail["received"] = case.get("received")
            failing[case_id] = detail
    return failing


def case_count(outdir: Path, agent: Optional[str] = None) -> int:
    index = json.loads(find_index(outdir).read_text())
    if agent is not None:
        return len(index.get(agent, {}))
    return sum(len(cases) for cases in index.values())


def _sort_key(case_id: str):
    return [int(p) if p.isdigit() else p for p in case_id.split(".")]


def describe_failures(failing: Dict[str, dict], role: str) -> str:
    lines = [f"{len(failing)} Autobahn case(s) not OK/INFORMATIONAL for the {role}:"]
    for case_id in sorted(failing, key=_sort_key):
        d = failing[case_id]
        received = json.dumps(d.get("received"))[:160]
        expected = json.dumps(d.get("expected"))[:200]
        lines.append(
            f"  {case_id}: behavior={d.get('behavior')} behaviorClose={d.get('behaviorClose')}; "
            f"close codes expected {d.get('expectedCloseCodes')} observed "
            f"{role}={d.get('remoteCloseCode')} kosoku={d.get('localCloseCode')}; "
            f"{d.get('result')} | {d.get('resultClose')}; expected events {expected}; received {received}"
        )
    return "\n".join(lines)


@pytest.mark.parametrize("group", _group_params())
def test_server_conformance(group, tmp_path):
    """kosoku fuzzingclient -> python -m ixws echo-server."""
    outdir = tmp_path / "reports"
    with Proc(
        [PY, "-m", "ixws", "echo-server", "--host", "127.0.0.1", "--port", "0"],
        tmp_path / "echo-server.log",
    ) as server:
        port = int(server.expect_line(r"^listening on ws://127\.0\.0\.1:(\d+)$").group(1))
        with Proc(
            [KOSOKU, "-m", "fuzzingclient", *_include_args(GROUPS[group]), "-o", str(outdir),
             f"ws://127.0.0.1:{port}"],
            tmp_path / "kosoku.log",
        ) as kosoku:
            kosoku.wait(_run_timeout(group))
            kosoku_output = kosoku.output()
        assert server.proc.poll() is None, f"echo-server died during the run:\n{server.output()}"

    assert case_count(outdir) == EXPECTED_CASES[group], f"not every case was run; kosoku said:\n{kosoku_output}"
    failing = failing_cases(outdir)
    assert not failing, describe_failures(failing, "server")


@pytest.mark.parametrize("group", _group_params())
def test_client_conformance(group, tmp_path):
    """kosoku fuzzingserver <- python -m ixws autobahn (our client)."""
    outdir = tmp_path / "reports"
    with Proc(
        [KOSOKU, "-m", "fuzzingserver", *_include_args(GROUPS[group]), "-o", str(outdir), "127.0.0.1:0"],
        tmp_path / "kosoku.log",
    ) as kosoku:
        port = int(kosoku.expect_line(r"fuzzingserver listening on ws://[^:]+:(\d+)").group(1))
        with Proc(
            [PY, "-m", "ixws", "autobahn", "--url", f"ws://127.0.0.1:{port}", "--agent", AGENT,
             "--case-timeout", "480" if group in SLOW_GROUPS else "60", *CLIENT_ARGS.get(group, [])],
            tmp_path / "autobahn-client.log",
        ) as client:
            status = client.wait(_run_timeout(group))
            client_output = client.output()
            # The CLI flags a case for which the client opened more than one
            # connection (reconnection is disabled, so that is an engine bug that
            # makes kosoku run the case twice).
            with client._lock:
                warnings = [line for line in client.all_lines if "WARNING" in line]
        # /updateReports ends kosoku's run; it then writes the reports and exits.
        kosoku.wait(120)

    assert status == 0, f"python -m ixws autobahn exited {status}:\n{client_output}"
    assert case_count(outdir, AGENT) == EXPECTED_CASES[group], f"not every case was run:\n{client_output}"
    failing = failing_cases(outdir, AGENT)
    message = describe_failures(failing, "client")
    if warnings:
        message += "\nClient warnings:\n  " + "\n  ".join(warnings)
    assert not failing and not warnings, message
