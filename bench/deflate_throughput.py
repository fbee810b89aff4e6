"""Compressed vs uncompressed throughput of ixws (permessage-deflate).

An ixws.Client sends JSON-like messages (64 KiB by default) to an ixws.Server
on 127.0.0.1, which echoes each one back; the clock runs until the client has
received every echo. Printed per mode: messages/s, payload MB/s each way, and
the compression ratio (payload bytes / wire bytes, from the send results).

    python bench/deflate_throughput.py [--count 2000] [--size 65536] [--window 64]

Modes: "off" (no deflate), "deflate" (defaults: 15-bit windows, context
takeover) and "deflate-nct" (no context takeover either way).
"""
from __future__ import annotations

import argparse
import json
import random
import threading
import time
from typing import Any, Dict, List

import ixws

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega user admin guest order invoice shipped pending").split()


def json_messages(count: int, size: int, seed: int = 7) -> List[str]:
    """`count` different JSON arrays of records, each exactly `size` bytes (ASCII)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        rows = []
        total = 2
        while total < size:
            row = json.dumps({
                "id": rng.randrange(10**9),
                "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
                "email": f"{rng.choice(WORDS)}{rng.randrange(10**4)}@example.com",
                "active": rng.random() < 0.5,
                "balance": round(rng.uniform(-1000, 100000), 2),
                "tags": rng.sample(WORDS, 3),
                "status": rng.choice(("open", "closed", "pending")),
            }, separators=(",", ":"))
            rows.append(row)
            total += len(row) + 1
        text = "[" + ",".join(rows) + "]"
        out.append(text[: size - 1] + "]" if len(text) > size else text.ljust(size))
    return out


def run_mode(name: str, client_deflate: Any, messages: List[str], count: int, window: int) -> Dict[str, Any]:
    done = threading.Event()
    received = [0]
    lock = threading.Lock()
    server_ref: Dict[str, Any] = {}

    def on_server(ev: Any) -> None:
        if ev.type == "message":
            server_ref["s"].send(ev.data, clients=[ev.client])

    credit = threading.Semaphore(window)  # bounded pipelining: at most `window` in flight

    def on_client(ev: Any) -> None:
        if ev.type == "message":
            credit.release()
            with lock:
                received[0] += 1
                if received[0] == count:
                    done.set()

    server = ixws.Server(host="127.0.0.1", port=0, method=on_server)
    server_ref["s"] = server
    assert server.start()["success"]
    options: Dict[str, Any] = {"url": f"ws://127.0.0.1:{server.config['port']}/", "method": on_client,
                               "enableAutomaticReconnection": False}
    if client_deflate is None:
        options["disablePerMessageDeflate"] = True
    else:
        options["perMessageDeflate"] = client_deflate
    client = ixws.Client(options)
    try:
        res = client.start(timeout=10)
        assert res["success"], res
        negotiated = {k.lower(): v for k, v in res["headers"].items()}.get("sec-websocket-extensions", "")
        payload = wire = 0
        start = time.perf_counter()
        for i in range(count):
            credit.acquire()
            r = client.send(messages[i % len(messages)])
            assert r["success"], r
            payload += r["payloadSize"]
            wire += r["wireSize"]
        if not done.wait(300):
            raise RuntimeError(f"{name}: only {received[0]} of {count} echoes arrived")
        elapsed = time.perf_counter() - start
    finally:
        client.close()
        server.close()
    return {"mode": name, "negotiated": negotiated or "-", "msgs_per_s": count / elapsed,
            "mb_per_s": payload / elapsed / 1e6, "ratio": payload / wire if wire else 0.0,
            "wire_kib": wire / count / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000, help="messages per mode (default 2000)")
    ap.add_argument("--size", type=int, default=64 * 1024, help="message size in bytes (default 65536)")
    ap.add_argument("--window", type=int, default=64, help="messages in flight (default 64)")
    args = ap.parse_args()

    messages = json_messages(64, args.size)
    modes = [
        ("off", None),
        ("deflate", {"enabled": True}),
        ("deflate-nct", {"enabled": True, "clientNoContextTakeover": True, "serverNoContextTakeover": True}),
    ]
    print(f"ixws {ixws.engine_info().get('engine')}: {args.count} echoes of {args.size}-byte JSON-like "
          f"text messages over 127.0.0.1, {args.window} in flight")
    print(f"{'mode':<12} {'msgs/s':>9} {'MB/s':>8} {'ratio':>7} {'wire KiB/msg':>13}  negotiated")
    for name, deflate in modes:
        r = run_mode(name, deflate, messages, args.count, args.window)
        print(f"{r['mode']:<12} {r['msgs_per_s']:>9.0f} {r['mb_per_s']:>8.1f} {r['ratio']:>6.2f}x "
              f"{r['wire_kib']:>13.1f}  {r['negotiated']}")


if __name__ == "__main__":
    main()
