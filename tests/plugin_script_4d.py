"""A 4D program written against the WebSocket plugin, ported line by line to
ixws.plugin (run as a script by tests/test_plugin.py; prints one JSON report).

The 4D originals it follows: a server made with Websocket server ($o) whose
method names a project method, started, sent to all and then to the ids in a
copy of its configuration's "clients"; a client made, started, sending; the
messages of an object without a method; stop; clear.
"""
import json
import sys
import threading

from ixws.plugin import (websocket_client, websocket_client_clear, websocket_client_messages,
                         websocket_client_send, websocket_client_start, websocket_client_stop,
                         websocket_server, websocket_server_clear, websocket_server_clients,
                         websocket_server_messages, websocket_server_send, websocket_server_start,
                         websocket_server_stop)

TIMEOUT = 20.0
calls = []
calls_changed = threading.Condition()


def WS_callback(server, client, type, context, worker, window, process):  # noqa: A002 - 4D's $1..$7
    with calls_changed:
        calls.append({"args": [server, client, type, context, worker, window, process],
                      "thread": threading.current_thread().name})
        calls_changed.notify_all()


def wait_for(predicate):
    with calls_changed:
        if not calls_changed.wait_for(lambda: predicate(calls), TIMEOUT):
            sys.exit(f"timed out after {TIMEOUT} s; calls so far: {calls}")


def received(kind_server, text):
    return lambda seen: any(c["args"][2] == "message" and (c["args"][0] != 0) == kind_server
                            and json.loads(c["args"][3]).get("data") == text for c in seen)


report = {}

# $o:=New object; $o.worker:="worker_server"; $o.method:="WS_callback" ...
o = {"port": 0, "host": "127.0.0.1", "backlog": 5, "maxConnections": 16,
     "method": "WS_callback", "worker": "worker_ws", "window": 7, "process": 9,
     "perMessageDeflate": {"enabled": True, "clientNoContextTakeover": False,
                           "serverNoContextTakeover": False, "serverMaxWindowBits": 15,
                           "clientMaxWindowBits": 15},
     "disablePerMessageDeflate": False}
server = websocket_server(o)
status = websocket_server_start(server)
report["server_start"] = status
report["server"] = {"ref": server["ref"], "port": server["port"]}
if not status["success"]:
    print(json.dumps(report))
    sys.exit(1)

url = "ws://127.0.0.1:" + str(server["port"]) + "/chat"
client_a = websocket_client({"url": url, "method": "WS_callback", "worker": "worker_ws",
                             "enableAutomaticReconnection": False, "window": 1, "process": 2})
client_b = websocket_client({"url": url, "enableAutomaticReconnection": False})  # no method
report["client_start"] = [websocket_client_start(client_a)["success"],
                          websocket_client_start(client_b)["success"]]
wait_for(lambda seen: sum(1 for c in seen if c["args"][2] == "open" and c["args"][0] != 0) == 2)
report["clients"] = websocket_server_clients(server)

report["client_send"] = websocket_client_send(client_a, "Hello!")
wait_for(received(True, "Hello!"))

report["send_all"] = websocket_server_send(server, "to all")
server_copy = dict(server)  # $server:=OB Copy($server)
first = next(c for c in calls if c["args"][2] == "open" and c["args"][0] != 0)
server_copy["clients"] = [first["args"][1]]  # client_a's connection: it opened first
report["send_some"] = websocket_server_send(server_copy, "to some")
wait_for(received(False, "to some"))

# client_b has no method: its events wait for Websocket client messages.
messages_b = []
for _ in range(50):
    messages_b += websocket_client_messages(client_b, timeout=TIMEOUT / 50)
    if any(m["type"] == "message" and m["context"]["data"] == "to all" for m in messages_b):
        break
report["messages_b"] = messages_b

report["client_stop"] = websocket_client_stop(client_a)
wait_for(lambda seen: any(c["args"][2] == "close" and c["args"][0] == 0 for c in seen))
report["client_clear"] = [websocket_client_clear(client_a), websocket_client_clear(client_b)]
wait_for(lambda seen: sum(1 for c in seen if c["args"][2] == "close") == 3)
report["server_stop"] = websocket_server_stop(server)
report["server_clear"] = websocket_server_clear(server)
try:
    websocket_server_start(server)
    report["after_clear"] = "started"
except LookupError as exc:
    report["after_clear"] = str(exc)
with calls_changed:
    report["calls"] = list(calls)
report["main_thread"] = threading.current_thread().name
print(json.dumps(report))
