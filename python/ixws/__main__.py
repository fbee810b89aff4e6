"""Command line of ixws: ``python -m ixws <command> ...``.

Commands:

* ``demo``         a self-contained tour: a server on a free port, a few clients,
                   text/binary messages and a broadcast, printed as events.
* ``echo-server``  an echo server (every message sent back with the same type).
* ``autobahn``     the client side of the Autobahn TestSuite "fuzzingserver"
                   protocol (also served by kosoku).
* ``connect``      an interactive client: lines typed are sent, messages printed.

``python -m ixws --version`` prints the version and the engine.

Everything here uses only the public Python API (ixws.Server, ixws.Client and
their events), so it doubles as an example of that API.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import _cli_connect
from ._cli_common import CliError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ixws",
        description="ixws: WebSocket server and client on a C++17 IXWebSocket-compatible engine.",
    )
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a local server and clients and print what happens",
        description=(
            "Start a server on a free 127.0.0.1 port, connect several clients, exchange "
            "text and binary messages, broadcast from the server, and print every event. "
            "Ends with a one-line summary; exit status 1 if an expected event is missing."
        ),
    )
    demo.add_argument("--clients", type=_positive_int, default=3, help="number of clients (default: 3)")
    demo.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        help="seconds to wait for each expected step (default: 10)",
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")

    echo = sub.add_parser(
        "echo-server",
        help="run an echo server",
        description=(
            "Echo every message back to its sender with the same type (text or binary). "
            "Prints 'listening on ws://HOST:PORT' (wss:// with --tls) once ready; stops on SIGINT/SIGTERM."
        ),
    )
    echo.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    echo.add_argument("--port", type=_port, default=8008, help="port to bind, 0 for a free one (default: 8008)")
    echo.add_argument(
        "--max-message-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="close connections (1009) whose messages exceed N bytes (default: 16 MiB)",
    )
    echo.add_argument(
        "--max-connections", type=_positive_int, default=None, metavar="N", help="engine default if omitted"
    )
    echo.add_argument(
        "--no-deflate", action="store_true", help="decline permessage-deflate offers from clients"
    )
    echo.add_argument("-v", "--verbose", action="store_true", help="print open/close events")
    echo.add_argument("--tls", action="store_true", help="serve wss:// (needs --cert-file and --key-file)")
    echo.add_argument("--cert-file", metavar="FILE", default=None, help="PEM certificate chain of the server")
    echo.add_argument("--key-file", metavar="FILE", default=None, help="PEM private key of --cert-file")
    echo.add_argument(
        "--ca-file",
        metavar="FILE",
        default=None,
        help="PEM CA bundle: clients must present a certificate it signed (mutual TLS)",
    )

    ab = sub.add_parser(
        "autobahn",
        help="run the Autobahn fuzzingserver test cases as a client",
        description=(
            "Client for an Autobahn TestSuite fuzzingserver (or kosoku -m fuzzingserver): "
            "fetch /getCaseCount, run /runCase?case=i&agent=NAME for every case echoing "
            "each message back with the same type, then call /updateReports?agent=NAME."
        ),
    )
    ab.add_argument("--url", required=True, help="base URL of the fuzzing server, e.g. ws://127.0.0.1:9001")
    ab.add_argument("--agent", default="ixws", help="agent name reported to the server (default: ixws)")
    ab.add_argument(
        "--cases",
        default=None,
        metavar="PATTERNS",
        help=(
            "comma-separated case ids or globs (e.g. '1.*,2.*,7.1.1'); needs the server's "
            "/getCaseInfo. Servers without it (kosoku) run every case: filter there instead."
        ),
    )
    ab.add_argument(
        "--case-info",
        choices=("auto", "yes", "no"),
        default="auto",
        help=(
            "use /getCaseInfo for --cases: auto = only if the server announces "
            "AutobahnTestSuite (default: auto)"
        ),
    )
    ab.add_argument(
        "--case-timeout",
        type=_positive_float,
        default=120.0,
        metavar="SECONDS",
        help="give up on a case that is not closed after this long (default: 120)",
    )
    ab.add_argument("--deflate", action="store_true", help="offer permessage-deflate (for cases 12.* and 13.*)")
    ab.add_argument(
        "--ca-file",
        metavar="FILE",
        default=None,
        help="wss://: PEM CA bundle that signed the server's certificate (default: the system store)",
    )
    ab.add_argument(
        "--no-context-takeover",
        action="store_true",
        help="with --deflate: also offer client_no_context_takeover (cases 13.2 and 13.5-13.7 need it)",
    )
    ab.add_argument("-q", "--quiet", action="store_true", help="do not print one line per case")
    _cli_connect.add_parser(sub, _positive_float)
    return parser


def _version_text() -> str:
    import ixws

    info = ixws.engine_info()
    return f"ixws {ixws.__version__} ({info['engine']} engine, IXWebSocket API {info['version']})"


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2

    try:
        if args.command == "demo":
            from ._cli_demo import run_demo

            return run_demo(clients=args.clients, timeout=args.timeout, quiet=args.quiet)
        if args.command == "echo-server":
            from ._cli_echo import run_echo_server

            return run_echo_server(
                host=args.host,
                port=args.port,
                max_message_size=args.max_message_size,
                max_connections=args.max_connections,
                deflate=not args.no_deflate,
                verbose=args.verbose,
                tls=args.tls,
                cert_file=args.cert_file,
                key_file=args.key_file,
                ca_file=args.ca_file,
            )
        if args.command == "autobahn":
            from ._cli_autobahn import run_autobahn

            return run_autobahn(
                url=args.url,
                agent=args.agent,
                cases=args.cases,
                case_timeout=args.case_timeout,
                deflate=args.deflate,
                quiet=args.quiet,
                case_info=args.case_info,
                ca_file=args.ca_file,
                no_context_takeover=args.no_context_takeover,
            )
        if args.command == "connect":
            return _cli_connect.run_connect(
                url=args.url,
                headers=args.header,
                subprotocols=args.subprotocol,
                timeout=args.timeout,
                ca_file=args.ca_file,
                cert_file=args.cert_file,
                key_file=args.key_file,
                insecure=args.insecure,
            )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CliError as exc:
        print(f"ixws {args.command}: error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
