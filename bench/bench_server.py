"""Echo servers under test, one per library: ``python bench_server.py LIB PORT [--deflate]``.

Every server echoes each data message back to its sender with the same type.
A text message "!bcast COUNT SIZE" makes the server broadcast COUNT binary
messages of SIZE bytes to every connected client (S4), the way a user of that
library would. Prints "READY" once listening; runs until killed.
"""
from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
import threading


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def ready() -> None:
    print("READY", flush=True)


def parse_bcast(text: str):
    _, count, size = text.split()
    return int(count), bytes(int(size))


# ------------------------------------------------------------------- ixws
def run_ixws(port: int, deflate: bool) -> None:
    import ixws

    server = None

    def on_event(ev):  # what a user writes: a Python callback that echoes
        if ev.type == "message":
            data = ev.data
            if data.__class__ is str and data.startswith("!bcast"):
                count, payload = parse_bcast(data)
                for _ in range(count):
                    server.send(payload)
                return
            server.send(data, clients=[ev.client])

    opts = {"port": port, "host": "127.0.0.1", "method": on_event, "maxConnections": 20000,
            "backlog": 1024}
    if deflate:
        opts["perMessageDeflate"] = True
    else:
        opts["disablePerMessageDeflate"] = True
    server = ixws.Server(opts)
    res = server.start()
    if not res["success"]:
        sys.exit(f"ixws server: {res}")
    ready()
    threading.Event().wait()


# -------------------------------------------------------------- websockets
async def websockets_main(port: int, deflate: bool) -> None:
    from websockets.asyncio.server import broadcast, serve

    async def handler(ws):
        async for msg in ws:
            if msg.__class__ is str and msg.startswith("!bcast"):
                count, payload = parse_bcast(msg)
                for _ in range(count):
                    broadcast(server.connections, payload)
                continue
            await ws.send(msg)

    server = await serve(handler, "127.0.0.1", port, max_size=None, max_queue=None,
                         compression="deflate" if deflate else None, ping_interval=None,
                         backlog=1024)
    ready()
    await asyncio.Future()


# ------------------------------------------------------------------ picows
async def picows_main(port: int, deflate: bool) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    if deflate:
        sys.exit("picows has no permessage-deflate")
    clients = set()

    class Echo(WSListener):
        def on_ws_connected(self, transport):
            self.t = transport
            clients.add(transport)

        def on_ws_disconnected(self, transport):
            clients.discard(transport)

        def on_ws_frame(self, transport, frame):
            mt = frame.msg_type
            if mt is WSMsgType.TEXT:
                text = frame.get_payload_as_utf8_text()
                if text.startswith("!bcast"):
                    count, payload = parse_bcast(text)
                    for _ in range(count):
                        for c in clients:
                            c.send(WSMsgType.BINARY, payload)
                    return
                transport.send(WSMsgType.TEXT, frame.get_payload_as_memoryview())
            elif mt is WSMsgType.BINARY:
                transport.send(WSMsgType.BINARY, frame.get_payload_as_memoryview())
            elif mt is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

    server = await ws_create_server(lambda req: Echo(), "127.0.0.1", port, backlog=1024,
                                    max_frame_size=64 * 1024 * 1024)
    ready()
    await server.serve_forever()


# ----------------------------------------------------------------- aiohttp
async def aiohttp_main(port: int, deflate: bool) -> None:
    from aiohttp import WSMsgType, web

    conns = set()

    async def handler(request):
        ws = web.WebSocketResponse(max_msg_size=0, compress=deflate, autoping=True)
        await ws.prepare(request)
        conns.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if msg.data.startswith("!bcast"):
                        count, payload = parse_bcast(msg.data)
                        for _ in range(count):
                            for c in list(conns):
                                await c.send_bytes(payload)
                        continue
                    await ws.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
        finally:
            conns.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    ready()
    await asyncio.Future()


ASYNC = {"websockets": websockets_main, "picows": picows_main, "aiohttp": aiohttp_main}


def main() -> None:
    lib, port = sys.argv[1], int(sys.argv[2])
    deflate = "--deflate" in sys.argv
    raise_nofile()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    if lib == "ixws":
        run_ixws(port, deflate)
    elif lib in ASYNC:
        import uvloop

        uvloop.run(ASYNC[lib](port, deflate))
    else:
        sys.exit(f"no server for {lib}")


if __name__ == "__main__":
    main()
