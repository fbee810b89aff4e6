"""A loopback TCP <-> TLS relay for running plain-ws tools (kosoku) over wss.

TlsBridge("to_tls", target_port=P, context=client_ctx): accepts plain TCP and
relays each connection to a TLS server on 127.0.0.1:P.
TlsBridge("from_tls", target_port=P, context=server_ctx): accepts TLS and relays
each connection to a plain TCP server on 127.0.0.1:P.

The relay runs on an asyncio loop in its own thread (one thread drives each TLS
session, as OpenSSL requires). An EOF on the plain side is forwarded as a FIN; an
EOF on the TLS side ends the TLS session (asyncio cannot half-close TLS).
"""
from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Optional


class TlsBridge:
    def __init__(self, mode: str, target_port: int, context: ssl.SSLContext,
                 server_hostname: str = "localhost") -> None:
        assert mode in ("to_tls", "from_tls")
        self.mode = mode
        self.target_port = target_port
        self.context = context
        self.server_hostname = server_hostname
        self.port = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stopped: Optional[asyncio.Future] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="tls-bridge", daemon=True)

    def start(self, timeout: float = 10.0) -> "TlsBridge":
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError("TLS bridge did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: stopped.done() or stopped.set_result(None))
            except RuntimeError:
                pass
        self._thread.join(timeout)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.get_running_loop().create_future()
        server_ssl = self.context if self.mode == "from_tls" else None
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=server_ssl, limit=1 << 20)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopped

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.mode == "to_tls":
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self.target_port, ssl=self.context, server_hostname=self.server_hostname,
                    limit=1 << 20)
            else:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port, limit=1 << 20)
        except (OSError, ssl.SSLError):
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(256 * 1024)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        try:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (OSError, RuntimeError):
            pass
