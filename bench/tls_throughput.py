"""wss:// vs ws:// throughput of ixws (client -> server), 256 B and 64 KiB messages.

    python bench/tls_throughput.py [--small N] [--large N] [--repeat R]

An ixws.Client sends N binary messages as fast as send() accepts them to an
ixws.Server on 127.0.0.1 whose callback counts them; the clock stops when the
server has received the last one. Each case runs R times and the best run is
kept. The certificate is a throwaway self-signed one made at start (with the
`cryptography` package, or the `openssl` command when it is missing).

Prints one line per (size, scheme) -- best wall-clock rate and best CPU time per
message of this process (client, server and the Python callback together; less
sensitive to a busy machine than wall time) -- and the wss/ws ratios per size.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Tuple

import ixws


def make_cert(directory: str) -> Tuple[str, str]:
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        return cert, key
    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pkey.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                        critical=False)
         .sign(pkey, hashes.SHA256()))
    with open(cert, "wb") as f:
        f.write(c.public_bytes(serialization.Encoding.PEM))
    with open(key, "wb") as f:
        f.write(pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return cert, key


def run_case(tls: bool, cert: str, key: str, size: int, count: int) -> Tuple[float, float]:
    """(wall, cpu) seconds from the first send to the server's receipt of the last
    message; cpu is this process's (client + server + Python callbacks)."""
    received = 0
    done = threading.Event()

    def on_server_event(ev) -> None:
        nonlocal received
        if ev.type == "message":
            received += 1
            if received == count:
                done.set()

    server_opts = {"host": "127.0.0.1", "port": 0, "method": on_server_event, "disablePerMessageDeflate": True}
    if tls:
        server_opts["tls"] = {"certFile": cert, "keyFile": key}
    server = ixws.Server(server_opts)
    client = None
    try:
        res = server.start()
        if not res["success"]:
            raise SystemExit(f"server did not start: {res}")
        scheme = "wss" if tls else "ws"
        client_opts = {"url": f"{scheme}://127.0.0.1:{server.config['port']}/", "method": lambda ev: None,
                       "enableAutomaticReconnection": False}
        if tls:
            client_opts["tls"] = {"caFile": cert}
        client = ixws.Client(client_opts)
        res = client.start(timeout=10)
        if not res["success"]:
            raise SystemExit(f"client did not connect: {res['errorStr']}")
        payload = os.urandom(size)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(count):
            client.send(payload)
        if not done.wait(timeout=300):
            raise SystemExit(f"only {received}/{count} messages arrived")
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        if client is not None:
            client.close()
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000, help="messages of 256 B (default 100000)")
    parser.add_argument("--large", type=int, default=4_000, help="messages of 64 KiB (default 4000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, best kept (default 3)")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="ixws-bench-tls-")
    try:
        cert, key = make_cert(directory)
        print(f"ixws {ixws.engine_info()}")
        print(f"{'size':>8} {'scheme':>6} {'messages':>9} {'msg/s':>12} {'MB/s':>9} {'cpu us/msg':>11}")
        for size, count in ((256, args.small), (64 * 1024, args.large)):
            rates, cpus = {}, {}
            for tls in (False, True):
                runs = [run_case(tls, cert, key, size, count) for _ in range(args.repeat)]
                best = min(wall for wall, _ in runs)
                cpu = min(c for _, c in runs)
                scheme = "wss" if tls else "ws"
                rates[scheme] = count / best
                cpus[scheme] = cpu
                print(f"{size:>8} {scheme:>6} {count:>9} {count / best:>12,.0f} {count * size / best / 1e6:>9.1f} "
                      f"{cpu / count * 1e6:>11.2f}", flush=True)
            print(f"{size:>8} wss/ws: throughput ratio {rates['wss'] / rates['ws']:.2f}, "
                  f"cpu ratio {cpus['wss'] / cpus['ws']:.2f}", flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
