"""Load-generating clients, one per library:
``python bench_client.py LIB SCENARIO URL PARAMS_JSON`` prints one JSON result line.

Scenarios (PARAMS: n = messages/connections, size, inflight, concurrency):
  pingpong   one message in flight: {"rate": round trips/s, "p50_us", "p99_us"}
  pipelined  `inflight` messages in flight: {"rate": msgs/s}
  large      one large binary in flight: {"rate": msgs/s, "mb_per_s"}
  handshakes open+close n connections, `concurrency` at once: {"rate": conns/s}
  deflate    64 KiB JSON-like text, permessage-deflate on: {"rate": msgs/s}
  fanout     (picows) `conns` connections, ask for `n` broadcasts: {"rate": deliveries/s}
  idle       (picows) hold n connections, print HELD k, wait for stdin to close
Each library uses its fastest documented setup (uvloop for asyncio).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import sys
import threading
import time

perf = time.perf_counter


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def json_like(size: int) -> str:
    rnd = random.Random(7)
    items, total = [], 2
    while total < size:
        rec = json.dumps({"id": len(items), "user": f"user{rnd.randrange(1000)}",
                          "price": round(rnd.uniform(1, 500), 2), "qty": rnd.randrange(100),
                          "tags": ["alpha", "beta", "gamma"][: rnd.randrange(1, 4)],
                          "active": rnd.random() < 0.5})
        items.append(rec)
        total += len(rec) + 1
    return ("[" + ",".join(items) + "]")[:size - 1] + "]"


def payload_for(scenario: str, p: dict):
    if scenario == "pingpong":
        return "x" * p.get("size", 32)
    if scenario == "deflate":
        return json_like(p.get("size", 65536))
    return os.urandom(p["size"])


def summary(n: int, elapsed: float, lat=None, size=None) -> dict:
    out = {"rate": n / elapsed, "elapsed": elapsed}
    if lat:
        lat.sort()
        out["p50_us"] = lat[len(lat) // 2] * 1e6
        out["p99_us"] = lat[len(lat) * 99 // 100] * 1e6
    if size:
        out["mb_per_s"] = n * size / elapsed / 1e6
    return out


# ------------------------------------------------------------------- ixws
def ixws_client(scenario: str, url: str, p: dict) -> dict:
    import ixws

    deflate = scenario == "deflate"
    extra = {"perMessageDeflate": True} if deflate else {"disablePerMessageDeflate": True}
    if scenario == "handshakes":
        n, conc = p["n"], p["concurrency"]
        counter = iter(range(n))
        lock = threading.Lock()
        failures = []

        def worker():
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                c = ixws.Client(url=url, enable_automatic_reconnection=False, **extra)
                r = c.start(timeout=10)
                if not r["success"]:
                    failures.append(r)
                c.close()

        t0 = perf()
        threads = [threading.Thread(target=worker) for _ in range(conc)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out = summary(n, perf() - t0)
        out["failures"] = len(failures)
        return out

    n = p["n"]
    inflight = p.get("inflight", 1)
    msg = payload_for(scenario, p)
    done = threading.Event()
    lat = []
    state = {"sent": 0, "recv": 0, "t": 0.0, "wire": 0}
    client = None

    if inflight == 1:
        def on_event(ev):
            if ev.type == "message":
                if deflate:
                    state["wire"] += ev.wireSize
                now = perf()
                lat.append(now - state["t"])
                state["recv"] += 1
                if state["recv"] >= n:
                    done.set()
                    return
                state["t"] = perf()
                client.send(msg)
            elif ev.type in ("close", "error"):
                done.set()
    else:
        def on_event(ev):
            if ev.type == "message":
                state["recv"] += 1
                if state["sent"] < n:
                    state["sent"] += 1
                    client.send(msg)
                elif state["recv"] >= n:
                    done.set()
            elif ev.type in ("close", "error"):
                done.set()

    client = ixws.Client(url=url, method=on_event, enable_automatic_reconnection=False, **extra)
    r = client.start(timeout=10)
    if not r["success"]:
        sys.exit(f"ixws connect failed: {r}")
    t0 = perf()
    if inflight == 1:
        state["t"] = perf()
        client.send(msg)
    else:
        for _ in range(min(inflight, n)):
            state["sent"] += 1
            client.send(msg)
    done.wait(600)
    elapsed = perf() - t0
    client.close()
    if state["recv"] < n:
        sys.exit(f"ixws: only {state['recv']} of {n} echoes")
    out = summary(n, elapsed, lat if scenario == "pingpong" else None,
                  p.get("size") if scenario == "large" else None)
    if deflate:
        out["wire_bytes"] = state["wire"]  # payload bytes of the echoes as received (compressed)
    return out


# ------------------------------------------------------- asyncio (generic)
async def async_scenario(connect, scenario: str, p: dict) -> dict:
    """connect() -> (send coroutine fn, recv coroutine fn, close coroutine fn)."""
    if scenario == "handshakes":
        n, conc = p["n"], p["concurrency"]
        remaining = [n]

        async def worker():
            while remaining[0] > 0:
                remaining[0] -= 1
                _, _, close = await connect()
                await close()

        t0 = perf()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return summary(n, perf() - t0)

    n = p["n"]
    inflight = p.get("inflight", 1)
    msg = payload_for(scenario, p)
    send, recv, close = await connect()
    lat = []
    t0 = perf()
    if inflight == 1:
        for _ in range(n):
            s = perf()
            await send(msg)
            await recv()
            lat.append(perf() - s)
    else:
        sent = 0
        for _ in range(min(inflight, n)):
            await send(msg)
            sent += 1
        for _ in range(n):
            await recv()
            if sent < n:
                await send(msg)
                sent += 1
    elapsed = perf() - t0
    await close()
    return summary(n, elapsed, lat if scenario == "pingpong" else None,
                   p.get("size") if scenario == "large" else None)


def websockets_client(scenario: str, url: str, p: dict) -> dict:
    import uvloop
    from websockets.asyncio.client import connect as ws_connect

    deflate = scenario == "deflate"

    async def connect():
        ws = await ws_connect(url, max_size=None, max_queue=None, ping_interval=None,
                              compression="deflate" if deflate else None)
        return ws.send, ws.recv, ws.close

    return uvloop.run(async_scenario(connect, scenario, p))


def aiohttp_client(scenario: str, url: str, p: dict) -> dict:
    import aiohttp
    import uvloop

    deflate = scenario == "deflate"

    async def main():
        async with aiohttp.ClientSession() as session:
            async def connect():
                ws = await session.ws_connect(url, max_msg_size=0, compress=15 if deflate else 0,
                                              autoping=True)

                async def send(m):
                    if m.__class__ is str:
                        await ws.send_str(m)
                    else:
                        await ws.send_bytes(m)

                async def recv():
                    msg = await ws.receive()
                    if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        raise RuntimeError(f"aiohttp: unexpected {msg.type}")
                    return msg.data

                return send, recv, ws.close

            return await async_scenario(connect, scenario, p)

    return uvloop.run(main())


# ------------------------------------------------------- websocket-client
def wsclient_client(scenario: str, url: str, p: dict) -> dict:
    import websocket

    if scenario == "deflate":
        sys.exit("websocket-client has no permessage-deflate")

    def connect():
        ws = websocket.create_connection(url, enable_multithread=False)
        ws.sock.setsockopt(6, 1, 1)  # TCP_NODELAY
        return ws

    if scenario == "handshakes":
        n, conc = p["n"], p["concurrency"]
        counter = iter(range(n))
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                connect().close()

        t0 = perf()
        threads = [threading.Thread(target=worker) for _ in range(conc)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return summary(n, perf() - t0)

    n = p["n"]
    inflight = p.get("inflight", 1)
    msg = payload_for(scenario, p)
    ws = connect()
    binary = not isinstance(msg, str)
    send = ws.send_binary if binary else ws.send
    lat = []
    t0 = perf()
    if inflight == 1:
        for _ in range(n):
            s = perf()
            send(msg)
            ws.recv()
            lat.append(perf() - s)
    else:
        sent = 0
        for _ in range(min(inflight, n)):
            send(msg)
            sent += 1
        for _ in range(n):
            ws.recv()
            if sent < n:
                send(msg)
                sent += 1
    elapsed = perf() - t0
    ws.close()
    return summary(n, elapsed, lat if scenario == "pingpong" else None,
                   p.get("size") if scenario == "large" else None)


# ------------------------------------------------------------------ picows
def picows_client(scenario: str, url: str, p: dict) -> dict:
    import uvloop
    from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

    if scenario == "deflate":
        sys.exit("picows has no permessage-deflate")

    async def main():
        loop = asyncio.get_running_loop()
        if scenario == "handshakes":
            n, conc = p["n"], p["concurrency"]
            remaining = [n]

            async def worker():
                while remaining[0] > 0:
                    remaining[0] -= 1
                    transport, _ = await ws_connect(WSListener, url, websocket_handshake_timeout=30)
                    transport.send_close(WSCloseCode.OK)
                    transport.disconnect()
                    await transport.wait_disconnected()

            t0 = perf()
            await asyncio.gather(*(worker() for _ in range(conc)))
            return summary(n, perf() - t0)

        if scenario in ("fanout", "idle"):
            conns, n = p["conns"], p.get("n", 0)
            finished = loop.create_future()
            state = {"pending": conns, "total": 0}

            class Counter(WSListener):
                count = 0

                def on_ws_frame(self, transport, frame):
                    if frame.msg_type is WSMsgType.BINARY:
                        self.count += 1
                        if self.count == n:
                            state["pending"] -= 1
                            if state["pending"] == 0 and not finished.done():
                                finished.set_result(None)

            transports = []
            sem = asyncio.Semaphore(100)

            async def open_one():
                async with sem:
                    t, _ = await ws_connect(Counter, url, websocket_handshake_timeout=30)
                    transports.append(t)

            await asyncio.gather(*(open_one() for _ in range(conns)))
            if scenario == "idle":
                print(f"HELD {len(transports)}", flush=True)
                await loop.run_in_executor(None, sys.stdin.read)
                return {"held": len(transports)}
            t0 = perf()
            transports[0].send(WSMsgType.TEXT, f"!bcast {n} {p['size']}".encode())
            await asyncio.wait_for(finished, 600)
            elapsed = perf() - t0
            for t in transports:
                t.disconnect()
            return summary(conns * n, elapsed)

        n = p["n"]
        inflight = p.get("inflight", 1)
        msg = payload_for(scenario, p)
        mtype = WSMsgType.TEXT if isinstance(msg, str) else WSMsgType.BINARY
        data = msg.encode() if isinstance(msg, str) else msg
        finished = loop.create_future()
        lat = []
        state = {"sent": 0, "recv": 0, "t": 0.0}

        class Driver(WSListener):
            def on_ws_frame(self, transport, frame):
                if frame.msg_type is not mtype:
                    return
                if inflight == 1:
                    lat.append(perf() - state["t"])
                    state["recv"] += 1
                    if state["recv"] >= n:
                        finished.set_result(None)
                        return
                    state["t"] = perf()
                    transport.send(mtype, data)
                else:
                    state["recv"] += 1
                    if state["sent"] < n:
                        state["sent"] += 1
                        transport.send(mtype, data)
                    elif state["recv"] >= n:
                        finished.set_result(None)

        transport, _ = await ws_connect(Driver, url, max_frame_size=64 * 1024 * 1024)
        t0 = perf()
        if inflight == 1:
            state["t"] = perf()
            transport.send(mtype, data)
        else:
            for _ in range(min(inflight, n)):
                state["sent"] += 1
                transport.send(mtype, data)
        await asyncio.wait_for(finished, 600)
        elapsed = perf() - t0
        transport.send_close(WSCloseCode.OK)
        transport.disconnect()
        return summary(n, elapsed, lat if scenario == "pingpong" else None,
                       p.get("size") if scenario == "large" else None)

    return uvloop.run(main())


CLIENTS = {"ixws": ixws_client, "websockets": websockets_client, "aiohttp": aiohttp_client,
           "websocket-client": wsclient_client, "picows": picows_client}


def main() -> None:
    lib, scenario, url, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    raise_nofile()
    result = CLIENTS[lib](scenario, url, params)
    print("RESULT " + json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
