"""permessage-deflate (RFC 7692) end to end: negotiation in both roles with the
`websockets` package (every combination of the parameters it supports), our
client with our server, hand-made peers for what libraries never send, the
per-message opt-out, wire sizes, and the inflation limit.

Payloads go from 0 bytes to 16 MiB, text and binary. The 16 MiB ones run for a
few parameter sets only (they take most of the time); every other set sends the
medium payloads twice, so context takeover is exercised across messages.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import resource
import socket
import threading
import zlib
from typing import Any, Dict, List, Optional, Tuple

import pytest

import ixws

try:
    from _peers import (MIB, OP_BINARY, OP_CONT, OP_TEXT, RawConn, Recorder, WebsocketsServer,
                        accept_for, build_frame, parse_headers, read_http_head, upgrade_request)
except ImportError:  # pragma: no cover
    from tests._peers import (MIB, OP_BINARY, OP_CONT, OP_TEXT, RawConn, Recorder, WebsocketsServer,
                              accept_for, build_frame, parse_headers, read_http_head, upgrade_request)

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory)

HOST = "127.0.0.1"
PMD = "permessage-deflate"


def json_text(size: int) -> str:
    rows = []
    total = 0
    i = 0
    while total < size:
        row = json.dumps({"id": i, "user": f"user{i % 97}", "active": i % 3 == 0,
                          "tags": ["a", "b", "\u00e9t\u00e9"], "score": (i * 7919) % 10007})
        rows.append(row)
        total += len(row) + 1
        i += 1
    return ("[" + ",".join(rows) + "]")[:size]


MEDIUM = [
    "",
    b"",
    "short",
    b"\x00\x01\x02",
    "h\u00e9llo w\u00f6rld \u20ac \U0001f600 " * 3000,  # multi-byte text, compressible
    json_text(64 * 1024),
    os.urandom(256 * 1024),                              # incompressible
    b"\x00" * MIB,
]


def big_payloads() -> List[Any]:
    return [json_text(16 * MIB), os.urandom(16 * MIB)]


def compressible(payload: Any) -> bool:
    return len(payload) >= 1000 and not (isinstance(payload, bytes) and len(set(payload[:4096])) > 200)


def wire_len(payload: Any) -> int:
    return len(payload.encode("utf-8")) if isinstance(payload, str) else len(payload)


def header(headers: Dict[str, str], name: str) -> str:
    lname = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lname), "")


# ------------------------------------------------------------------ fixtures


class EchoServer:
    """An ixws.Server that echoes and records its events and send results."""

    def __init__(self, **options: Any) -> None:
        self.sent: List[Dict[str, Any]] = []
        self.rec = Recorder(self._on_event)
        opts = {"host": HOST, "port": 0, "method": self.rec}
        opts.update(options)
        self.server = ixws.Server(opts)
        assert self.server.start()["success"]

    def _on_event(self, ev: Any) -> None:
        if ev.type == "message":
            self.sent.extend(self.server.send(ev.data, clients=[ev.client]))

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.server.config['port']}/"

    @property
    def port(self) -> int:
        return self.server.config["port"]

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def echo_server():
    made: List[EchoServer] = []

    def factory(**options: Any) -> EchoServer:
        s = EchoServer(**options)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


@pytest.fixture
def make_client():
    made: List[Any] = []

    def factory(url: str, **options: Any) -> Tuple[Any, Recorder]:
        rec = Recorder()
        opts = {"url": url, "method": rec, "enableAutomaticReconnection": False}
        opts.update(options)
        client = ixws.Client(opts)
        made.append(client)
        return client, rec

    yield factory
    for client in made:
        client.close()


def run_async(coro: Any, timeout: float = 120.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def websockets_round_trips(url: str, extensions: Any, payloads: List[Any]) -> str:
    """Connects with websockets (our server echoes), sends every payload and
    checks the echo. Returns the negotiated Sec-WebSocket-Extensions."""
    kw: Dict[str, Any] = {"compression": None, "extensions": extensions} if extensions is not None else {
        "compression": "deflate"}
    async with ws_connect(url, max_size=None, ping_interval=None, open_timeout=10, close_timeout=10,
                          **kw) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        for payload in payloads:
            await ws.send(payload)
            got = await asyncio.wait_for(ws.recv(), 60)
            assert type(got) is type(payload), (type(got), type(payload))
            assert len(got) == len(payload) and got == payload
        return ext


def check_server_events(server: EchoServer, payloads: List[Any], negotiated: bool) -> None:
    msgs = server.rec.wait_for("message", count=len(payloads), timeout=60)
    assert len(msgs) == len(payloads)
    for ev, payload in zip(msgs, payloads):
        assert ev.data == payload and ev.decompressionError is False
        if negotiated and compressible(payload):
            assert ev.wireSize < wire_len(payload)  # it arrived compressed
        if not negotiated:
            assert ev.wireSize == wire_len(payload)
    results = server.sent[-len(payloads):]
    for res, payload in zip(results, payloads):
        assert res["success"] and not res["compressionError"] and res["payloadSize"] == wire_len(payload)
        if negotiated and compressible(payload):
            assert res["wireSize"] < res["payloadSize"]  # the echo went out compressed
        if not negotiated:
            assert res["wireSize"] == res["payloadSize"]


# ============================================ websockets client -> our server


def _client_factories() -> List[Any]:
    """Every combination of the four parameters ClientPerMessageDeflateFactory
    supports: each no_context_takeover flag on/off, server_max_window_bits
    absent / a value / 8, client_max_window_bits absent / bare / a value; the
    values rotate through 9..15 so every size is used."""
    params = []
    values = itertools.cycle(range(9, 16))
    for snct, cnct, sbits, cbits in itertools.product([False, True], [False, True],
                                                      ["none", "value", "eight"],
                                                      ["none", "bare", "value"]):
        kw: Dict[str, Any] = {"server_no_context_takeover": snct, "client_no_context_takeover": cnct}
        kw["server_max_window_bits"] = {"none": None, "value": next(values), "eight": 8}[sbits]
        kw["client_max_window_bits"] = {"none": None, "bare": True, "value": next(values)}[cbits]
        params.append(pytest.param(kw, id="-".join(f"{k.split('_')[0][0]}{k.split('_')[1][0]}{v}"
                                                   for k, v in kw.items())))
    return params


# Upstream uses the client's window/context settings for its own compressor and
# answers 9 to an offer of 8 (defects 1 and 3).
@pytest.mark.engine_extension
@pytest.mark.parametrize("factory_kw", _client_factories())
def test_websockets_client_every_parameter_combination(echo_server, factory_kw):
    server = echo_server()
    payloads = MEDIUM * 2  # twice: context takeover across messages
    ext = run_async(websockets_round_trips(server.url, [ClientPerMessageDeflateFactory(**factory_kw)], payloads))
    if factory_kw["server_max_window_bits"] == 8:
        # We cannot compress with a 256-byte window: that offer is declined
        # (upstream answers 9, which the RFC forbids).
        assert ext == ""
    else:
        assert ext.startswith(PMD), ext
        if factory_kw["server_no_context_takeover"]:
            assert "server_no_context_takeover" in ext
        if factory_kw["server_max_window_bits"]:
            assert f"server_max_window_bits={factory_kw['server_max_window_bits']}" in ext
    check_server_events(server, payloads, negotiated=bool(ext))


@pytest.mark.parametrize("factory_kw", [
    pytest.param(None, id="websockets-default"),
    pytest.param({"server_no_context_takeover": True, "client_no_context_takeover": True,
                  "server_max_window_bits": 9, "client_max_window_bits": 9}, id="all-parameters-9",
                 marks=pytest.mark.engine_extension),
])
def test_websockets_client_16mib(echo_server, factory_kw):
    server = echo_server()
    payloads = big_payloads() + MEDIUM[:3]
    extensions = None if factory_kw is None else [ClientPerMessageDeflateFactory(**factory_kw)]
    ext = run_async(websockets_round_trips(server.url, extensions, payloads), 300)
    assert ext.startswith(PMD)
    check_server_events(server, payloads, negotiated=True)


@pytest.mark.engine_extension
@pytest.mark.parametrize("policy,offer_kw,expected", [
    ({"serverMaxWindowBits": 10}, {}, "permessage-deflate; server_max_window_bits=10"),
    ({"serverMaxWindowBits": 10}, {"server_max_window_bits": 12}, "permessage-deflate; server_max_window_bits=10"),
    ({"serverMaxWindowBits": 12}, {"server_max_window_bits": 9}, "permessage-deflate; server_max_window_bits=9"),
    ({"serverNoContextTakeover": True}, {}, "permessage-deflate; server_no_context_takeover"),
    ({"clientNoContextTakeover": True}, {}, "permessage-deflate; client_no_context_takeover"),
    ({"clientMaxWindowBits": 10}, {}, "permessage-deflate; client_max_window_bits=10"),
    ({"clientMaxWindowBits": 10}, {"client_max_window_bits": None}, "permessage-deflate"),
    ({"clientMaxWindowBits": 12}, {"client_max_window_bits": 9}, "permessage-deflate"),
    ({"serverNoContextTakeover": True, "clientNoContextTakeover": True, "serverMaxWindowBits": 9,
      "clientMaxWindowBits": 11}, {},
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; "
     "client_max_window_bits=11"),
])
def test_server_policy(echo_server, policy, offer_kw, expected):
    """The server's own limits (an engine extension) shape its answer, and the
    connection then works with them in both directions."""
    server = echo_server(perMessageDeflate=policy)
    assert server.server.config["perMessageDeflate"]["enabled"] is True
    payloads = MEDIUM * 2
    ext = run_async(websockets_round_trips(server.url, [ClientPerMessageDeflateFactory(**offer_kw)], payloads))
    assert ext == expected
    check_server_events(server, payloads, negotiated=True)


@pytest.mark.parametrize("options", [
    {"disablePerMessageDeflate": True},
    {"perMessageDeflate": {"enabled": False}},
    {"perMessageDeflate": False},
])
def test_server_declines_when_disabled(echo_server, options):
    server = echo_server(**options)
    ext = run_async(websockets_round_trips(server.url, None, MEDIUM))
    assert ext == ""
    check_server_events(server, MEDIUM, negotiated=False)


# ============================================ our client -> websockets server


def _our_client_options() -> List[Any]:
    """Every combination of our client's four settings: each flag on/off, each
    window 15 / a smaller value (rotating) / 8."""
    params = []
    values = itertools.cycle(range(9, 15))
    for cnct, snct, cbits, sbits in itertools.product([False, True], [False, True],
                                                      ["15", "value", "eight"], ["15", "value", "eight"]):
        opts = {"clientNoContextTakeover": cnct, "serverNoContextTakeover": snct,
                "clientMaxWindowBits": {"15": 15, "value": next(values), "eight": 8}[cbits],
                "serverMaxWindowBits": {"15": 15, "value": next(values), "eight": 8}[sbits]}
        params.append(pytest.param(opts, id="c{clientMaxWindowBits}{n1}-s{serverMaxWindowBits}{n2}".format(
            n1="nct" if cnct else "", n2="nct" if snct else "", **opts)))
    return params


def our_client_round_trips(make_client: Any, url: str, payloads: List[Any], **options: Any) -> str:
    client, rec = make_client(url, **options)
    res = client.start(timeout=10)
    assert res["success"] is True, res
    ext = header(res["headers"], "Sec-WebSocket-Extensions")
    for i, payload in enumerate(payloads):
        sent = client.send(payload)
        assert sent["success"] is True and sent["compressionError"] is False
        assert sent["payloadSize"] == wire_len(payload)
        if ext and compressible(payload):
            assert sent["wireSize"] < sent["payloadSize"]
        if not ext:
            assert sent["wireSize"] == sent["payloadSize"]
        got = rec.wait_for("message", count=i + 1, timeout=60)[i]
        assert got.data == payload and not got.decompressionError
        assert got.binary == isinstance(payload, bytes)
        if ext and compressible(payload):
            assert got.wireSize < wire_len(payload)
    client.stop()
    return ext


@pytest.fixture(scope="module")
def websockets_deflate_server():
    peer = WebsocketsServer(compression="deflate").start()
    yield peer
    peer.stop()


@pytest.mark.parametrize("options", _our_client_options())
def test_our_client_every_parameter_combination(make_client, websockets_deflate_server, options):
    ext = our_client_round_trips(make_client, websockets_deflate_server.url + "/", MEDIUM * 2,
                                 perMessageDeflate=options)
    if options["serverMaxWindowBits"] == 8:
        assert ext == ""  # websockets cannot compress with 8 bits and declines
        return
    assert ext.startswith(PMD), ext
    if options["serverNoContextTakeover"]:
        assert "server_no_context_takeover" in ext


@pytest.mark.parametrize("server_factory", [
    pytest.param({}, id="defaults"),
    pytest.param({"server_no_context_takeover": True, "client_no_context_takeover": True}, id="nct"),
    pytest.param({"server_max_window_bits": 9, "client_max_window_bits": 9}, id="bits-9"),
    pytest.param({"server_max_window_bits": 11, "client_max_window_bits": 10, "client_no_context_takeover": True},
                 id="mixed"),
])
def test_our_client_with_websockets_server_settings(make_client, server_factory):
    peer = WebsocketsServer(extensions=[ServerPerMessageDeflateFactory(**server_factory)]).start()
    try:
        ext = our_client_round_trips(make_client, peer.url + "/", MEDIUM * 2, perMessageDeflate=True)
        assert ext.startswith(PMD)
    finally:
        peer.stop()


def test_our_client_16mib(make_client, websockets_deflate_server):
    ext = our_client_round_trips(make_client, websockets_deflate_server.url + "/", big_payloads() + MEDIUM[:3],
                                 perMessageDeflate={"clientMaxWindowBits": 9, "serverMaxWindowBits": 10,
                                                    "clientNoContextTakeover": True})
    assert ext.startswith(PMD)


def test_our_client_declined(make_client):
    peer = WebsocketsServer().start()  # compression=None: declines every offer
    try:
        ext = our_client_round_trips(make_client, peer.url + "/", MEDIUM, perMessageDeflate=True)
        assert ext == ""
    finally:
        peer.stop()


# ============================================ our client -> our server


@pytest.mark.engine_extension
@pytest.mark.parametrize("client_options,server_policy", [
    ({}, {}),
    ({"clientMaxWindowBits": 9, "serverMaxWindowBits": 10}, {}),
    ({"clientNoContextTakeover": True, "serverNoContextTakeover": True}, {}),
    ({}, {"serverMaxWindowBits": 9, "clientMaxWindowBits": 9, "serverNoContextTakeover": True,
          "clientNoContextTakeover": True}),
    ({"clientMaxWindowBits": 12, "serverMaxWindowBits": 11}, {"serverMaxWindowBits": 13, "clientMaxWindowBits": 10}),
])
def test_our_client_and_server(make_client, echo_server, client_options, server_policy):
    server = echo_server(perMessageDeflate=server_policy)
    payloads = MEDIUM * 2
    ext = our_client_round_trips(make_client, server.url, payloads, perMessageDeflate=client_options)
    assert ext.startswith(PMD)
    check_server_events(server, payloads, negotiated=True)


def test_our_client_and_server_16mib(make_client, echo_server):
    server = echo_server()
    payloads = big_payloads()
    ext = our_client_round_trips(make_client, server.url, payloads, perMessageDeflate=True)
    assert ext.startswith(PMD)
    check_server_events(server, payloads, negotiated=True)


# ============================================ the per-message opt-out


class RawDeflatePeer:
    """A hand-made server that accepts one client with a given extension answer
    and records the frames the client sends."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.listener = socket.socket()
        self.listener.bind((HOST, 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.conn: Optional[RawConn] = None
        self.request_headers: Dict[str, str] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(10)
        try:
            sock, _ = self.listener.accept()
        except OSError:
            self._ready.set()
            return
        head, rest = read_http_head(sock, 10)
        self.request_headers = parse_headers(head)
        extra = f"Sec-WebSocket-Extensions: {self.answer}\r\n" if self.answer else ""
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_for(self.request_headers['sec-websocket-key'])}\r\n"
                      f"{extra}\r\n").encode("ascii"))
        self.conn = RawConn(sock, rest, mask=False)
        self._ready.set()

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/"

    def wait(self) -> RawConn:
        assert self._ready.wait(15)
        assert self.conn is not None
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()
        self._thread.join(5)


def inflate(payload: bytes, wbits: int = 15) -> bytes:
    d = zlib.decompressobj(wbits=-wbits)
    return d.decompress(payload + b"\x00\x00\xff\xff")


def deflate(data: bytes, wbits: int = 15) -> bytes:
    c = zlib.compressobj(wbits=-wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


@pytest.mark.engine_extension
def test_client_send_compress_false(make_client):
    peer = RawDeflatePeer("permessage-deflate")
    try:
        client, _ = make_client(peer.url, perMessageDeflate=True)
        assert client.start(timeout=10)["success"]
        conn = peer.wait()
        assert peer.request_headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15")
        text = "compress me " * 1000
        res = client.send(text)
        frame = conn.recv_frame(10)
        assert frame.rsv == 4 and frame.opcode == OP_TEXT
        assert res["wireSize"] == len(frame.payload) < res["payloadSize"] == len(text)
        assert inflate(frame.payload) == text.encode()
        res = client.send(text.encode(), compress=False)
        frame = conn.recv_frame(10)
        assert frame.rsv == 0 and frame.opcode == OP_BINARY and frame.payload == text.encode()
        assert res == {"success": True, "compressionError": False, "payloadSize": len(text), "wireSize": len(text)}
        with pytest.raises(TypeError):
            client.send("x", compress=1)
    finally:
        peer.close()


def raw_deflate_client(port: int, offer: str = "permessage-deflate") -> Tuple[RawConn, Dict[str, str]]:
    sock = socket.create_connection((HOST, port), timeout=10)
    req, key = upgrade_request(HOST, port, "/", extra=f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else "")
    sock.sendall(req)
    head, rest = read_http_head(sock, 10)
    assert b" 101 " in head.split(b"\r\n", 1)[0] + b" "
    headers = parse_headers(head)
    assert headers["sec-websocket-accept"] == accept_for(key)
    return RawConn(sock, rest), headers


@pytest.mark.engine_extension
def test_server_send_compress_false(echo_server):
    server = echo_server()
    conn, headers = raw_deflate_client(server.port)
    try:
        assert headers["sec-websocket-extensions"] == "permessage-deflate"
        server.rec.wait_for("open")
        cid = server.server.clients()[0]
        text = "compress me " * 1000
        [res] = server.server.send(text, clients=[cid])
        frame = conn.recv_frame(10)
        assert frame.rsv == 4 and frame.opcode == OP_TEXT and not frame.masked
        assert res["wireSize"] == len(frame.payload) < res["payloadSize"]
        assert inflate(frame.payload) == text.encode()
        [res] = server.server.send(text, clients=[cid], compress=False)
        frame = conn.recv_frame(10)
        assert frame.rsv == 0 and frame.payload == text.encode()
        assert res["wireSize"] == res["payloadSize"] == len(text)
        # The peer's uncompressed messages are fine too; wireSize is what arrived.
        payload = deflate(text.encode())
        conn.send_frame(OP_TEXT, payload, rsv=4)
        conn.send_frame(OP_TEXT, b"plain")
        a, b = server.rec.wait_for("message", count=2)
        assert (a.data, a.wireSize) == (text, len(payload))
        assert (b.data, b.wireSize) == ("plain", 5)
    finally:
        conn.close()


# ============================================ hand-made peers: what libraries never send


@pytest.mark.engine_extension  # upstream merges offers and clamps values (defect 3)
@pytest.mark.parametrize("offer,answer", [
    ("permessage-deflate; server_max_window_bits=7", None),
    ("permessage-deflate; server_max_window_bits=16", None),
    ("permessage-deflate; client_max_window_bits=abc", None),
    ("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", None),
    ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
    ("permessage-deflate; server_no_context_takeover=yes", None),
    ("permessage-deflate; x-unknown", None),
    ("permessage-deflate; server_max_window_bits=8", None),
    ("x-webkit-deflate-frame", None),
    ("permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=9",
     "permessage-deflate; server_max_window_bits=9"),
    ("x-foo, permessage-deflate; client_max_window_bits; server_no_context_takeover",
     "permessage-deflate; server_no_context_takeover"),
])
def test_server_declines_or_picks_offers(echo_server, offer, answer):
    """Malformed offers are declined (the handshake still succeeds); of several
    offers the first acceptable one is answered (upstream merges them)."""
    server = echo_server()
    conn, headers = raw_deflate_client(server.port, offer)
    try:
        assert headers.get("sec-websocket-extensions") == answer
        if answer is None:
            conn.send_frame(OP_TEXT, b"still fine")
            assert conn.recv_message(10) == (OP_TEXT, b"still fine")
    finally:
        conn.close()


@pytest.mark.engine_extension  # upstream accepts any answer (defect 34)
@pytest.mark.parametrize("answer,reason", [
    ("permessage-deflate; client_max_window_bits=8", "client_max_window_bits=8 cannot be honoured"),
    ("permessage-deflate; server_max_window_bits=16", "invalid server_max_window_bits"),
    ("permessage-deflate; foo", "unknown parameter foo"),
    ("permessage-deflate, permessage-deflate", "more than one extension"),
    ("x-webkit-deflate-frame", "not offered"),
    ("permessage-deflate; client_max_window_bits", "needs a value"),
])
def test_client_rejects_answers_violating_its_offer(make_client, answer, reason):
    peer = RawDeflatePeer(answer)
    try:
        client, rec = make_client(peer.url, perMessageDeflate=True)
        res = client.start(timeout=10)
        assert res["success"] is False
        assert reason in res["errorStr"] and "Sec-WebSocket-Extensions" in res["errorStr"]
        assert rec.wait_for("error")[0].reason == res["errorStr"]
    finally:
        peer.close()


@pytest.mark.engine_extension
def test_client_rejects_answer_to_server_limit_it_did_not_get(make_client):
    peer = RawDeflatePeer("permessage-deflate; server_max_window_bits=12")
    try:
        client, _ = make_client(peer.url, perMessageDeflate={"serverMaxWindowBits": 10})
        res = client.start(timeout=10)
        assert res["success"] is False and "above the offered value" in res["errorStr"]
    finally:
        peer.close()


@pytest.mark.engine_extension  # defect 10
def test_rsv1_on_continuation_is_a_protocol_error(echo_server):
    server = echo_server()
    conn, _ = raw_deflate_client(server.port)
    try:
        payload = deflate(b"hello hello hello")
        conn.send_frame(OP_TEXT, payload[:3], fin=False, rsv=4)
        conn.send_frame(OP_CONT, payload[3:], rsv=4)
        assert conn.expect_close(10)[0] == 1002
    finally:
        conn.close()


@pytest.mark.engine_extension  # upstream delivers the partial data (defect 2)
def test_bad_compressed_data_closes_1007_without_delivering(echo_server):
    server = echo_server()
    conn, _ = raw_deflate_client(server.port)
    try:
        # 100000 valid bytes, then a block of the reserved type 11: nothing of the
        # message may reach the application.
        payload = deflate(b"x" * 100000) + b"\x00\x00\xff\xff" + b"\xff\xff"
        conn.send_frame(OP_BINARY, payload, rsv=4)
        assert conn.expect_close(10)[0] == 1007
        close = server.rec.wait_for("close")[0]
        assert close.code == 1007
        assert server.rec.of("message") == []
    finally:
        conn.close()


def test_inflated_text_must_be_utf8(echo_server):
    server = echo_server()
    conn, _ = raw_deflate_client(server.port)
    try:
        conn.send_frame(OP_TEXT, deflate(b"valid \xff invalid"), rsv=4)
        assert conn.expect_close(10)[0] == 1007
        assert server.rec.of("message") == []
    finally:
        conn.close()


@pytest.mark.engine_extension
def test_deflate_bomb_closes_1009_without_inflating_it(echo_server):
    """A ~4 MiB frame that inflates to 4 GiB: maxMessageSize applies to the
    inflated size, so the server closes with 1009 and never holds the data."""
    unit_src = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    zeros = bytes(MIB)
    unit = b"".join(unit_src.compress(zeros) for _ in range(64)) + unit_src.flush(zlib.Z_SYNC_FLUSH)
    bomb = (unit * 64)[:-4]  # 64 x 64 MiB of zeros
    assert len(bomb) < 8 * MIB
    server = echo_server(maxMessageSize=MIB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    conn, _ = raw_deflate_client(server.port)
    try:
        try:
            conn.send_frame(OP_BINARY, bomb, rsv=4)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before it read everything
        assert conn.expect_close(20)[0] == 1009
        close = server.rec.wait_for("close", timeout=20)[0]
        assert close.code == 1009
        assert server.rec.of("message") == []
    finally:
        conn.close()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 512, f"peak memory grew by {grown_mib:.0f} MiB"


@pytest.mark.engine_extension
def test_inflated_size_limit_is_exact(echo_server):
    server = echo_server(maxMessageSize=100000)
    conn, _ = raw_deflate_client(server.port)
    try:
        conn.send_frame(OP_BINARY, deflate(b"a" * 100000), rsv=4)
        echo = conn.recv_frame(10)
        assert echo.rsv == 4 and inflate(echo.payload) == b"a" * 100000
        conn.send_frame(OP_BINARY, deflate(b"a" * 100001), rsv=4)
        assert conn.expect_close(10)[0] == 1009
    finally:
        conn.close()


@pytest.mark.engine_extension  # defect 1
def test_window_bits_are_per_role(echo_server):
    """Upstream defect 1: with server_max_window_bits=9 offered, the server must
    inflate the client's data with the client's window (15 here) and compress
    its own with 9. A message far above 16 KiB with long-distance matches shows
    both (upstream truncates the echo at 16384 bytes)."""
    server = echo_server()
    conn, headers = raw_deflate_client(server.port, "permessage-deflate; server_max_window_bits=9")
    try:
        assert headers["sec-websocket-extensions"] == "permessage-deflate; server_max_window_bits=9"
        unit = os.urandom(3000)
        data = unit * 40  # matches 3000 bytes back: beyond a 512-byte window
        conn.send_frame(OP_BINARY, deflate(data, 15), rsv=4)
        frame = conn.recv_frame(10)
        assert frame.rsv == 4
        assert inflate(frame.payload, 9) == data  # a 9-bit inflater can read the echo
    finally:
        conn.close()


@pytest.mark.engine_extension
def test_broadcast_to_mixed_deflate_and_plain_clients(make_client):
    """A broadcast is framed once for plain connections; connections with deflate
    compress it themselves (a shared uncompressed frame must never reach them)."""
    srec = Recorder()
    server = ixws.Server({"port": 0, "host": HOST, "method": srec})
    try:
        assert server.start()["success"]
        url = f"ws://{HOST}:{server.config['port']}/"
        deflated, drec = make_client(url, perMessageDeflate={"enabled": True})
        plain, prec = make_client(url, disablePerMessageDeflate=True)
        for client in (deflated, plain):
            assert client.start(timeout=10)["success"]
        srec.wait_for("open", count=2)
        payload = json_text(20000)
        results = server.send(payload)
        assert len(results) == 2 and all(r["success"] for r in results)
        wire = sorted(r["wireSize"] for r in results)
        assert wire[0] < len(payload.encode()) == wire[1]
        for rec in (drec, prec):
            assert rec.wait_for("message", timeout=10)[0].data == payload
        assert drec.of("message")[0].wireSize < len(payload.encode())
        assert prec.of("message")[0].wireSize == len(payload.encode())
    finally:
        server.close()
