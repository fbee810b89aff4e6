"""wss:// -- TLS client and server on the engine's reactor (OpenSSL).

Certificates are generated at test time (tests/_certs.py): a CA, a second CA the
peers do not trust, server certificates with various names, an expired one, and
client certificates for mutual TLS.

Tests marked engine_extension check our error texts or behaviour that differs
from upstream (defects 22 and 33, 503 inside TLS, configuration errors at
listen()).
"""
from __future__ import annotations

import logging
import socket
import ssl
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest

import ixws

pytest.importorskip("cryptography")

from _certs import CA  # noqa: E402
from _peers import Recorder, WebsocketsServer, wait_until  # noqa: E402

HOST = "127.0.0.1"


# ------------------------------------------------------------------ fixtures


class PKI:
    def __init__(self, directory: str) -> None:
        self.ca = CA(directory, "ixws test CA")
        self.other_ca = CA(directory, "untrusted CA")
        # localhost + 127.0.0.1
        self.server = self.ca.issue("server")
        self.server_dns_only = self.ca.issue("dns only", dns=("localhost",), ips=())
        self.server_wrong_name = self.ca.issue("example", dns=("example.com",), ips=("192.0.2.1",))
        self.server_expired = self.ca.issue("expired", expired=True)
        self.server_other_ca = self.other_ca.issue("server")
        self.client = self.ca.issue("client", dns=(), ips=(), client=True)
        self.client_other_ca = self.other_ca.issue("client", dns=(), ips=(), client=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def tls_server():
    """tls_server(issued, echo=True, **options) -> (server, recorder) on a free port."""
    made: List[Any] = []

    def factory(issued, echo: bool = True, tls_extra: Optional[Dict[str, Any]] = None,
                **options: Any) -> Tuple[Any, Recorder]:
        holder: Dict[str, Any] = {}

        def on_event(ev: Any) -> None:
            if echo and ev.type == "message":
                holder["server"].send(ev.data, clients=[ev.client])

        rec = Recorder(on_event)
        tls = {"certFile": issued.cert_file, "keyFile": issued.key_file}
        tls.update(tls_extra or {})
        server = ixws.Server({"host": HOST, "port": 0, "method": rec, "tls": tls, **options})
        holder["server"] = server
        made.append(server)
        res = server.start()
        assert res == {"success": True, "message": ""}, res
        return server, rec

    yield factory
    for server in made:
        server.close()


@pytest.fixture
def connect():
    """connect(url, tls) -> (client, recorder, start result); reconnection off."""
    made: List[Any] = []

    def factory(url: str, tls: Optional[Dict[str, Any]] = None, **options: Any):
        rec = Recorder()
        opts = {"url": url, "method": rec, "enableAutomaticReconnection": False}
        if tls is not None:
            opts["tls"] = tls
        opts.update(options)
        client = ixws.Client(opts)
        made.append(client)
        # start(timeout) is the attempt's budget: handshakeTimeout, if given, else 10 s
        return client, rec, client.start(timeout=options.get("handshakeTimeout", 10))

    yield factory
    for client in made:
        client.close()


def port_of(server: Any) -> int:
    return server.config["port"]


def assert_echo(client: Any, rec: Recorder) -> None:
    assert client.send("hello over tls")["success"]
    ev = rec.wait_for("message", timeout=10)[0]
    assert ev.data == "hello over tls"


def assert_failed(result: Dict[str, Any], rec: Recorder, *needles: str) -> str:
    assert not result["success"], result
    text = result["errorStr"]
    for needle in needles:
        assert needle in text, text
    # the error event carries the same reason
    err = rec.wait_for("error", timeout=10)[0]
    assert err.reason == text
    return text


# ------------------------------------------------------------ verification


def test_verified_connection_by_name(pki, tls_server, connect):
    server, srec = tls_server(pki.server)
    client, rec, res = connect(f"wss://localhost:{port_of(server)}/chat?x=1", {"caFile": pki.ca.cert_file})
    assert res["success"], res
    assert res["http_status"] == 101
    assert_echo(client, rec)
    opened = srec.wait_for("open")[0]
    assert opened.context["uri"] == "/chat?x=1"


def test_server_header_reports_openssl(pki, tls_server, connect):
    server, _ = tls_server(pki.server)
    _, _, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert res["success"], res
    headers = {k.lower(): v for k, v in res["headers"].items()}
    assert "ssl/OpenSSL" in headers["server"], headers
    assert "nossl" not in headers["server"]


def test_in_memory_pem_ca(pki, tls_server, connect):
    server, _ = tls_server(pki.server)
    client, rec, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.pem})
    assert res["success"], res
    assert_echo(client, rec)


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_untrusted_ca_rejected(pki, tls_server, connect):
    server, srec = tls_server(pki.server_other_ca)
    _, rec, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert_failed(res, rec, "TLS handshake", "unknown CA", "unable to get local issuer certificate")
    assert srec.of("open") == []


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_system_store_is_the_default(pki, tls_server, connect):
    # Our test CA is not in the OS store: verification is on by default.
    server, _ = tls_server(pki.server)
    _, rec, res = connect(f"wss://localhost:{port_of(server)}/")
    assert_failed(res, rec, "unknown CA")


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_wrong_hostname_rejected(pki, tls_server, connect):
    server, _ = tls_server(pki.server_wrong_name)
    _, rec, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert_failed(res, rec, "hostname mismatch")


def test_hostname_check_disabled(pki, tls_server, connect):
    server, _ = tls_server(pki.server_wrong_name)
    client, rec, res = connect(f"wss://localhost:{port_of(server)}/",
                               {"caFile": pki.ca.cert_file, "disableHostnameValidation": True})
    assert res["success"], res
    assert_echo(client, rec)


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_hostname_check_disabled_still_verifies_the_chain(pki, tls_server, connect):
    server, _ = tls_server(pki.server_other_ca)
    _, rec, res = connect(f"wss://localhost:{port_of(server)}/",
                          {"caFile": pki.ca.cert_file, "disable_hostname_validation": True})
    assert_failed(res, rec, "unknown CA")


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_ip_address_san(pki, tls_server, connect):
    server, _ = tls_server(pki.server)
    client, rec, res = connect(f"wss://127.0.0.1:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert res["success"], res
    assert_echo(client, rec)


def _has_ipv6() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        return True
    except OSError:
        return False


@pytest.mark.engine_extension  # our error texts
@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
def test_ipv6_address_san(pki, connect):
    cert = pki.ca.issue("v6", dns=("localhost",), ips=("::1",))
    rec = Recorder()
    server = ixws.Server(host="::1", port=0, method=rec, tls={"certFile": cert.cert_file, "keyFile": cert.key_file})
    try:
        assert server.start()["success"]
        _, _, res = connect(f"wss://[::1]:{port_of(server)}/", {"caFile": pki.ca.cert_file})
        assert res["success"], res
    finally:
        server.close()
    # a certificate for 127.0.0.1 does not match ::1
    server = ixws.Server(host="::1", port=0, method=rec,
                         tls={"certFile": pki.server.cert_file, "keyFile": pki.server.key_file})
    try:
        assert server.start()["success"]
        _, crec, res = connect(f"wss://[::1]:{port_of(server)}/", {"caFile": pki.ca.cert_file})
        assert_failed(res, crec, "hostname mismatch")
    finally:
        server.close()


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_ip_address_needs_an_ip_san(pki, tls_server, connect):
    # The certificate names "localhost" only: 127.0.0.1 must not match it.
    server, _ = tls_server(pki.server_dns_only)
    _, rec, res = connect(f"wss://127.0.0.1:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert_failed(res, rec, "hostname mismatch")


def test_ca_none_disables_verification(pki, tls_server, connect):
    server, _ = tls_server(pki.server_other_ca)
    client, rec, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": "NONE"})
    assert res["success"], res
    assert_echo(client, rec)


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_expired_certificate_rejected(pki, tls_server, connect):
    server, _ = tls_server(pki.server_expired)
    _, rec, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert_failed(res, rec, "expired certificate", "certificate has expired")


# --------------------------------------------------------------- mutual TLS


def test_mutual_tls_accepted(pki, tls_server, connect):
    server, srec = tls_server(pki.server, tls_extra={"caFile": pki.ca.cert_file})
    client, rec, res = connect(
        f"wss://localhost:{port_of(server)}/",
        {"caFile": pki.ca.cert_file, "certFile": pki.client.cert_file, "keyFile": pki.client.key_file})
    assert res["success"], res
    assert_echo(client, rec)


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_mutual_tls_refuses_a_client_without_certificate(pki, tls_server, connect):
    server, srec = tls_server(pki.server, tls_extra={"caFile": pki.ca.cert_file})
    _, rec, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    text = assert_failed(res, rec)
    assert "TLS alert from the peer" in text and "certificate required" in text, text
    assert srec.of("open") == []
    # the server is still fine
    client, rec2, res2 = connect(
        f"wss://localhost:{port_of(server)}/",
        {"caFile": pki.ca.cert_file, "certFile": pki.client.cert_file, "keyFile": pki.client.key_file})
    assert res2["success"], res2


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_mutual_tls_refuses_a_certificate_from_another_ca(pki, tls_server, connect):
    server, srec = tls_server(pki.server, tls_extra={"caFile": pki.ca.cert_file})
    _, rec, res = connect(
        f"wss://localhost:{port_of(server)}/",
        {"caFile": pki.ca.cert_file, "certFile": pki.client_other_ca.cert_file,
         "keyFile": pki.client_other_ca.key_file})
    text = assert_failed(res, rec)
    assert "TLS alert from the peer" in text and "unknown ca" in text, text
    assert srec.of("open") == []


def test_python_server_does_not_demand_client_certificates_by_default(pki, tls_server, connect):
    # Upstream's C++ default (caFile "SYSTEM") would; the Python layer passes "NONE".
    server, _ = tls_server(pki.server)
    _, _, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert res["success"], res


# -------------------------------------------------- reactor: no stalled accept


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_silent_tcp_clients_do_not_delay_others(pki, tls_server, connect):
    """Defect 22: upstream runs TLS accept on its single accept thread."""
    server, srec = tls_server(pki.server, handshakeTimeout=30)
    port = port_of(server)
    silent = [socket.create_connection((HOST, port), timeout=10) for _ in range(5)]
    # one that starts a TLS record and stops half-way
    partial = socket.create_connection((HOST, port), timeout=10)
    partial.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    try:
        # The handshake timeout (30 s) is far longer than the client's budget (10 s):
        # this only passes if the silent sockets do not block the server.
        for _ in range(3):
            client, rec, res = connect(f"wss://localhost:{port}/", {"caFile": pki.ca.cert_file})
            assert res["success"], res
            assert_echo(client, rec)
            client.close()
        for s in silent + [partial]:
            s.setblocking(False)
            try:
                assert s.recv(1) == b"", "server closed a silent socket early"
            except BlockingIOError:
                pass  # still open, as expected
    finally:
        for s in silent + [partial]:
            s.close()


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_silent_tcp_client_is_dropped_at_the_handshake_timeout(pki, tls_server, caplog):
    caplog.set_level(logging.INFO, logger="ixws")
    server, _ = tls_server(pki.server, handshakeTimeout=1)
    s = socket.create_connection((HOST, port_of(server)), timeout=20)
    try:
        s.settimeout(20)
        assert s.recv(1) == b""  # EOF: the server gave up on the TLS handshake
    finally:
        s.close()
    assert wait_until(lambda: any("TLS handshake timed out" in r.getMessage() for r in caplog.records), 10), \
        [r.getMessage() for r in caplog.records]


@pytest.mark.engine_extension  # our log text
def test_server_logs_failed_tls_handshakes(pki, tls_server, connect, caplog):
    caplog.set_level(logging.INFO, logger="ixws")
    server, _ = tls_server(pki.server, tls_extra={"caFile": pki.ca.cert_file})
    _, _, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert not res["success"]
    assert wait_until(lambda: any("TLS handshake failed" in r.getMessage() and "certificate" in r.getMessage()
                                  for r in caplog.records), 10), [r.getMessage() for r in caplog.records]


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_max_connections_answers_503_inside_tls(pki, tls_server, connect):
    server, _ = tls_server(pki.server, maxConnections=1)
    url = f"wss://localhost:{port_of(server)}/"
    first, rec, res = connect(url, {"caFile": pki.ca.cert_file})
    assert res["success"], res
    _, rec2, res2 = connect(url, {"caFile": pki.ca.cert_file})
    assert not res2["success"]
    assert res2["http_status"] == 503, res2
    # the first connection is unaffected
    assert_echo(first, rec)


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_plain_ws_client_against_tls_server(pki, tls_server, connect):
    server, srec = tls_server(pki.server)
    _, rec, res = connect(f"ws://127.0.0.1:{port_of(server)}/", handshakeTimeout=5)
    assert not res["success"], res
    client, rec2, res2 = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert res2["success"], res2


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_wss_client_against_plain_server(connect):
    rec = Recorder()
    # A ClientHello has no blank line: the plain server waits for one until its
    # handshake timeout, then answers 408 in plaintext.
    server = ixws.Server(host=HOST, port=0, method=rec, handshakeTimeout=1)
    try:
        assert server.start()["success"]
        _, crec, res = connect(f"wss://127.0.0.1:{port_of(server)}/", {"caFile": "NONE"}, handshakeTimeout=5)
        assert_failed(res, crec, "TLS handshake")
        assert rec.of("open") == []
    finally:
        server.close()


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_client_tls_handshake_timeout(connect):
    # A TCP server that accepts and never answers the ClientHello.
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        _, rec, res = connect(f"wss://127.0.0.1:{port}/", {"caFile": "NONE"}, handshakeTimeout=1)
        assert_failed(res, rec, "TLS handshake timed out")
    finally:
        listener.close()


# ---------------------------------------------------------------- options


def test_tls_option_missing_files_name_the_key(pki, tmp_path):
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ValueError, match=r"tls\.certFile.*not found"):
        ixws.Server(port=0, tls={"certFile": missing, "keyFile": pki.server.key_file})
    with pytest.raises(ValueError, match=r"tls\.keyFile.*not found"):
        ixws.Server(port=0, tls={"cert_file": pki.server.cert_file, "key_file": missing})
    with pytest.raises(ValueError, match=r"tls\.caFile.*not found"):
        ixws.Client(url="wss://localhost:1/", tls={"caFile": missing})
    with pytest.raises(ValueError, match=r"tls\.certFile"):
        ixws.Server(port=0, tls={"caFile": "NONE"})
    with pytest.raises(ValueError, match=r"tls\.caFile"):
        ixws.Client(url="wss://localhost:1/", tls={"caFile": ""})
    with pytest.raises(ValueError, match="given together"):
        ixws.Client(url="wss://localhost:1/", tls={"certFile": pki.client.cert_file})


def test_tls_option_accepts_snake_case_and_keeps_config(pki):
    client = ixws.Client(url="wss://localhost:1/", tls={"ca_file": pki.ca.pem, "disable_hostname_validation": True},
                         enable_automatic_reconnection=False)
    try:
        assert client.config["tls"] == {"caFile": pki.ca.pem, "disableHostnameValidation": True}
    finally:
        client.close()


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_bad_ciphers_fail_at_start(pki):
    server = ixws.Server(host=HOST, port=0, tls={"certFile": pki.server.cert_file, "keyFile": pki.server.key_file,
                                                 "ciphers": "NO-SUCH-CIPHER"})
    try:
        res = server.start()
        assert not res["success"]
        assert "ciphers" in res["message"], res
    finally:
        server.close()


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_key_not_matching_certificate_fails_at_start(pki):
    server = ixws.Server(host=HOST, port=0, tls={"certFile": pki.server.cert_file, "keyFile": pki.client.key_file})
    try:
        res = server.start()
        assert not res["success"]
        assert "keyFile" in res["message"], res
    finally:
        server.close()


def test_tls_false_serves_plain_ws(pki, connect):
    rec = Recorder()
    server = ixws.Server(host=HOST, port=0, method=rec, tls={"tls": False})
    try:
        assert server.start()["success"]
        _, _, res = connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert res["success"], res
    finally:
        server.close()


# ----------------------------------------------------------------- smoke


def test_smoke_many_messages_of_each_kind(pki, tls_server, connect):
    server, srec = tls_server(pki.server)
    client, rec, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert res["success"], res
    n = 300
    big = bytes(range(256)) * 1024  # 256 KiB: many TLS records per message
    expected: List[Any] = []
    for i in range(n):
        expected.append(f"text {i} \u00e9\u20ac")
        expected.append(bytes([i % 256]) * (i % 97))
    for i in range(0, n, 3):
        expected.append(big[i:] + bytes([i % 256]))
    for m in expected:
        assert client.send(m)["success"]
    for i in range(n):
        assert client.ping(f"p{i}".encode())["success"]
    got = rec.wait_for("message", timeout=60, count=len(expected))
    assert [e.data for e in got] == expected
    pongs = rec.wait_for("pong", timeout=30, count=n)
    assert [e.data for e in pongs] == [f"p{i}" for i in range(n)]
    # server side: every message arrived intact (and was echoed in order)
    assert [e.data for e in srec.of("message")] == expected
    assert len(srec.of("ping")) == n
    client.stop()
    close = srec.wait_for("close")[0]
    assert close.code == 1000 and close.remote


def test_server_initiated_close_over_tls(pki, tls_server, connect):
    server, srec = tls_server(pki.server)
    client, rec, res = connect(f"wss://localhost:{port_of(server)}/", {"caFile": pki.ca.cert_file})
    assert res["success"], res
    cid = wait_until(server.clients, 5)[0]
    assert server.close_client(cid, 4001, "bye")
    ev = rec.wait_for("close")[0]
    assert (ev.code, ev.reason, ev.remote) == (4001, "bye", True)


# ---------------------------------------------------------------- interop


def _client_context(pki: PKI, cert=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=pki.ca.cert_file)
    if cert is not None:
        ctx.load_cert_chain(cert.cert_file, cert.key_file)
    return ctx


def test_websockets_client_against_our_wss_server(pki, tls_server):
    from websockets.sync.client import connect as ws_connect

    server, srec = tls_server(pki.server)
    url = f"wss://localhost:{port_of(server)}/ws"
    with ws_connect(url, ssl=_client_context(pki), compression=None, max_size=None,
                    open_timeout=10, close_timeout=5) as ws:
        for msg in ["hello", "h\u00e9llo \u20ac", "", b"\x00\x01\xff", bytes(200_000)]:
            ws.send(msg)
            assert ws.recv(timeout=10) == msg
        assert ws.ping(b"abc").wait(10)
    close = srec.wait_for("close")[0]
    assert close.code == 1000


def test_websockets_client_mutual_tls(pki, tls_server):
    from websockets.sync.client import connect as ws_connect

    server, _ = tls_server(pki.server, tls_extra={"caFile": pki.ca.cert_file})
    url = f"wss://localhost:{port_of(server)}/"
    with ws_connect(url, ssl=_client_context(pki, pki.client), open_timeout=10, close_timeout=5) as ws:
        ws.send("mtls")
        assert ws.recv(timeout=10) == "mtls"


def test_our_client_against_websockets_wss_server(pki, connect):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server.cert_file, pki.server.key_file)
    peer = WebsocketsServer(ssl=ctx).start()
    try:
        client, rec, res = connect(f"wss://localhost:{peer.port}/path?q=1", {"caFile": pki.ca.cert_file})
        assert res["success"], res
        msgs: List[Any] = ["hi", b"\x00\xff" * 10, "x" * 100_000, bytes(300_000)]
        for m in msgs:
            assert client.send(m)["success"]
        got = rec.wait_for("message", timeout=20, count=len(msgs))
        assert [e.data for e in got] == msgs
        path, _ = peer.requests.get(timeout=5)
        assert path == "/path?q=1"
        client.stop(1000, "done")
        assert peer.closed.get(timeout=10) == (1000, "done")
    finally:
        peer.stop()


@pytest.mark.engine_extension  # our error texts / defect fixes
def test_our_client_rejects_websockets_server_with_untrusted_cert(pki, connect):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_other_ca.cert_file, pki.server_other_ca.key_file)
    peer = WebsocketsServer(ssl=ctx).start()
    try:
        _, rec, res = connect(f"wss://localhost:{peer.port}/", {"caFile": pki.ca.cert_file})
        assert_failed(res, rec, "unknown CA")
    finally:
        peer.stop()


# -------------------------------------------------------------------- CLI


def test_cli_echo_server_tls(pki):
    import re
    import subprocess

    from websockets.sync.client import connect as ws_connect

    proc = subprocess.Popen(
        [sys.executable, "-m", "ixws", "echo-server", "--port", "0", "--tls",
         "--cert-file", pki.server.cert_file, "--key-file", pki.server.key_file],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.match(r"^listening on wss://127\.0\.0\.1:(\d+)$", line.strip())
        assert m, (line, proc.poll())
        port = int(m.group(1))
        with ws_connect(f"wss://127.0.0.1:{port}/", ssl=_client_context(pki), open_timeout=10) as ws:
            ws.send("cli")
            assert ws.recv(timeout=10) == "cli"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_cli_echo_server_tls_needs_cert():
    import subprocess

    res = subprocess.run([sys.executable, "-m", "ixws", "echo-server", "--port", "0", "--tls"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "--cert-file" in res.stderr
