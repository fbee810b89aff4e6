"""ixws.plugin: the 4D WebSocket plugin's commands, as a 4D program uses them."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, List

import pytest

import ixws  # noqa: F401
from ixws.plugin import (config_to_json, websocket_client, websocket_client_clear,
                         websocket_client_messages, websocket_client_send, websocket_client_start,
                         websocket_client_stop, websocket_server, websocket_server_clear,
                         websocket_server_clients, websocket_server_messages, websocket_server_send,
                         websocket_server_start, websocket_server_stop)

TIMEOUT = 20.0
HERE = os.path.dirname(os.path.abspath(__file__))


class Calls:
    """The seven-argument calls a method received, with the thread of each."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.items: List[dict] = []

    def __call__(self, *args: Any) -> None:
        thread = threading.current_thread()
        with self.cond:
            self.items.append({"args": args, "thread": thread.name, "ident": thread.ident})
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[List[dict]], bool]) -> List[dict]:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.items), TIMEOUT), self.items
            return list(self.items)

    def of_type(self, kind: str) -> List[dict]:
        with self.cond:
            return [c for c in self.items if c["args"][2] == kind]


recorded = Calls()


def ws_method(*args: Any) -> None:
    """A module-level method: found by name through the "module" option, and
    written as "test_plugin:ws_method" by config_to_json."""
    recorded(*args)


@pytest.fixture
def cleanup():
    configs: list = []
    yield configs
    for cfg in reversed(configs):
        (websocket_server_clear if cfg["ref"] < 0 else websocket_client_clear)(cfg)


def _server(cleanup, **options: Any) -> dict:
    cfg = websocket_server({"port": 0, **options})
    cleanup.append(cfg)
    assert websocket_server_start(cfg)["success"]
    return cfg


def _client(cleanup, server: dict, **options: Any) -> dict:
    cfg = websocket_client({"url": f"ws://127.0.0.1:{server['port']}/",
                            "enableAutomaticReconnection": False, **options})
    cleanup.append(cfg)
    assert websocket_client_start(cfg)["success"]
    return cfg


def _drain_until(fetch: Callable[..., list], cfg: dict, predicate: Callable[[list], bool]) -> list:
    seen: list = []
    for _ in range(100):
        seen += fetch(cfg, timeout=TIMEOUT / 100)
        if predicate(seen):
            return seen
    raise AssertionError(f"not seen in {TIMEOUT} s: {seen}")


# ------------------------------------------------------- the 4D-style script


def test_4d_style_script_runs_unchanged(tmp_path):
    """tests/plugin_script_4d.py is a 4D program ported line by line: run as a
    script, its bare method name is found in __main__ and called with seven
    arguments on the worker thread it names."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, "plugin_script_4d.py")],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    server_ref, port = report["server"]["ref"], report["server"]["port"]
    assert report["server_start"] == {"success": True, "message": ""}
    assert server_ref < 0 and port > 0  # the dict the script holds shows the bound port
    assert report["client_start"] == [True, True]
    assert report["clients"] == [1, 2]
    assert report["client_send"]["success"] and report["client_send"]["payloadSize"] == 6
    assert [r["client"] for r in report["send_all"]] == [1, 2]
    assert [r["client"] for r in report["send_some"]] == [1]  # server_copy["clients"]

    calls = report["calls"]
    assert all(len(c["args"]) == 7 for c in calls)
    assert {c["thread"] for c in calls} == {"worker_ws"} != {report["main_thread"]}
    by_side = {"server": [c["args"] for c in calls if c["args"][0] == server_ref],
               "client": [c["args"] for c in calls if c["args"][0] == 0]}
    assert len(by_side["server"]) + len(by_side["client"]) == len(calls)
    # Server events: (server ref, connection id, type, JSON, worker, window, process).
    assert [a[2] for a in by_side["server"]] == ["open", "open", "message", "close", "close"]
    assert {(a[4], a[5], a[6]) for a in by_side["server"]} == {("worker_ws", 7, 9)}
    hello = by_side["server"][2]
    assert hello[1] == 1 and json.loads(hello[3]) == {"wireSize": 6, "binary": False, "data": "Hello!"}
    assert json.loads(by_side["server"][0][3])["uri"] == "/chat"
    # Client events: (0, the client's ref, ...) with the client's own window and process.
    client_ref = report["client_stop"]["ref"]
    assert [a[2] for a in by_side["client"]] == ["open", "message", "message", "close"]
    assert {(a[0], a[1], a[4], a[5], a[6]) for a in by_side["client"]} == {(0, client_ref, "worker_ws", 1, 2)}
    assert [json.loads(a[3])["data"] for a in by_side["client"][1:3]] == ["to all", "to some"]
    assert json.loads(by_side["client"][3][3])["code"] == 1000

    # The client without a method: its events came from Websocket client messages.
    queued = report["messages_b"]
    assert [m["type"] for m in queued] == ["open", "message"]
    assert queued[1]["context"] == {"wireSize": 6, "binary": False, "data": "to all"}
    assert {(m["server"], m["client"]) for m in queued} == {(0, client_ref + 1)}

    assert report["client_stop"]["url"] == f"ws://127.0.0.1:{port}/chat"
    assert report["server_stop"]["ref"] == server_ref and report["server_stop"]["port"] == port
    assert report["server_stop"]["worker"] == "worker_ws" and report["server_stop"]["method"] == "WS_callback"
    assert "disablePerMessageDeflate" not in report["server_stop"]
    assert report["server_stop"]["perMessageDeflate"]["enabled"] is True
    assert report["client_clear"] == [{}, {}] and report["server_clear"] == {}
    assert "no websocket server with ref" in report["after_clear"]


# ------------------------------------------------------------- method names


def test_bare_method_name_is_looked_up_in_main_with_a_clear_error():
    with pytest.raises(ValueError) as info:
        websocket_server({"port": 0, "method": "No_such_method_anywhere"})
    message = str(info.value)
    assert "'No_such_method_anywhere'" in message and "'__main__'" in message and "'module'" in message


def test_bare_method_name_in_the_module_option(cleanup):
    with pytest.raises(ValueError, match=r"no function 'absent' in module 'json'"):
        websocket_server({"port": 0, "method": "absent", "module": "json"})
    before = len(recorded.items)
    server = _server(cleanup, method="ws_method", module=__name__)
    client = _client(cleanup, server)
    websocket_client_send(client, "by name")
    recorded.wait_for(lambda items: any(c["args"][2] == "message" for c in items[before:]))
    assert websocket_server_stop(server)["method"] == "ws_method"


def test_method_set_by_a_later_command_takes_the_events(cleanup):
    """As the plugin, each command re-reads method/worker/window/process."""
    calls = Calls()
    server = _server(cleanup)
    client = _client(cleanup, server)
    _drain_until(websocket_server_messages, server, lambda seen: any(m["type"] == "open" for m in seen))
    server["method"], server["window"] = calls, 42
    websocket_server_send(server, "switch")  # this command hands the new method over
    websocket_client_send(client, "after")
    got = calls.wait_for(lambda items: any(c["args"][2] == "message" for c in items))
    assert got[0]["args"][:3] == (server["ref"], 1, "message") and got[0]["args"][5] == 42
    assert websocket_server_messages(server) == []


# ------------------------------------------------------------- worker threads


def test_one_named_thread_per_worker_in_order(cleanup):
    shared, other = Calls(), Calls()
    server = _server(cleanup, method=shared, worker="plugin-shared")
    client = _client(cleanup, server, method=shared, worker="plugin-shared")
    lone = _client(cleanup, server, method=other, worker="plugin-other")
    count = 200
    for i in range(count):
        websocket_client_send(client, f"m{i}")
        websocket_server_send(server, f"s{i}")
    shared.wait_for(lambda items: sum(c["args"][2] == "message" and c["args"][0] == 0 for c in items) == count
                    and sum(c["args"][2] == "message" and c["args"][0] != 0 for c in items) == count)
    other.wait_for(lambda items: sum(c["args"][2] == "message" for c in items) == count)
    # Both objects naming "plugin-shared" ran on one thread of that name ...
    assert {(c["thread"], c["ident"]) for c in shared.items} == {("plugin-shared", shared.items[0]["ident"])}
    assert {c["thread"] for c in other.items} == {"plugin-other"}
    assert other.items[0]["ident"] != shared.items[0]["ident"]
    # ... in the order the events came.
    to_server = [json.loads(c["args"][3])["data"] for c in shared.of_type("message") if c["args"][0] != 0]
    to_client = [json.loads(c["args"][3])["data"] for c in shared.of_type("message") if c["args"][0] == 0]
    assert to_server == [f"m{i}" for i in range(count)]
    assert to_client == [f"s{i}" for i in range(count)]


def test_worker_thread_ends_with_its_last_object():
    def alive(name: str) -> List[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == name]

    first = websocket_server({"port": 0, "method": Calls(), "worker": "plugin-ends"})
    second = websocket_client({"url": "ws://127.0.0.1:9/", "method": Calls(), "worker": "plugin-ends"})
    assert len(alive("plugin-ends")) == 1
    websocket_server_clear(first)
    assert len(alive("plugin-ends")) == 1  # still used by the client
    (thread,) = alive("plugin-ends")
    websocket_client_clear(second)
    thread.join(TIMEOUT)
    assert not thread.is_alive()


# ---------------------------------------------------------- context as JSON


def test_binary_payloads_are_base64_in_the_json_context(cleanup):
    calls = Calls()
    server = _server(cleanup, method=calls)
    client = _client(cleanup, server)
    websocket_client_send(client, b"\xff\x00\x80")
    websocket_client_send(client, "text é")
    got = calls.wait_for(lambda items: sum(c["args"][2] == "message" for c in items) == 2)
    contexts = [json.loads(c["args"][3]) for c in got if c["args"][2] == "message"]
    assert contexts[0] == {"wireSize": 3, "binary": True, "data": "/wCA", "encoding": "base64"}
    assert contexts[1] == {"wireSize": 7, "binary": False, "data": "text é"}
    # And a queued event's context is that JSON, parsed.
    websocket_server_send(server, b"\x01\x02")
    queued = _drain_until(websocket_client_messages, client, lambda seen: any(m["type"] == "message" for m in seen))
    assert [m["context"] for m in queued if m["type"] == "message"] == [
        {"wireSize": 2, "binary": True, "data": "AQI=", "encoding": "base64"}]


# ------------------------------------------------------ configuration objects


def test_start_shows_the_bound_port_and_stop_returns_the_configuration(cleanup):
    server = websocket_server({"port": 0})
    cleanup.append(server)
    assert server["port"] == 0
    assert websocket_server_start(server)["success"]
    assert server["port"] > 0
    stopped = websocket_server_stop(server)
    assert stopped == server
    assert websocket_server_start(stopped)["success"]  # restartable with what stop returned


def test_a_returned_configuration_builds_an_equal_object(cleanup):
    options = {"port": 0, "host": "127.0.0.1", "backlog": 7, "maxConnections": 3, "method": ws_method,
               "worker": "plugin-copy", "window": 5, "process": 6, "pingInterval": 30,
               "perMessageDeflate": {"serverMaxWindowBits": 12}, "disablePerMessageDeflate": False}
    first = websocket_server(options)
    cleanup.append(first)
    second = websocket_server(first)
    cleanup.append(second)
    assert second["ref"] != first["ref"]
    assert {k: v for k, v in second.items() if k != "ref"} == {k: v for k, v in first.items() if k != "ref"}

    as_json = json.loads(json.dumps(config_to_json(first)))
    assert as_json["method"] == f"{__name__}:ws_method"
    third = websocket_server(as_json)
    cleanup.append(third)
    assert third["method"] == f"{__name__}:ws_method"
    assert {k: v for k, v in third.items() if k not in ("ref", "method")} == {
        k: v for k, v in first.items() if k not in ("ref", "method")}

    client = websocket_client({"url": "ws://127.0.0.1:9/x", "timeout": 3, "worker": "plugin-copy"})
    cleanup.append(client)
    again = websocket_client(json.loads(json.dumps(config_to_json(client))))
    cleanup.append(again)
    assert {k: v for k, v in again.items() if k != "ref"} == {k: v for k, v in client.items() if k != "ref"}


def test_config_to_json_refuses_a_method_without_a_name(cleanup):
    server = websocket_server({"port": 0, "method": lambda *args: None})
    cleanup.append(server)
    with pytest.raises(ValueError, match="'method'"):
        config_to_json(server)
    with pytest.raises(ValueError, match="'window'"):
        config_to_json({"ref": -99, "window": object()})


def test_deflate_keys_as_4d_code_sets_them(cleanup):
    both = websocket_client({"url": "ws://127.0.0.1:9/", "perMessageDeflate": {"enabled": True},
                             "disablePerMessageDeflate": False})
    cleanup.append(both)
    assert both["perMessageDeflate"]["enabled"] is True and "disablePerMessageDeflate" not in both
    off_twice = websocket_server({"port": 0, "perMessageDeflate": {"enabled": False},
                                  "disablePerMessageDeflate": True})
    cleanup.append(off_twice)
    assert off_twice["disablePerMessageDeflate"] is True and "perMessageDeflate" not in off_twice
    with pytest.raises(ValueError, match="'perMessageDeflate'.*'disablePerMessageDeflate'"):
        websocket_server({"port": 0, "perMessageDeflate": {"serverMaxWindowBits": 10},
                          "disablePerMessageDeflate": True})


def test_bad_options_name_the_key():
    with pytest.raises(ValueError, match="'bogus'.*ixws.plugin also takes: ref, worker, module"):
        websocket_server({"bogus": 1})
    with pytest.raises(TypeError, match="'worker'"):
        websocket_server({"worker": 3})
    with pytest.raises(ValueError, match="'timeout'"):
        websocket_client({"url": "ws://127.0.0.1:9/", "timeout": 0})


# ------------------------------------------------------------ send and clear


def test_server_send_targets_the_clients_of_the_configuration(cleanup):
    server = _server(cleanup)
    one = _client(cleanup, server)
    two = _client(cleanup, server)
    ids = websocket_server_clients(server)
    assert ids == [1, 2]
    target = dict(server, clients=[1.0])  # as a 4D collection holds numbers
    assert [r["client"] for r in websocket_server_send(target, "only one")] == [1]
    assert [r["client"] for r in websocket_server_send(server, "all")] == [1, 2]
    data = lambda seen: [m["context"]["data"] for m in seen if m["type"] == "message"]  # noqa: E731
    assert data(_drain_until(websocket_client_messages, one, lambda s: "all" in data(s))) == ["only one", "all"]
    assert data(_drain_until(websocket_client_messages, two, lambda s: "all" in data(s))) == ["all"]
    with pytest.raises(TypeError, match="'clients'"):
        websocket_server_send(dict(server, clients="1"), "x")


def test_clear_disposes_of_the_ref(cleanup):
    server = _server(cleanup)
    port = server["port"]
    client = _client(cleanup, server)
    assert websocket_client_clear(client) == {}
    with pytest.raises(LookupError, match="no websocket client with ref"):
        websocket_client_send(client, "x")
    assert websocket_server_clear(server) == {}
    assert websocket_server_clear(server) == {}  # a second clear does nothing
    with pytest.raises(LookupError):
        websocket_server_clients(server["ref"])
    # The port is free again: the server was stopped and closed, not just forgotten.
    again = _server(cleanup, port=port)
    assert again["port"] == port


def test_a_ref_of_the_other_kind_is_refused(cleanup):
    server = websocket_server({"port": 0})
    cleanup.append(server)
    with pytest.raises(LookupError, match="is a websocket server, not a client"):
        websocket_client_start(server)
    with pytest.raises(LookupError, match="is a websocket server, not a client"):
        websocket_client_stop(server["ref"])


def test_client_start_takes_the_timeout_of_the_configuration(cleanup):
    """A server that accepts the TCP connection and never answers: the first
    attempt ends after the configuration's "timeout", not the 20 s default."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        client = websocket_client({"url": f"ws://127.0.0.1:{silent.getsockname()[1]}/", "timeout": 1,
                                   "enableAutomaticReconnection": False})
        cleanup.append(client)
        began = time.monotonic()
        result = websocket_client_start(client)
        elapsed = time.monotonic() - began
    assert result["success"] is False
    assert elapsed < 10, elapsed


def test_an_exception_in_a_worker_callback_is_logged_and_the_worker_goes_on(cleanup, caplog):
    calls = Calls()

    def failing(*args: Any) -> None:
        calls(*args)
        if args[2] == "message" and json.loads(args[3])["data"] == "boom":
            raise RuntimeError("callback failed")

    server = _server(cleanup, method=failing, worker="plugin-failing")
    client = _client(cleanup, server)
    with caplog.at_level("ERROR", logger="ixws"):
        websocket_client_send(client, "boom")
        websocket_client_send(client, "after")
        calls.wait_for(lambda items: sum(c["args"][2] == "message" for c in items) == 2)
        # The record is written by the worker before it takes the next callback.
    assert any("plugin-failing" in r.getMessage() and r.exc_info and "callback failed" in str(r.exc_info[1])
               for r in caplog.records)
    assert {c["thread"] for c in calls.items} == {"plugin-failing"}
