"""``python -m ixws autobahn``: client side of the Autobahn fuzzingserver protocol.

The protocol (AutobahnTestSuite "fuzzingserver", also spoken by kosoku):

* ``GET /getCaseCount``: one text message, the number of cases;
* ``GET /getCaseInfo?case=i``: one text message, JSON with "id" (e.g. "1.1.1")
  and "description" (AutobahnTestSuite only);
* ``GET /runCase?case=i&agent=NAME``: the case itself; the client echoes every
  message back with the same type until the connection is closed;
* ``GET /updateReports?agent=NAME``: the server writes its reports (kosoku ends
  the run there).

Every connection is a separate ``ixws.Client`` with automatic reconnection
disabled. The echo happens in the Python event callback.

``--cases`` needs /getCaseInfo to map case numbers to ids. kosoku does not offer
it: it treats any unknown path as a case run, so probing it would run (and fail)
a case under the agent name "UnknownClient". We therefore only use /getCaseInfo
when the server announces itself as AutobahnTestSuite in its Server header (or
when --case-info=yes); otherwise every case runs and a note says to filter on the
server side (``kosoku -m fuzzingserver -i '1.*'``).
"""

from __future__ import annotations

import fnmatch
import json
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from ._cli_common import CliError, Printer, shutdown_quietly

CONNECT_TIMEOUT = 10  # seconds, per connection attempt
FETCH_TIMEOUT = 10.0  # seconds, for getCaseCount / getCaseInfo answers


# TLS options of every wss:// connection of this run (set once by run_autobahn).
_tls_options: Optional[Dict[str, Any]] = None


def _deflate_options(deflate: bool, no_context_takeover: bool = False) -> Optional[Dict[str, Any]]:
    """The perMessageDeflate option for --deflate: upstream's default offer
    ("permessage-deflate; server_max_window_bits=15; client_max_window_bits=15"),
    plus client_no_context_takeover with --no-context-takeover. Autobahn's 13.2
    and 13.5-13.7 servers only accept offers that allow them to ask for it."""
    if not deflate:
        return None
    return {
        "enabled": True,
        "clientNoContextTakeover": no_context_takeover,
        "serverNoContextTakeover": False,
        "serverMaxWindowBits": 15,
        "clientMaxWindowBits": 15,
    }


def _client_options(url: str, method, deflate: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    options: Dict[str, Any] = {
        "url": url,
        "method": method,
        "enableAutomaticReconnection": False,
    }
    if _tls_options is not None and url.startswith("wss://"):
        options["tls"] = dict(_tls_options)
    if deflate:
        options["perMessageDeflate"] = dict(deflate)
    return options


def _header(headers: Dict[str, Any], name: str) -> str:
    lowered = name.lower()
    for key, value in (headers or {}).items():
        if str(key).lower() == lowered:
            return str(value)
    return ""


class _Fetch:
    """One short connection that waits for the first message the server sends."""

    def __init__(self, url: str, deflate: Optional[Dict[str, Any]]) -> None:
        import ixws

        self.url = url
        self.message: Any = None
        self.headers: Dict[str, Any] = {}
        self.end: Optional[str] = None
        self._done = threading.Event()
        self._client = ixws.Client(_client_options(url, self._on_event, deflate))

    def _on_event(self, ev) -> None:
        ctx = ev.context or {}
        if ev.type == "open":
            self.headers = {k: v for k, v in ctx.items() if k not in ("uri", "protocol")}
        elif ev.type == "message":
            if self.message is None:
                self.message = ev.data
            self._done.set()
        elif ev.type == "close":
            self.end = f"closed with {ctx.get('code')} {ctx.get('reason', '')!r}"
            self._done.set()
        elif ev.type == "error":
            self.end = f"error: {ctx.get('reason', '')}"
            self._done.set()

    def run(self, timeout: float = FETCH_TIMEOUT) -> Any:
        try:
            result = self._client.start(timeout=CONNECT_TIMEOUT)
            if not result.get("success"):
                raise CliError(
                    f"cannot connect to {self.url}: {result.get('errorStr', '')} "
                    f"(http_status={result.get('http_status')})"
                )
            if not self._done.wait(timeout):
                raise CliError(f"no answer from {self.url} within {timeout:g} s")
            if self.message is None:
                raise CliError(f"no message from {self.url} ({self.end})")
            return self.message
        finally:
            shutdown_quietly(self._client)


class _CaseRun:
    """Runs one case: echo every message with the same type until closed."""

    def __init__(self, url: str, deflate: Optional[Dict[str, Any]]) -> None:
        import ixws

        self.url = url
        self.messages = 0
        self.send_failures = 0
        self.opens = 0
        self.close: Optional[Tuple[Any, str, Any]] = None
        self.error: Optional[str] = None
        self._done = threading.Event()
        self._client = ixws.Client(_client_options(url, self._on_event, deflate))

    def _on_event(self, ev) -> None:
        if ev.type == "open":
            self.opens += 1
        elif ev.type == "message":
            self.messages += 1
            result = self._client.send(ev.data)
            if not result.get("success"):
                self.send_failures += 1
        elif ev.type == "close":
            ctx = ev.context or {}
            self.close = (ctx.get("code"), ctx.get("reason", ""), ctx.get("remote"))
            self._done.set()
        elif ev.type == "error":
            self.error = str((ev.context or {}).get("reason", ""))
            self._done.set()

    def run(self, timeout: float) -> str:
        """Returns a one-line outcome."""
        try:
            outcome = self._run(timeout)
        finally:
            shutdown_quietly(self._client)
        if self.opens > 1:
            # Reconnection is disabled: a second connection runs the case again
            # on the server and spoils its report.
            outcome += f"; WARNING: {self.opens} connections were opened for this case"
        return outcome

    def _run(self, timeout: float) -> str:
        result = self._client.start(timeout=CONNECT_TIMEOUT)
        if not result.get("success"):
            self.error = f"{result.get('errorStr', '')} (http_status={result.get('http_status')})"
            return f"connect failed: {self.error}"
        if not self._done.wait(timeout):
            return f"TIMEOUT: not closed after {timeout:g} s ({self._counts()})"
        if self.close is None:
            return f"error: {self.error}"
        code, reason, remote = self.close
        by = "server" if remote else "client"
        return f"closed by {by} {code} {reason!r}, {self._counts()}"

    def _counts(self) -> str:
        echoed = self.messages - self.send_failures
        text = f"{self.messages} messages received, {echoed} echoed"
        if self.send_failures:
            text += " (the connection was already closing)"
        return text


def _matches(case_id: str, patterns: List[str]) -> bool:
    for pattern in patterns:
        if fnmatch.fnmatchcase(case_id, pattern):
            return True
        # "1.1" also selects 1.1.*
        if "*" not in pattern and "?" not in pattern and case_id.startswith(pattern + "."):
            return True
    return False


def _case_id(info_message: Any) -> Optional[str]:
    if not isinstance(info_message, str):
        return None
    try:
        info = json.loads(info_message)
    except ValueError:
        return None
    if isinstance(info, dict) and isinstance(info.get("id"), str):
        return info["id"]
    return None


def run_autobahn(
    url: str,
    agent: str = "ixws",
    cases: Optional[str] = None,
    case_timeout: float = 120.0,
    deflate: bool = False,
    quiet: bool = False,
    case_info: str = "auto",
    ca_file: Optional[str] = None,
    no_context_takeover: bool = False,
) -> int:
    global _tls_options
    _tls_options = {"caFile": ca_file} if ca_file else None
    out = Printer(enabled=not quiet)
    base = url.rstrip("/")
    if not (base.startswith("ws://") or base.startswith("wss://")):
        raise CliError(f"--url must start with ws:// or wss://, got {url!r}")
    agent_q = quote(agent, safe="")
    started = time.monotonic()
    if no_context_takeover and not deflate:
        raise CliError("--no-context-takeover needs --deflate")
    deflate_opts = _deflate_options(deflate, no_context_takeover)

    # 1. how many cases?
    count_fetch = _Fetch(f"{base}/getCaseCount", deflate_opts)
    count_text = count_fetch.run()
    try:
        count = int(str(count_text).strip())
    except ValueError:
        raise CliError(f"/getCaseCount answered {count_text!r}, not a number") from None
    if count < 0:
        raise CliError(f"/getCaseCount answered {count}")
    server_header = _header(count_fetch.headers, "Server")
    out(f"{count} cases on {base} (server: {server_header or 'unannounced'}), agent {agent!r}")

    # 2. which ones?
    selected: List[Tuple[int, Optional[str]]] = [(i, None) for i in range(1, count + 1)]
    patterns = [p.strip() for p in (cases or "").split(",") if p.strip()]
    if patterns:
        use_info = case_info == "yes" or (case_info == "auto" and "autobahn" in server_header.lower())
        if not use_info:
            print(
                "note: the server does not offer /getCaseInfo (kosoku does not), so --cases "
                "cannot be applied here: running all cases. Filter on the server instead, "
                "e.g. kosoku -m fuzzingserver -i '1.*'.",
                file=sys.stderr,
                flush=True,
            )
        else:
            chosen: List[Tuple[int, Optional[str]]] = []
            for i in range(1, count + 1):
                case_id = _case_id(_Fetch(f"{base}/getCaseInfo?case={i}", deflate_opts).run())
                if case_id is None:
                    raise CliError(f"/getCaseInfo?case={i} did not answer JSON with an 'id'")
                if _matches(case_id, patterns):
                    chosen.append((i, case_id))
            selected = chosen
            out(f"--cases {','.join(patterns)}: {len(selected)} of {count} cases selected")

    # 3. run them
    problems = 0
    for number, (i, case_id) in enumerate(selected, start=1):
        label = f"case {i}" + (f" [{case_id}]" if case_id else "")
        run = _CaseRun(f"{base}/runCase?case={i}&agent={agent_q}", deflate_opts)
        t0 = time.monotonic()
        outcome = run.run(case_timeout)
        ms = (time.monotonic() - t0) * 1000.0
        if outcome.startswith(("connect failed", "TIMEOUT")):
            problems += 1
            print(f"{label}: {outcome}", file=sys.stderr, flush=True)
        out(f"[{number}/{len(selected)}] {label}: {outcome} ({ms:.0f} ms)")

    # 4. reports
    try:
        _Fetch(f"{base}/updateReports?agent={agent_q}", deflate_opts).run(timeout=FETCH_TIMEOUT)
    except CliError as exc:
        # Servers answer this request by closing without a message: that is fine.
        if "no message" not in str(exc):
            raise
    elapsed = time.monotonic() - started
    out(f"autobahn done: {len(selected)} cases run in {elapsed:.1f} s, {problems} could not run to a close")
    return 1 if problems else 0
