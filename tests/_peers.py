"""Helpers for the interop and scale tests: event recording, hand-made
RFC 6455 framing over plain sockets, and peer servers running in threads.

Everything here waits with a deadline; nothing sleeps blindly.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import os
import queue
import socket
import struct
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

MIB = 1024 * 1024


# ------------------------------------------------------------------ waiting


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Polls predicate until it returns a truthy value or the deadline passes.

    Returns the last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Recorder:
    """A `method` callback that records every ixws event.

    on_event(ev) may be given to react (e.g. echo) before the event is recorded.
    """

    def __init__(self, on_event: Optional[Callable[[Any], None]] = None) -> None:
        self.on_event = on_event
        self.events: List[Any] = []
        self._cond = threading.Condition()

    def __call__(self, ev: Any) -> None:
        if self.on_event is not None:
            self.on_event(ev)
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()

    def of(self, kind: str, client: Optional[int] = None) -> List[Any]:
        with self._cond:
            return [e for e in self.events
                    if e.type == kind and (client is None or e.client == client)]

    def wait_for(self, kind: str, timeout: float = 5.0,
                 pred: Optional[Callable[[Any], bool]] = None, count: int = 1) -> List[Any]:
        """Waits until `count` events of `kind` (matching pred) were recorded.

        Returns the matching events; raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout

        def matching() -> List[Any]:
            return [e for e in self.events if e.type == kind and (pred is None or pred(e))]

        with self._cond:
            while True:
                found = matching()
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {count} {kind!r} event(s); "
                        f"recorded: {[repr(e) for e in self.events][-20:]}")
                self._cond.wait(left)


# ----------------------------------------------------------- frame helpers


def make_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key: str) -> str:
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def upgrade_request(host: str, port: int, path: str = "/", key: Optional[str] = None,
                    extra: str = "") -> Tuple[bytes, str]:
    key = key or make_key()
    req = (f"GET {path} HTTP/1.1\r\n"
           f"Host: {host}:{port}\r\n"
           "Upgrade: websocket\r\n"
           "Connection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\n"
           "Sec-WebSocket-Version: 13\r\n"
           f"{extra}"
           "\r\n")
    return req.encode("ascii"), key


def xor_mask(payload: bytes, mask: bytes) -> bytes:
    """Masks/unmasks payload with a 4-byte key (big-int XOR, fast enough for MiBs)."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def build_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True,
                rsv: int = 0, mask_key: Optional[bytes] = None) -> bytes:
    """One RFC 6455 frame. rsv is the 3-bit RSV1..RSV3 field (4 = RSV1, 2 = RSV2, 1 = RSV3)."""
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return head + key + xor_mask(payload, key)
    return head + payload


def close_payload(code: Optional[int], reason: str = "") -> bytes:
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


def parse_close(payload: bytes) -> Tuple[Optional[int], str]:
    if len(payload) < 2:
        return None, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "masked", "payload")

    def __init__(self, fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes) -> None:
        self.fin, self.rsv, self.opcode, self.masked, self.payload = fin, rsv, opcode, masked, payload

    def __repr__(self) -> str:
        return (f"<Frame op={self.opcode:#x} fin={self.fin} rsv={self.rsv} masked={self.masked} "
                f"len={len(self.payload)}>")


def try_parse_frame(buf: bytearray) -> Optional[Frame]:
    """Parses and removes one frame from the front of buf, or returns None."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n = struct.unpack_from("!H", buf, 2)[0]
        pos = 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n = struct.unpack_from("!Q", buf, 2)[0]
        pos = 10
    masked = bool(b1 & 0x80)
    key = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        key = bytes(buf[pos:pos + 4])
        pos += 4
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos:pos + n])
    del buf[:pos + n]
    if masked:
        payload = xor_mask(payload, key)
    return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, payload)


class RawConn:
    """A blocking socket speaking hand-made WebSocket frames (client role by default)."""

    def __init__(self, sock: socket.socket, leftover: bytes = b"", mask: bool = True) -> None:
        self.sock = sock
        self.buf = bytearray(leftover)
        self.mask = mask
        self.eof = False

    @classmethod
    def connect(cls, host: str, port: int, path: str = "/", timeout: float = 5.0) -> "RawConn":
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            req, key = upgrade_request(host, port, path)
            sock.sendall(req)
            head, rest = read_http_head(sock, timeout)
            status_line = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status_line + b" ":
                raise AssertionError(f"upgrade refused: {head!r}")
            headers = parse_headers(head)
            if headers.get("sec-websocket-accept") != accept_for(key):
                raise AssertionError(f"bad Sec-WebSocket-Accept in {head!r}")
        except BaseException:
            sock.close()
            raise
        return cls(sock, rest)

    # Bound on one sendall(): recv_frame() leaves the socket with whatever was
    # left of its own deadline (possibly milliseconds), too short for a large echo.
    SEND_TIMEOUT = 30.0

    def send_frame(self, opcode: int, payload: bytes = b"", **kw: Any) -> None:
        kw.setdefault("mask", self.mask)
        self.send_raw(build_frame(opcode, payload, **kw))

    def send_raw(self, data: bytes) -> None:
        self.sock.settimeout(self.SEND_TIMEOUT)
        self.sock.sendall(data)

    def recv_frame(self, timeout: float = 5.0) -> Optional[Frame]:
        """Next frame, or None at EOF/connection reset. Raises socket.timeout at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            frame = try_parse_frame(self.buf)
            if frame is not None:
                return frame
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no complete frame within {timeout}s (have {len(self.buf)} bytes)")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.eof = True
            else:
                self.buf += chunk

    def recv_message(self, timeout: float = 10.0) -> Tuple[int, bytes]:
        """Reassembles one data message (answers nothing; skips pongs). Returns (opcode, payload)."""
        deadline = time.monotonic() + timeout
        opcode = None
        parts: List[bytes] = []
        while True:
            frame = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if frame is None:
                raise AssertionError("connection closed while waiting for a message")
            if frame.opcode in (OP_PING, OP_PONG):
                continue
            if frame.opcode == OP_CLOSE:
                raise AssertionError(f"close frame {parse_close(frame.payload)} while waiting for a message")
            if opcode is None:
                opcode = frame.opcode
            parts.append(frame.payload)
            if frame.fin:
                return opcode, b"".join(parts)

    def expect_close(self, timeout: float = 5.0) -> Tuple[Optional[int], str]:
        """Reads until a close frame arrives (data frames are skipped). Returns (code, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if frame is None:
                raise AssertionError("EOF without a close frame")
            if frame.opcode == OP_CLOSE:
                return parse_close(frame.payload)

    def wait_eof(self, timeout: float = 5.0) -> bool:
        """True if the peer closed the TCP connection within timeout (frames are discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self.recv_frame(max(0.01, deadline - time.monotonic()))
            except socket.timeout:
                return False
            if frame is None:
                return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def read_http_head(sock: socket.socket, timeout: float = 5.0) -> Tuple[bytes, bytes]:
    """Reads up to and including the blank line. Returns (head, bytes after it)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"no complete HTTP head within {timeout}s: {buf!r}")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"EOF before the end of the HTTP head: {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def read_until_eof(sock: socket.socket, timeout: float = 5.0) -> Tuple[bytes, bool]:
    """Reads everything until EOF (or reset). Returns (data, reached_eof)."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def parse_headers(head: bytes) -> Dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    out: Dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out


# ---------------------------------------------------- websockets server peer


class WebsocketsServer:
    """A `websockets` (asyncio) server on its own event loop in a thread.

    The default handler echoes every message. A text message "close:<code>:<reason>"
    makes the server close the connection with that code and reason. The request
    path and headers of each connection are recorded, as are close codes received.
    """

    def __init__(self, **serve_options: Any) -> None:
        """serve_options go to websockets' serve() (default compression=None)."""
        self.serve_options = {"compression": None, "max_size": None, "ping_interval": None}
        self.serve_options.update(serve_options)
        self.connections: "queue.Queue[Any]" = queue.Queue()
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.port = 0
        self.requests: "queue.Queue[Tuple[str, Dict[str, str]]]" = queue.Queue()
        self.closed: "queue.Queue[Tuple[Optional[int], str]]" = queue.Queue()
        self._ready = threading.Event()
        self._stop: Optional[asyncio.Future] = None
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    async def _handler(self, ws: Any) -> None:
        import websockets

        req = ws.request
        self.requests.put((req.path, {k.lower(): v for k, v in req.headers.raw_items()}))
        self.connections.put(ws)
        try:
            async for msg in ws:
                if isinstance(msg, str) and msg.startswith("close:"):
                    _, code, reason = msg.split(":", 2)
                    await ws.close(int(code), reason)
                    break
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            rcvd = ws.protocol.close_rcvd
            self.closed.put((rcvd.code, rcvd.reason) if rcvd is not None else (None, ""))

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.get_running_loop().create_future()
        async with serve(self._handler, "127.0.0.1", 0, **self.serve_options) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
        finally:
            self.loop.close()

    def start(self, timeout: float = 10.0) -> "WebsocketsServer":
        self._thread = threading.Thread(target=self._run, name="websockets-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError("websockets server did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop = self.loop
        if loop is not None and self._stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


# ------------------------------------------------------ hand-made echo peer


class TinyEchoServer:
    """A minimal WebSocket server over plain sockets (no library), one thread
    per connection. Echoes each data frame as it comes (same opcode and FIN,
    unmasked), answers pings, echoes close frames. A text message
    "close:<code>:<reason>" starts a server-initiated close. It records every
    frame it received (so the test can check that the client masks them).
    """

    MODES = ("echo", "masked", "bad-accept", "status-404", "unknown-extension", "bad-upgrade",
             "no-pong", "greet", "drop")

    def __init__(self, mode: str = "echo") -> None:
        """mode: "echo" (well-behaved); "masked" (masks the frames it sends);
        "bad-accept" (wrong Sec-WebSocket-Accept); "status-404"; "unknown-extension"
        (accepts with an extension nobody offered); "bad-upgrade" (Upgrade: h2c);
        "no-pong" (never answers pings); "greet" (a text frame "welcome" in the
        same write as the 101 answer); "drop" (closes TCP on the first data frame)."""
        assert mode in self.MODES, mode
        self.mode = mode
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.requests: "queue.Queue[bytes]" = queue.Queue()
        self.closes: "queue.Queue[Tuple[Optional[int], str]]" = queue.Queue()
        self.unmasked_frames = 0
        self.frames_seen = 0
        self._conns: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._stopping = threading.Event()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="tiny-echo", daemon=True)

    def start(self) -> "TinyEchoServer":
        self._accept_thread.start()
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._conns.append(sock)
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            head, rest = read_http_head(sock, 10.0)
            self.requests.put(head)
            key = parse_headers(head).get("sec-websocket-key", "")
            mode = self.mode
            if mode == "status-404":
                sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n"
                             b"Connection: close\r\n\r\nnot found")
                read_until_eof(sock, 5.0)
                return
            accept = accept_for(key if mode != "bad-accept" else key + "x")
            extra = ""
            if mode == "unknown-extension":
                extra = "Sec-WebSocket-Extensions: x-unknown-extension\r\n"
            upgrade = "h2c" if mode == "bad-upgrade" else "websocket"
            sock.sendall(("HTTP/1.1 101 Switching Protocols\r\n"
                          f"Upgrade: {upgrade}\r\n"
                          "Connection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept}\r\n"
                          "X-Tiny-Echo: yes\r\n"
                          f"{extra}"
                          "\r\n").encode("ascii")
                         + (build_frame(OP_TEXT, b"welcome", mask=False) if mode == "greet" else b""))
            conn = RawConn(sock, rest, mask=(mode == "masked"))
            closing = False
            while not self._stopping.is_set():
                try:
                    frame = conn.recv_frame(0.5)
                except socket.timeout:
                    continue
                if frame is None:
                    return
                self.frames_seen += 1
                if mode == "drop" and frame.opcode in (OP_TEXT, OP_BINARY):
                    return
                if not frame.masked:
                    self.unmasked_frames += 1
                if frame.opcode == OP_PING:
                    if mode != "no-pong":
                        conn.send_frame(OP_PONG, frame.payload)
                elif frame.opcode == OP_PONG:
                    pass
                elif frame.opcode == OP_CLOSE:
                    self.closes.put(parse_close(frame.payload))
                    if not closing:
                        conn.send_frame(OP_CLOSE, frame.payload)
                    return
                elif frame.opcode == OP_TEXT and frame.fin and frame.payload.startswith(b"close:"):
                    _, code, reason = frame.payload.decode().split(":", 2)
                    conn.send_frame(OP_CLOSE, close_payload(int(code), reason))
                    closing = True
                else:
                    conn.send_frame(frame.opcode, frame.payload, fin=frame.fin)
        except (OSError, AssertionError):
            return
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def stop(self) -> None:
        self._stopping.set()
        try:
            self.listener.close()
        except OSError:
            pass
        for s in list(self._conns):
            try:
                s.close()
            except OSError:
                pass
        self._accept_thread.join(5)
        for t in self._threads:
            t.join(5)
