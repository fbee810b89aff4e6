"""Hot-path counters of the ixws server under the S1 and S2 loads.

    python bench/hotpath.py [--n 200000]

Runs an ixws echo server (a Python callback, as in bench_server.py) in this
process and the picows load generator in another, and reports per echoed message:
  - batches (one GIL acquisition delivers a batch, run either inline on the
    engine thread or by the dispatcher thread) and the share run inline,
  - events per batch,
  - send/recv/futex/epoll syscalls and context switches of the server process
    (perf stat; skipped when perf is not usable).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
COUNTERS = ["syscalls:sys_enter_sendto", "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_recvfrom",
            "syscalls:sys_enter_futex", "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_write",
            "context-switches"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200000)
    args = ap.parse_args()

    from ixws import _ixws

    stats = {"batches": 0, "events": 0, "inline_batches": 0}
    real_next = _ixws.next_events

    def counting_next(timeout=-1.0):
        batch = real_next(timeout)
        if batch:
            stats["batches"] += 1
            stats["events"] += len(batch)
        return batch

    _ixws.next_events = counting_next  # before the dispatcher thread starts
    import ixws
    from ixws import _dispatch

    # Batches run inline on the engine thread (no dispatcher hop) count too.
    real_inline = _dispatch._deliver_inline

    def counting_inline(batch):
        stats["inline_batches"] += 1
        stats["batches"] += 1
        stats["events"] += len(batch)
        real_inline(batch)

    server = None

    def on_event(ev):
        if ev.type == "message":
            server.send(ev.data, clients=[ev.client])

    server = ixws.Server(port=0, method=on_event, disable_per_message_deflate=True)
    assert server.start()["success"]
    _ixws.set_inline_delivery(counting_inline)  # after the dispatcher registered its own
    url = f"ws://127.0.0.1:{server.port}/"
    perf = shutil.which("perf")
    out = {}
    for name, scen, params in (("S1", "pingpong", {"n": min(args.n, 20000)}),
                               ("S2", "pipelined", {"n": args.n, "size": 256, "inflight": 100})):
        stats.update(batches=0, events=0, inline_batches=0)
        mon = None
        if perf:
            mon = subprocess.Popen([perf, "stat", "--no-inherit", "-x,", "-e", ",".join(COUNTERS), "-p", str(os.getpid())],
                                   stderr=subprocess.PIPE, text=True)
            threading.Event().wait(1.0)  # perf needs a moment to attach to every thread
        res = subprocess.run([sys.executable, os.path.join(HERE, "bench_client.py"), "picows", scen, url,
                              json.dumps(params)], capture_output=True, text=True)
        counts = {}
        if mon:
            mon.send_signal(2)
            _, err = mon.communicate()
            for line in err.splitlines():
                parts = line.split(",")
                if len(parts) > 2 and parts[0].strip().isdigit():
                    counts[parts[2].replace("syscalls:sys_enter_", "")] = int(parts[0])
        n = params["n"]
        row = {"messages": n, "rate": json.loads(res.stdout.split("RESULT ", 1)[1])["rate"],
               "batches_per_msg": stats["batches"] / n, "events_per_batch": stats["events"] / max(1, stats["batches"]),
               "inline_share": stats["inline_batches"] / max(1, stats["batches"])}
        for k, v in counts.items():
            row[k + "_per_msg"] = v / n
        out[name] = row
        print(name, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
    server.close()


if __name__ == "__main__":
    main()
