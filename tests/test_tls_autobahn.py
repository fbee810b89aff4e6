"""Autobahn TestSuite cases 1.*-7.*, 9.*, 10.* over wss://, driven by kosoku.

kosoku speaks plain ws only, so a loopback relay (tests/_tls_bridge.py) adds the
TLS layer: kosoku -> relay -> TLS -> `python -m ixws echo-server --tls`, and
`python -m ixws autobahn --url wss://...` -> TLS -> relay -> kosoku. Every byte
our engine reads or writes in these runs goes through its TLS path.
"""
from __future__ import annotations

import ssl

import pytest

from _certs import CA
from _tls_bridge import TlsBridge
from test_autobahn import (
    AGENT,
    EXPECTED_CASES,
    GROUPS,
    KOSOKU,
    KOSOKU_TIMEOUT,
    PY,
    SLOW_GROUPS,
    Proc,
    _include_args,
    case_count,
    describe_failures,
    failing_cases,
)

pytest.importorskip("cryptography")
# The permessage-deflate groups (12.*, 13.*: minutes each, marked slow in
# test_autobahn.py) run over plain ws only: deflate sits above the transport.
TLS_GROUPS = [g for g in GROUPS if g not in SLOW_GROUPS]
# About 25 s for all four runs, like test_autobahn.py: not marked slow.
pytestmark = pytest.mark.skipif(KOSOKU is None, reason="kosoku is not installed (pip install kosoku)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = CA(str(tmp_path_factory.mktemp("autobahn-pki")))
    return ca, ca.issue("server")


@pytest.mark.parametrize("group", TLS_GROUPS, ids=TLS_GROUPS)
def test_server_conformance_over_tls(group, tmp_path, pki):
    """kosoku fuzzingclient -> relay -> wss -> python -m ixws echo-server --tls."""
    ca, server_cert = pki
    outdir = tmp_path / "reports"
    with Proc(
        [PY, "-m", "ixws", "echo-server", "--host", "127.0.0.1", "--port", "0", "--tls",
         "--cert-file", server_cert.cert_file, "--key-file", server_cert.key_file],
        tmp_path / "echo-server.log",
    ) as server:
        port = int(server.expect_line(r"^listening on wss://127\.0\.0\.1:(\d+)$").group(1))
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca.cert_file)
        bridge = TlsBridge("to_tls", port, ctx).start()
        try:
            with Proc(
                [KOSOKU, "-m", "fuzzingclient", *_include_args(GROUPS[group]), "-o", str(outdir),
                 f"ws://127.0.0.1:{bridge.port}"],
                tmp_path / "kosoku.log",
            ) as kosoku:
                kosoku.wait(KOSOKU_TIMEOUT)
                kosoku_output = kosoku.output()
        finally:
            bridge.stop()
        assert server.proc.poll() is None, f"echo-server died during the run:\n{server.output()}"

    assert case_count(outdir) == EXPECTED_CASES[group], f"not every case was run; kosoku said:\n{kosoku_output}"
    failing = failing_cases(outdir)
    assert not failing, describe_failures(failing, "server")


@pytest.mark.parametrize("group", TLS_GROUPS, ids=TLS_GROUPS)
def test_client_conformance_over_tls(group, tmp_path, pki):
    """kosoku fuzzingserver <- relay <- wss <- python -m ixws autobahn (our client)."""
    ca, server_cert = pki
    outdir = tmp_path / "reports"
    with Proc(
        [KOSOKU, "-m", "fuzzingserver", *_include_args(GROUPS[group]), "-o", str(outdir), "127.0.0.1:0"],
        tmp_path / "kosoku.log",
    ) as kosoku:
        port = int(kosoku.expect_line(r"fuzzingserver listening on ws://[^:]+:(\d+)").group(1))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(server_cert.cert_file, server_cert.key_file)
        bridge = TlsBridge("from_tls", port, ctx).start()
        try:
            with Proc(
                [PY, "-m", "ixws", "autobahn", "--url", f"wss://localhost:{bridge.port}", "--agent", AGENT,
                 "--case-timeout", "60", "--ca-file", ca.cert_file],
                tmp_path / "autobahn-client.log",
            ) as client:
                status = client.wait(KOSOKU_TIMEOUT)
                client_output = client.output()
            kosoku.wait(120)
        finally:
            bridge.stop()

    assert status == 0, f"python -m ixws autobahn exited {status}:\n{client_output}"
    assert case_count(outdir, AGENT) == EXPECTED_CASES[group], f"not every case was run:\n{client_output}"
    failing = failing_cases(outdir, AGENT)
    assert not failing, describe_failures(failing, "client")
