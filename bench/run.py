"""ixws benchmark: every scenario for every library, in ONE invocation.

    python bench/run.py --quick                      # a few minutes
    python bench/run.py                              # the full sizes of issue 6
    python bench/run.py --scenarios S1,S2 --libs ixws,picows,websockets

Server and client run in separate processes on 127.0.0.1. Per scenario there
are three comparisons:
  server  each library's server, driven by one fixed load generator: in S1-S3
          and S5 bench/loadgen.c (a C WebSocket client, compiled at bench time
          with cc: faster than every Python client, so the server is what
          saturates), in S4 and S6 picows on uvloop (fan-out, idle connections)
  client  each library's client against one fixed echo server: in S1-S3
          bench/echoserver.c (C, linked with libcrypto for the handshake), in
          S5 picows on uvloop
  self    each library's client against its own server
Each cell is the median of --runs runs (default 3; the runs of all cells are
interleaved so they see the same machine state) with the min..max spread.
Writes bench/results/results.{json,md} and bench/results/chart.png.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PY = sys.executable
ALL_LIBS = ["ixws", "picows", "websockets", "aiohttp", "websocket-client"]
SERVER_LIBS = {"ixws", "picows", "websockets", "aiohttp"}
DEFLATE_LIBS = {"ixws", "websockets", "aiohttp"}
FIXED = "picows"
# The fixed load generator of the S1-S3 and S5 server rows: bench/loadgen.c, faster
# than any Python client, so that the server under test is what saturates.
LOADGEN = "loadgen (C)"
# ... and the fixed echo server of their client rows: bench/echoserver.c.
ECHO = "echo (C)"
LOADGEN_SCENARIOS = {"S1", "S2", "S3", "S5"}
ECHO_SCENARIOS = {"S1", "S2", "S3"}  # one connection at a time: not for S5's ten
_loadgen_exe = None
_echo_exe = None

# name -> (title, client scenario, full params, quick params, metric, unit)
SCENARIOS = {
    "S1": ("ping-pong, 32 B text, 1 in flight", "pingpong", {"n": 20000}, {"n": 3000},
           "rate", "round trips/s"),
    "S2": ("pipelined, 256 B binary, 100 in flight", "pipelined",
           {"n": 200000, "size": 256, "inflight": 100}, {"n": 30000, "size": 256, "inflight": 100},
           "rate", "msgs/s"),
    "S3": ("large, 1 MiB binary echo", "large", {"n": 200, "size": 1 << 20},
           {"n": 40, "size": 1 << 20}, "mb_per_s", "MB/s"),
    "S4": ("fan-out, 1 KiB broadcasts", "fanout", {"n": 1000, "size": 1024, "conns": [100, 1000]},
           {"n": 200, "size": 1024, "conns": [100, 1000]}, "rate", "deliveries/s"),
    "S5": ("handshakes, open+close, 10 concurrent", "handshakes", {"n": 2000, "concurrency": 10},
           {"n": 300, "concurrency": 10}, "rate", "connections/s"),
    "S6": ("idle connections", "idle", {"conns": [1000, 5000, 10000]}, {"conns": [1000, 10000]},
           "kb_per_conn", "KB RSS per connection"),
    "S7": ("permessage-deflate, 64 KiB JSON-like text", "deflate", {"n": 2000, "size": 65536},
           {"n": 300, "size": 65536}, "rate", "msgs/s"),
}
HIGHER_IS_BETTER = {"rate": True, "mb_per_s": True, "kb_per_conn": False}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "Threads"):
                    out[k] = int(v.split()[0])
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "rchar":
                    out["rchar"] = int(v)
    except OSError:
        pass
    return out


def ixws_has_deflate() -> bool:
    """Whether an ixws server negotiates permessage-deflate (asked of a real handshake)."""
    try:
        import ixws
        from websockets.sync.client import connect
    except ImportError:
        return False
    server = ixws.Server(port=0, per_message_deflate=True)
    try:
        if not server.start()["success"]:
            return False
        with connect(f"ws://127.0.0.1:{server.port}/", compression="deflate", open_timeout=10) as ws:
            return "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
    except Exception:
        return False
    finally:
        server.close()


class Server:
    def __init__(self, lib: str, deflate: bool = False):
        self.port = free_port()
        args = [PY, os.path.join(HERE, "bench_server.py"), lib, str(self.port)]
        if lib == ECHO:
            args = [_echo_exe, str(self.port)]
        if deflate:
            args.append("--deflate")
        # stderr to a file: a chatty server must never block on a full pipe.
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        if "READY" not in line:
            self.proc.wait(10)
            self.err.seek(0)
            err = self.err.read()
            raise RuntimeError(f"{lib} server did not start: {line!r} {err[-2000:]}")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def run_loadgen(scenario: str, url: str, params: dict, timeout: float = 600) -> dict:
    port = url.rsplit(":", 1)[1].strip("/")
    size = params.get("size", 32)
    args = [_loadgen_exe, scenario, port, str(params["n"]), str(size)]
    if scenario == "handshakes":
        args = [_loadgen_exe, scenario, port, str(params["n"]), str(params["concurrency"])]
    if scenario == "pipelined":
        args.append(str(params["inflight"]))
    res = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"loadgen {scenario} failed: {res.stdout[-500:]} {res.stderr[-1500:]}")


def compile_c_peers() -> tuple:
    """Builds bench/loadgen.c and bench/echoserver.c (which needs libcrypto)."""
    tmp = tempfile.gettempdir()
    loadgen = os.path.join(tmp, f"ixws-loadgen-{os.getpid()}")
    echo = os.path.join(tmp, f"ixws-echo-{os.getpid()}")
    subprocess.run(["cc", "-O2", "-pthread", "-o", loadgen, os.path.join(HERE, "loadgen.c")], check=True)
    subprocess.run(["cc", "-O2", "-o", echo, os.path.join(HERE, "echoserver.c"), "-lcrypto"], check=True)
    return loadgen, echo


def run_client(lib: str, scenario: str, url: str, params: dict, timeout: float = 600) -> dict:
    if lib == LOADGEN:
        return run_loadgen(scenario, url, params, timeout)
    args = [PY, os.path.join(HERE, "bench_client.py"), lib, scenario, url, json.dumps(params)]
    res = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{lib} client {scenario} failed: {res.stdout[-500:]} {res.stderr[-1500:]}")


def one_run(sid: str, server_lib: str, client_lib: str, params: dict, quick: bool) -> dict:
    _, scen, *_ = SCENARIOS[sid]
    if sid == "S6":
        return idle_run(server_lib, params["conns"])
    srv = Server(server_lib, deflate=(sid == "S7"))
    try:
        before = proc_status(srv.proc.pid)
        out = run_client(client_lib, scen, srv.url, params)
        after = proc_status(srv.proc.pid)
        if sid == "S7" and "wire_bytes" in out:
            # ixws reads with recv(2), which rchar does not count: its client
            # reports the compressed size of every echo it received instead
            out["wire_ratio"] = out["wire_bytes"] / (params["n"] * params["size"])
        elif sid == "S7" and "rchar" in before and "rchar" in after:
            # bytes the server read from the socket / payload bytes the client sent
            out["wire_ratio"] = (after["rchar"] - before["rchar"]) / (params["n"] * params["size"])
        return out
    finally:
        srv.stop()


def idle_run(server_lib: str, conns: int) -> dict:
    srv = Server(server_lib)
    try:
        time.sleep(0.5)
        base = proc_status(srv.proc.pid)
        args = [PY, os.path.join(HERE, "bench_client.py"), FIXED, "idle", srv.url,
                json.dumps({"conns": conns})]
        err = tempfile.TemporaryFile(mode="w+")
        cli = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
        held = 0
        line = cli.stdout.readline()
        if line.startswith("HELD"):
            held = int(line.split()[1])
        time.sleep(1.0)  # let the server settle after the last handshake
        loaded = proc_status(srv.proc.pid)
        cli.stdin.close()
        try:
            cli.wait(60)
        except subprocess.TimeoutExpired:
            cli.kill()
        if held == 0:
            err.seek(0)
            raise RuntimeError(f"idle client failed: {err.read()[-1500:]}")
        return {"kb_per_conn": (loaded["VmRSS"] - base["VmRSS"]) / held, "held": held,
                "all_held": held == conns, "threads_before": base.get("Threads"),
                "threads_after": loaded.get("Threads"), "rss_kb": loaded["VmRSS"]}
    finally:
        srv.stop()


def compile_floor() -> str:
    exe = os.path.join(tempfile.gettempdir(), f"ixws-floor-{os.getpid()}")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "floor.c")], check=True)
    return exe


def floor_once(exe: str, quick: bool) -> dict:
    """One raw-TCP run of the S1 and S3 shapes (taken in every round, like the cells)."""
    n1 = SCENARIOS["S1"][3 if quick else 2]["n"]
    n3 = SCENARIOS["S3"][3 if quick else 2]["n"]
    r1 = subprocess.run([exe, "pingpong", str(n1), "32"], capture_output=True, text=True, check=True)
    r3 = subprocess.run([exe, "echo", str(n3), str(1 << 20)], capture_output=True, text=True, check=True)
    return {"S1": json.loads(r1.stdout), "S3": json.loads(r3.stdout)}


def floor_summary(rounds: list) -> dict:
    return {"S1": summarize([x["S1"]["rtt_per_s"] for x in rounds]),
            "S1_p50_us": statistics.median(x["S1"]["p50_us"] for x in rounds),
            "S3": summarize([x["S3"]["mb_per_s"] for x in rounds])}


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def plan(sids, libs, quick):
    """[(sid, label, role, server_lib, client_lib, params)]"""
    cells = []
    have_deflate = ixws_has_deflate()
    for sid in sids:
        title, scen, full, qp, metric, unit = SCENARIOS[sid]
        params = qp if quick else full
        if sid in ("S4", "S6"):
            for n in params["conns"]:
                p = dict(params, conns=n)
                for lib in libs:
                    if lib in SERVER_LIBS:
                        cells.append((sid, f"{sid}-{n}", "server", lib, FIXED, p))
            continue
        if sid == "S7":
            for lib in libs:
                if lib in DEFLATE_LIBS:
                    if lib == "ixws" and not have_deflate:
                        continue
                    cells.append((sid, sid, "self", lib, lib, params))
            continue
        c_peers = sid in ECHO_SCENARIOS
        driver = LOADGEN if sid in LOADGEN_SCENARIOS else FIXED
        echo = ECHO if c_peers else FIXED
        for lib in libs:
            if lib in SERVER_LIBS:
                cells.append((sid, sid, "server", lib, driver, params))
        for lib in libs:
            cells.append((sid, sid, "client", echo, lib, params))
        for lib in libs:
            # picows with itself is already a client row when picows is the echo server
            if lib in SERVER_LIBS and (c_peers or lib != FIXED):
                cells.append((sid, sid, "self", lib, lib, params))
    return cells


def machine_info(libs) -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for lib in libs + ["uvloop"]:
        dist = {"ixws": "ixws"}.get(lib, lib)
        try:
            versions[lib] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    try:
        import ixws
        versions["ixws engine"] = json.dumps(ixws.engine_info())
    except ImportError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "versions": versions, "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def leak_check(quick: bool) -> dict:
    """RSS of an ixws echo server and an ixws client across many echoed messages."""
    n = 100000 if quick else 1000000
    srv = Server("ixws")
    samples = []
    stop = threading.Event()
    holder = {}

    def sampler():
        while not stop.wait(0.1):
            pid = holder.get("client")
            s = proc_status(srv.proc.pid)
            c = proc_status(pid) if pid else {}
            samples.append((time.time(), s.get("VmRSS"), c.get("VmRSS")))

    args = [PY, os.path.join(HERE, "bench_client.py"), "ixws", "pipelined", srv.url,
            json.dumps({"n": n, "size": 256, "inflight": 100})]
    t = threading.Thread(target=sampler)
    t.start()
    try:
        cli = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        holder["client"] = cli.pid  # communicate() reads both pipes
        out, err = cli.communicate(timeout=900)
    finally:
        stop.set()
        t.join()
        srv.stop()
    samples = [s for s in samples if s[1] and s[2]]
    warm = samples[len(samples) // 5:] or samples
    def flat(idx):
        vals = [s[idx] for s in warm]
        return {"after_warmup_kb": vals[0], "end_kb": vals[-1], "max_kb": max(vals),
                "growth_pct": 100.0 * (max(vals) - vals[0]) / vals[0]}
    return {"messages": n, "server": flat(1), "client": flat(2), "samples": len(samples),
            "result": out.strip().splitlines()[-1] if out.strip() else err[-500:]}


def fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def render(results: dict, path_md: str, path_png: str) -> None:
    info = results["machine"]
    lines = ["# ixws benchmark results", "",
             f"{info['date']}, commit {info['commit']}, {info['cpu']} ({info['cores']} cores), "
             f"Linux {info['kernel']}, Python {info['python']}. Mode: {results['mode']}, "
             f"{results['runs']} runs per cell (median, min..max).", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()), "",
             f"Server rows of S1-S3 and S5: every server driven by the same C load generator "
             f"(bench/loadgen.c, faster than any Python client, so the server saturates); "
             f"server rows of S4 and S6: {FIXED} on uvloop as the client. Client rows of S1-S3: "
             f"every client against the same C echo server (bench/echoserver.c); of S5: "
             f"against the {FIXED} echo server on uvloop. "
             "The ixws server under test is a Python callback that echoes.", ""]
    by_label = {}
    for cell in results["cells"]:
        by_label.setdefault(cell["label"], []).append(cell)
    for label, cells in by_label.items():
        sid = cells[0]["sid"]
        title, _, _, _, metric, unit = SCENARIOS[sid]
        lines.append(f"## {label}: {title} ({unit})")
        lines.append("")
        extra = ""
        if sid == "S1":
            extra = " | p50 µs | p99 µs"
        if sid == "S6":
            extra = " | held | threads before/after"
        if sid == "S7":
            extra = " | wire/payload"
        lines.append(f"| role | server | client | median | min..max | vs {FIXED}" + extra + " |")
        lines.append("|---|---|---|---|---|---" + "|---" * extra.count("|") + "|")
        for c in cells:
            s = c.get("summary")
            if not s:
                lines.append(f"| {c['role']} | {c['server']} | {c['client']} | failed: "
                             f"{c.get('error', '')[:80]} | | |" + " |" * extra.count("|"))
                continue
            ratio = c.get("ratio")
            rs = f"{ratio:.2f}x" if ratio else ""
            row = (f"| {c['role']} | {c['server']} | {c['client']} | {fmt(s['median'])} | "
                   f"{fmt(s['min'])}..{fmt(s['max'])} | {rs}")
            last = c["raw"][-1]
            if sid == "S1":
                row += f" | {statistics.median(r['p50_us'] for r in c['raw']):.0f}" \
                       f" | {statistics.median(r['p99_us'] for r in c['raw']):.0f}"
            if sid == "S6":
                row += f" | {last['held']} | {last['threads_before']}/{last['threads_after']}"
            if sid == "S7":
                row += f" | {last.get('wire_ratio', 0):.3f}"
            lines.append(row + " |")
        fl = results.get("floor", {})
        if sid == "S1" and "S1" in fl:
            lines.append(f"| floor | raw TCP (C) | raw TCP (C) | {fmt(fl['S1']['median'])} | "
                         f"{fmt(fl['S1']['min'])}..{fmt(fl['S1']['max'])} | | {fl['S1_p50_us']:.0f} | |")
        if sid == "S3" and "S3" in fl:
            lines.append(f"| floor | raw TCP (C) | raw TCP (C) | {fmt(fl['S3']['median'])} | "
                         f"{fmt(fl['S3']['min'])}..{fmt(fl['S3']['max'])} | |")
        lines.append("")
    if results.get("leak"):
        lk = results["leak"]
        lines += [f"## RSS across {lk['messages']:,} echoed messages (ixws server and client)", "",
                  "| process | after warm-up KB | end KB | max growth |", "|---|---|---|---|",
                  f"| server | {lk['server']['after_warmup_kb']} | {lk['server']['end_kb']} | "
                  f"{lk['server']['growth_pct']:.1f}% |",
                  f"| client | {lk['client']['after_warmup_kb']} | {lk['client']['end_kb']} | "
                  f"{lk['client']['growth_pct']:.1f}% |", ""]
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    with open(path_md, "w") as f:
        f.write("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(by_label)
    cols = 3
    rows = (len(labels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.6 * rows), squeeze=False)
    colors = {"server": "#4C72B0", "client": "#DD8452", "self": "#55A868"}
    for ax in axes.flat[len(labels):]:
        ax.axis("off")
    for ax, label in zip(axes.flat, labels):
        cells = [c for c in by_label[label] if c.get("summary")]
        sid = by_label[label][0]["sid"]
        title, _, _, _, metric, unit = SCENARIOS[sid]
        names = [(c["server"] if c["role"] == "server" else c["client"]) + f" ({c['role']})"
                 for c in cells]
        meds = [c["summary"]["median"] for c in cells]
        lo = [c["summary"]["median"] - c["summary"]["min"] for c in cells]
        hi = [c["summary"]["max"] - c["summary"]["median"] for c in cells]
        ys = range(len(cells))
        ax.barh(list(ys), meds, xerr=[lo, hi], color=[colors[c["role"]] for c in cells],
                edgecolor=["black" if "ixws" in (c["server"], c["client"]) else "none" for c in cells])
        ax.set_yticks(list(ys))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        fl = results.get("floor", {})
        if sid in ("S1", "S3") and sid in fl:
            ax.axvline(fl[sid]["median"], color="red", ls="--", lw=1, label="raw TCP floor (C)")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_title(f"{label}: {title}", fontsize=8)
        ax.set_xlabel(unit + ("" if HIGHER_IS_BETTER[metric] else " (lower is better)"), fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(f"ixws vs peers, median of {results['runs']} runs ({info['cores']} cores, "
                 f"{results['mode']}); blue: server under a fixed client (C load generator in S1-S3 and S5, "
                 f"{FIXED} in S4, S6), orange: client against a fixed server (C echo in S1-S3, {FIXED} in S5), "
                 f"green: library with itself", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path_png, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="S1,S2,S3,S4,S5,S6,S7")
    ap.add_argument("--libs", default=",".join(ALL_LIBS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes: finishes in a few minutes")
    ap.add_argument("--no-leak", action="store_true", help="skip the RSS flatness check")
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args()
    sids = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    libs = [x.strip() for x in args.libs.split(",") if x.strip()]
    for s in sids:
        if s not in SCENARIOS:
            sys.exit(f"unknown scenario {s}; known: {', '.join(SCENARIOS)}")
    for lib in libs:
        if lib not in ALL_LIBS:
            sys.exit(f"unknown library {lib}; known: {', '.join(ALL_LIBS)}")
    if FIXED not in libs:
        libs.insert(0, FIXED)  # the fixed peer is always measured
    available = []
    notes = []
    for lib in libs:
        mod = {"websocket-client": "websocket"}.get(lib, lib)
        try:
            __import__(mod)
            available.append(lib)
        except ImportError:
            notes.append(f"{lib} is not installed: skipped")
    libs = available
    if "S7" in sids and "ixws" in libs and not ixws_has_deflate():
        notes.append("S7: the ixws server did not negotiate permessage-deflate with a websockets "
                     "client: its S7 cells are skipped")
    if "S7" in sids:
        notes.append("S7: picows and websocket-client have no permessage-deflate; wire/payload is "
                     "the server's socket bytes read (/proc rchar) over the payload bytes sent, "
                     "for an ixws client the compressed payload bytes of the echoes it received "
                     "(ixws reads with recv(2), which rchar does not count)")
    notes.append("S4 and S6 drive every server with the same picows client process; S4 counts "
                 "deliveries at that client, which can bound the rate it sees")
    notes.append("The ratio column compares with picows in the same role and run; the C peers "
                 "(bench/loadgen.c, bench/echoserver.c) replaced picows as the fixed peers where "
                 "picows itself saturated first (S2: both picows peers stopped near 190,000 msgs/s "
                 "whatever the library under test)")
    cells = plan(sids, libs, args.quick)
    raw = {i: [] for i in range(len(cells))}
    errors = {}
    t_start = time.time()
    floor_exe = compile_floor() if any(s in sids for s in ("S1", "S3")) else None
    global _loadgen_exe, _echo_exe
    if (LOADGEN_SCENARIOS | ECHO_SCENARIOS) & set(sids):
        _loadgen_exe, _echo_exe = compile_c_peers()
    floor_rounds = []
    cache = {}
    for r in range(args.runs):
        cache.clear()
        if floor_exe:
            floor_rounds.append(floor_once(floor_exe, args.quick))
            print(f"[run {r + 1}] floor {json.dumps(floor_rounds[-1])}", flush=True)
        for i, (sid, label, role, srv, cli, params) in enumerate(cells):
            key = (label, srv, cli)
            if key in cache:  # e.g. picows/picows appears as server, client and self
                raw[i].append(cache[key])
                continue
            try:
                out = one_run(sid, srv, cli, params, args.quick)
                raw[i].append(out)
                cache[key] = out
                print(f"[run {r + 1}] {label} {role:6} {srv:>16} <- {cli:<16} "
                      f"{json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()})}",
                      flush=True)
            except Exception as exc:  # keep going: one failing cell must not lose the run
                errors[i] = str(exc)
                print(f"[run {r + 1}] {label} {role} {srv} <- {cli}: FAILED {exc}", flush=True)
    out_cells = []
    for i, (sid, label, role, srv, cli, params) in enumerate(cells):
        metric = SCENARIOS[sid][4]
        c = {"sid": sid, "label": label, "role": role, "server": srv, "client": cli, "params": params,
             "raw": raw[i]}
        if raw[i]:
            c["summary"] = summarize([x[metric] for x in raw[i]])
        else:
            c["error"] = errors.get(i, "no result")
        out_cells.append(c)
    # Ratio to the fixed peer in the same role (picows server / picows client / picows self).
    for c in out_cells:
        if "summary" not in c:
            continue
        ref_lib = FIXED
        for d in out_cells:
            if d["label"] == c["label"] and d["role"] == c["role"] and "summary" in d and (
                    (c["role"] == "server" and d["server"] == ref_lib) or
                    (c["role"] == "client" and d["client"] == ref_lib) or
                    (c["role"] == "self" and d["server"] == ref_lib == d["client"])):
                c["ratio"] = c["summary"]["median"] / d["summary"]["median"]
        if c["role"] == "self" and "ratio" not in c:
            for d in out_cells:
                if d["label"] == c["label"] and d["server"] == d["client"] == FIXED and "summary" in d:
                    c["ratio"] = c["summary"]["median"] / d["summary"]["median"]
    results = {"mode": "quick" if args.quick else "full", "runs": args.runs,
               "machine": machine_info(libs), "cells": out_cells, "notes": notes}
    for exe in (_loadgen_exe, _echo_exe):
        if exe:
            os.unlink(exe)
    if floor_exe:
        os.unlink(floor_exe)
        results["floor"] = floor_summary(floor_rounds)
    if not args.no_leak and "ixws" in libs:
        results["leak"] = leak_check(args.quick)
        print(f"leak: {json.dumps(results['leak'])}", flush=True)
    results["elapsed_s"] = time.time() - t_start
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    render(results, os.path.join(args.out, "results.md"), os.path.join(args.out, "chart.png"))
    print(f"wrote {args.out}/results.md and chart.png in {results['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
