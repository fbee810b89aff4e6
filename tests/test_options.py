"""Option validation of ixws.Server / ixws.Client (DESIGN.md section 2).

unknown key -> ValueError listing the valid keys; wrong type -> TypeError naming
the key; out of range -> ValueError; camelCase dict and snake_case keywords,
the same key both ways -> error; `method` as a callable or "pkg.module:function".
"""
from __future__ import annotations

import os
import sys

import pytest

import ixws
from ixws import _options
from ixws._options import CLIENT_KEYS, SERVER_KEYS, camel_to_snake, client_options, server_options

sys.path.insert(0, os.path.dirname(__file__))

URL = "ws://127.0.0.1:9/"


def srv(options=None, **kw):
    return server_options(options, kw)


def cli(options=None, **kw):
    opts = dict(options or {})
    if "url" not in opts and "url" not in kw:
        opts["url"] = URL
    return client_options(opts, kw)


# ----------------------------------------------------------------- defaults


def test_server_defaults_are_upstreams():
    cfg = srv()
    assert cfg == {
        "method": None,
        "window": None,
        "process": None,
        "port": 8080,
        "host": "127.0.0.1",
        "backlog": 511,  # not upstream's 5: see README, "Options and their defaults"
        "maxConnections": 128,
    }


def test_client_defaults_are_upstreams():
    cfg = cli()
    assert cfg == {
        "method": None,
        "window": None,
        "process": None,
        "url": URL,
        "pingInterval": -1,
        "pingTimeout": -1,
        "enableAutomaticReconnection": True,
        "enablePong": True,
    }


def test_server_object_config_holds_ref_and_options():
    def on_event(ev):
        pass

    with ixws.Server({"port": 8008, "host": "127.0.0.1", "backlog": 5, "maxConnections": 128,
                      "method": on_event, "window": 7, "process": 9}) as s:
        cfg = s.config
        assert cfg["ref"] < 0
        assert cfg == {"ref": cfg["ref"], "port": 8008, "host": "127.0.0.1", "backlog": 5,
                       "maxConnections": 128, "method": on_event, "window": 7, "process": 9}
        # config is a copy
        cfg["port"] = 1
        assert s.config["port"] == 8008


def test_refs_servers_negative_clients_positive():
    with ixws.Server(port=0) as a, ixws.Server(port=0) as b:
        assert a.config["ref"] < 0 and b.config["ref"] < 0
        assert b.config["ref"] == a.config["ref"] - 1
    with ixws.Client(url=URL) as c, ixws.Client(url=URL) as d:
        assert c.config["ref"] > 0
        assert d.config["ref"] == c.config["ref"] + 1


# -------------------------------------------------------------- unknown keys


@pytest.mark.parametrize("factory,keys", [(srv, SERVER_KEYS), (cli, CLIENT_KEYS)])
def test_unknown_key_lists_valid_keys(factory, keys):
    with pytest.raises(ValueError) as exc:
        factory({"nope": 1})
    msg = str(exc.value)
    assert "'nope'" in msg
    for key in keys:
        assert key in msg


@pytest.mark.parametrize("factory", [srv, cli])
def test_unknown_keyword(factory):
    with pytest.raises(ValueError, match="'bogus_option'"):
        factory(bogus_option=1)


def test_snake_case_in_dict_is_unknown_with_hint():
    with pytest.raises(ValueError, match="did you mean 'maxConnections'"):
        srv({"max_connections": 3})


def test_server_only_and_client_only_keys():
    with pytest.raises(ValueError, match="'url'"):
        srv({"url": URL})
    with pytest.raises(ValueError, match="'backlog'"):
        cli({"backlog": 3})
    with pytest.raises(ValueError, match="'pingTimeout'"):
        srv({"pingTimeout": 3})
    with pytest.raises(ValueError, match="'onHandshake'"):
        cli({"onHandshake": print})


def test_options_must_be_a_mapping():
    with pytest.raises(TypeError):
        srv([("port", 1)])
    with pytest.raises(TypeError):
        ixws.Server("port=1")
    with pytest.raises(TypeError):
        srv({1: 2})


# ---------------------------------------------------------- snake_case / both


def test_camel_to_snake():
    assert camel_to_snake("maxConnections") == "max_connections"
    assert camel_to_snake("minWaitBetweenReconnectionRetries") == "min_wait_between_reconnection_retries"
    assert camel_to_snake("port") == "port"


@pytest.mark.parametrize("key", sorted(SERVER_KEYS))
def test_every_server_key_has_a_snake_case_keyword(key):
    value = _valid_server_value(key)
    assert srv(**{camel_to_snake(key): value})[key] == srv({key: value})[key]


@pytest.mark.parametrize("key", sorted(CLIENT_KEYS))
def test_every_client_key_has_a_snake_case_keyword(key):
    value = _valid_client_value(key)
    assert cli(**{camel_to_snake(key): value})[key] == cli({key: value})[key]


def test_same_key_both_ways_is_an_error():
    with pytest.raises(ValueError, match="given twice"):
        srv({"maxConnections": 3}, max_connections=4)
    with pytest.raises(ValueError, match="given twice"):
        srv({"port": 3}, port=3)
    with pytest.raises(ValueError, match="given twice"):
        srv(maxConnections=3, max_connections=4)
    with pytest.raises(ValueError, match="given twice"):
        cli({"pingInterval": 3}, ping_interval=4)
    with pytest.raises(ValueError, match="given twice"):
        ixws.Server({"port": 0}, port=0)


def test_keywords_on_the_objects():
    with ixws.Server(port=0, max_connections=3, backlog=2) as s:
        assert s.config["maxConnections"] == 3 and s.config["backlog"] == 2
    with ixws.Client(url=URL, ping_interval=5, enable_automatic_reconnection=False) as c:
        assert c.config["pingInterval"] == 5
        assert c.config["enableAutomaticReconnection"] is False


# -------------------------------------------------------------- types/ranges


def _valid_server_value(key):
    return {
        "method": print, "window": 1, "process": 2, "port": 1234, "host": "127.0.0.1",
        "backlog": 3, "maxConnections": 4, "handshakeTimeout": 5, "pingInterval": 6,
        "enablePong": False, "perMessageDeflate": {"enabled": True},
        "disablePerMessageDeflate": True, "maxMessageSize": 1024,
        "tls": {"certFile": __file__, "keyFile": __file__, "caFile": "NONE"},
        "subprotocols": ["chat"], "onHandshake": print,
        "sendBufferLimit": 65536, "onSlowConsumer": "block", "sendTimeout": 2.5,
        "maxPendingHandshakes": 8,
    }[key]


def _valid_client_value(key):
    return {
        "method": print, "window": 1, "process": 2, "url": "ws://127.0.0.1:8008/x",
        "pingInterval": 6, "pingTimeout": 7, "enableAutomaticReconnection": False,
        "enablePong": False, "perMessageDeflate": {"enabled": True},
        "disablePerMessageDeflate": True, "extraHeaders": {"X-A": "b"},
        "subprotocols": ["chat"], "handshakeTimeout": 5,
        "minWaitBetweenReconnectionRetries": 2, "maxWaitBetweenReconnectionRetries": 30,
        "tls": {"caFile": "NONE"}, "maxMessageSize": 1024,
        "sendBufferLimit": 65536, "onSlowConsumer": "close", "sendTimeout": 1,
    }[key]


INT_KEYS_SERVER = ["port", "backlog", "maxConnections", "handshakeTimeout", "pingInterval", "maxMessageSize"]
INT_KEYS_CLIENT = ["pingInterval", "pingTimeout", "handshakeTimeout", "minWaitBetweenReconnectionRetries",
                   "maxWaitBetweenReconnectionRetries", "maxMessageSize"]
BOOL_KEYS_SERVER = ["enablePong", "disablePerMessageDeflate"]
BOOL_KEYS_CLIENT = ["enableAutomaticReconnection", "enablePong", "disablePerMessageDeflate"]


@pytest.mark.parametrize("key", INT_KEYS_SERVER)
@pytest.mark.parametrize("bad", ["1", 1.0, None, True, False, [1]])
def test_server_int_keys_reject_other_types(key, bad):
    with pytest.raises(TypeError, match=repr(key)):
        srv({key: bad})


@pytest.mark.parametrize("key", INT_KEYS_CLIENT)
@pytest.mark.parametrize("bad", ["1", 1.5, None, True, [1]])
def test_client_int_keys_reject_other_types(key, bad):
    with pytest.raises(TypeError, match=repr(key)):
        cli({key: bad})


@pytest.mark.parametrize("key", BOOL_KEYS_SERVER)
@pytest.mark.parametrize("bad", [1, 0, "true", None])
def test_server_bool_keys_reject_other_types(key, bad):
    with pytest.raises(TypeError, match=repr(key)):
        srv({key: bad})


@pytest.mark.parametrize("key", BOOL_KEYS_CLIENT)
@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_client_bool_keys_reject_other_types(key, bad):
    with pytest.raises(TypeError, match=repr(key)):
        cli({key: bad})


@pytest.mark.parametrize("key,value", [
    ("port", -1), ("port", 65536), ("port", 10**9), ("backlog", -1), ("maxConnections", 0),
    ("maxConnections", -5), ("handshakeTimeout", 0), ("handshakeTimeout", -1),
    ("pingInterval", -2), ("maxMessageSize", -1), ("host", ""),
])
def test_server_out_of_range(key, value):
    with pytest.raises(ValueError, match=repr(key)):
        srv({key: value})


@pytest.mark.parametrize("key,value", [("port", 0), ("port", 65535), ("backlog", 0), ("maxConnections", 1),
                                       ("pingInterval", -1), ("pingInterval", 0), ("maxMessageSize", 0),
                                       ("handshakeTimeout", 1)])
def test_server_boundaries_accepted(key, value):
    assert srv({key: value})[key] == value


@pytest.mark.parametrize("key,value", [
    ("pingInterval", -2), ("pingTimeout", -3), ("handshakeTimeout", 0),
    ("minWaitBetweenReconnectionRetries", -1), ("maxWaitBetweenReconnectionRetries", -1),
    ("minWaitBetweenReconnectionRetries", 2**32), ("maxWaitBetweenReconnectionRetries", 2**32),
    ("maxMessageSize", -1),
])
def test_client_out_of_range(key, value):
    with pytest.raises(ValueError, match=repr(key)):
        cli({key: value})


def test_client_min_wait_must_not_exceed_max_wait():
    with pytest.raises(ValueError, match="minWaitBetweenReconnectionRetries"):
        cli({"minWaitBetweenReconnectionRetries": 500, "maxWaitBetweenReconnectionRetries": 100})
    with pytest.raises(ValueError):
        cli({"minWaitBetweenReconnectionRetries": 20000})  # default max is 10000
    cfg = cli({"minWaitBetweenReconnectionRetries": 100, "maxWaitBetweenReconnectionRetries": 100})
    assert cfg["minWaitBetweenReconnectionRetries"] == 100


def test_host_must_be_str():
    with pytest.raises(TypeError, match="'host'"):
        srv({"host": 127})


def test_window_and_process_are_opaque():
    marker = object()
    cfg = srv({"window": marker, "process": [1, 2]})
    assert cfg["window"] is marker and cfg["process"] == [1, 2]
    assert cli(window="w", process=None)["window"] == "w"


# ----------------------------------------------------------------------- url


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8008/chat", "wss://example.com/", "ws://[::1]:80/x?y=1",
                                 "ws://localhost"])
def test_client_url_accepted(url):
    assert cli({"url": url})["url"] == url


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "127.0.0.1:8008", "ws://", "ws://host:99999/",
                                 "ws://host:abc/", "", "ftp://x/", "ws://host:0/"])
def test_client_bad_url(url):
    with pytest.raises(ValueError, match="'url'"):
        cli({"url": url})


def test_client_url_type_and_required():
    with pytest.raises(TypeError, match="'url'"):
        cli({"url": b"ws://127.0.0.1/"})
    with pytest.raises(ValueError, match="'url' is required"):
        client_options({}, {})
    with pytest.raises(ValueError, match="'url' is required"):
        ixws.Client()


# -------------------------------------------------------- perMessageDeflate


def test_deflate_dict_filled_with_defaults():
    cfg = cli({"perMessageDeflate": {"enabled": True, "serverMaxWindowBits": 9}})
    assert cfg["perMessageDeflate"] == {
        "enabled": True, "clientNoContextTakeover": False, "serverNoContextTakeover": False,
        "clientMaxWindowBits": 15, "serverMaxWindowBits": 9,
    }
    # enabled defaults to True when a dict is given
    assert cli({"perMessageDeflate": {}})["perMessageDeflate"]["enabled"] is True


def test_deflate_bool_shorthand():
    assert cli({"perMessageDeflate": True})["perMessageDeflate"]["enabled"] is True
    assert srv({"perMessageDeflate": False})["perMessageDeflate"]["enabled"] is False


def test_deflate_full_seed_dict():
    d = {"enabled": True, "clientNoContextTakeover": True, "serverNoContextTakeover": True,
         "serverMaxWindowBits": 8, "clientMaxWindowBits": 15}
    assert cli({"perMessageDeflate": d})["perMessageDeflate"] == d


@pytest.mark.parametrize("bits", [8, 9, 12, 15])
def test_deflate_window_bits_in_range(bits):
    cfg = cli({"perMessageDeflate": {"clientMaxWindowBits": bits, "serverMaxWindowBits": bits}})
    assert cfg["perMessageDeflate"]["clientMaxWindowBits"] == bits


@pytest.mark.parametrize("key", ["clientMaxWindowBits", "serverMaxWindowBits"])
@pytest.mark.parametrize("bits", [7, 16, 0, -1])
def test_deflate_window_bits_out_of_range(key, bits):
    with pytest.raises(ValueError, match=key):
        cli({"perMessageDeflate": {key: bits}})
    with pytest.raises(ValueError, match=key):
        srv({"perMessageDeflate": {key: bits}})


@pytest.mark.parametrize("key,bad,exc", [
    ("enabled", 1, TypeError), ("clientNoContextTakeover", "no", TypeError),
    ("serverNoContextTakeover", None, TypeError), ("clientMaxWindowBits", 15.0, TypeError),
    ("serverMaxWindowBits", True, TypeError), ("clientMaxWindowBits", "15", TypeError),
])
def test_deflate_value_types(key, bad, exc):
    with pytest.raises(exc, match=key):
        cli({"perMessageDeflate": {key: bad}})


def test_deflate_unknown_nested_key_lists_valid():
    with pytest.raises(ValueError) as e:
        cli({"perMessageDeflate": {"level": 9}})
    for k in ("enabled", "clientNoContextTakeover", "serverNoContextTakeover",
              "clientMaxWindowBits", "serverMaxWindowBits"):
        assert k in str(e.value)


def test_deflate_nested_snake_case_and_both_ways():
    cfg = cli(per_message_deflate={"client_max_window_bits": 10})
    assert cfg["perMessageDeflate"]["clientMaxWindowBits"] == 10
    with pytest.raises(ValueError, match="twice"):
        cli({"perMessageDeflate": {"clientMaxWindowBits": 10, "client_max_window_bits": 11}})


@pytest.mark.parametrize("bad", ["yes", 1, [True], None])
def test_deflate_type(bad):
    with pytest.raises(TypeError, match="perMessageDeflate"):
        cli({"perMessageDeflate": bad})


@pytest.mark.parametrize("factory", [srv, cli])
@pytest.mark.parametrize("disable", [True, False])
def test_deflate_exclusive_with_disable(factory, disable):
    with pytest.raises(ValueError, match="mutually exclusive"):
        factory({"perMessageDeflate": {"enabled": True}, "disablePerMessageDeflate": disable})
    with pytest.raises(ValueError, match="mutually exclusive"):
        factory({"perMessageDeflate": {"enabled": True}}, disable_per_message_deflate=disable)


# ------------------------------------------------------------------- extras


def test_tls_dict():
    cfg = srv({"tls": {"certFile": __file__, "keyFile": __file__, "caFile": "NONE", "ciphers": "DEFAULT",
                       "tls": True, "disableHostnameValidation": False}})
    assert cfg["tls"]["caFile"] == "NONE"
    assert cli(tls={"ca_file": "NONE"})["tls"] == {"caFile": "NONE"}


@pytest.mark.parametrize("bad,exc", [
    ("yes", TypeError), ({"certFile": 1, "keyFile": "k"}, TypeError), ({"tls": "1"}, TypeError),
    ({"ca": "x"}, ValueError), ({"certFile": "c.pem"}, ValueError), ({"keyFile": "k.pem"}, ValueError),
])
def test_tls_invalid(bad, exc):
    with pytest.raises(exc, match="tls"):
        srv({"tls": bad})


@pytest.mark.parametrize("factory", [srv, cli])
def test_subprotocols(factory):
    assert factory(subprotocols=("chat", "v2.json"))["subprotocols"] == ["chat", "v2.json"]
    with pytest.raises(TypeError, match="subprotocols"):
        factory({"subprotocols": "chat"})
    with pytest.raises(TypeError, match="subprotocols"):
        factory({"subprotocols": [1]})
    with pytest.raises(ValueError, match="subprotocols"):
        factory({"subprotocols": ["a b"]})
    with pytest.raises(ValueError, match="subprotocols"):
        factory({"subprotocols": ["a,b"]})
    with pytest.raises(ValueError, match="subprotocols"):
        factory({"subprotocols": [""]})


def test_extra_headers():
    assert cli(extra_headers={"Authorization": "Bearer x"})["extraHeaders"] == {"Authorization": "Bearer x"}
    with pytest.raises(TypeError, match="extraHeaders"):
        cli({"extraHeaders": [("a", "b")]})
    with pytest.raises(TypeError, match="extraHeaders"):
        cli({"extraHeaders": {"a": 1}})
    with pytest.raises(ValueError, match="extraHeaders"):
        cli({"extraHeaders": {"Bad Name": "x"}})
    with pytest.raises(ValueError, match="extraHeaders"):
        cli({"extraHeaders": {"X": "a\r\nInjected: 1"}})


def test_on_handshake():
    assert srv(on_handshake=print)["onHandshake"] is print
    assert srv({"onHandshake": "optmod_helper:on_event"})["onHandshake"] == "optmod_helper:on_event"
    with pytest.raises(TypeError, match="onHandshake"):
        srv({"onHandshake": 3})


# -------------------------------------------------------------------- method


def test_method_callable_and_none():
    assert srv({"method": print})["method"] is print
    assert srv({"method": None})["method"] is None


def test_method_string_resolution():
    import optmod_helper

    assert _options.resolve_method("optmod_helper:on_event") is optmod_helper.on_event
    assert _options.resolve_method("optmod_helper:Handlers.nested") is optmod_helper.Handlers.nested
    assert _options.resolve_method("os.path:join") is os.path.join
    # the object keeps the given string in config and uses the resolved function
    with ixws.Server(port=0, method="optmod_helper:on_event") as s:
        assert s.config["method"] == "optmod_helper:on_event"
        assert s._method is optmod_helper.on_event


@pytest.mark.parametrize("name", ["optmod_helper", "optmod_helper:", ":on_event", "optmod_helper.on_event",
                                  "no_such_module_xyz:f", "optmod_helper:missing", "optmod_helper:Handlers.nope"])
def test_method_bad_strings(name):
    with pytest.raises(ValueError, match="'method'"):
        srv({"method": name})


def test_method_not_callable():
    with pytest.raises(TypeError, match="'method'"):
        srv({"method": "optmod_helper:NOT_CALLABLE"})
    with pytest.raises(TypeError, match="'method'"):
        cli({"method": 42})


# ------------------------------------------------------- engine extensions


def test_extension_options_rejected_without_extensions():
    _options.check_extensions({"maxMessageSize": 0, "pingTimeout": -1}, False, "system")
    with pytest.raises(ValueError, match="maxMessageSize"):
        _options.check_extensions({"maxMessageSize": 10}, False, "system")
    with pytest.raises(ValueError, match="pingTimeout"):
        _options.check_extensions({"pingTimeout": 10}, False, "system")
    _options.check_extensions({"maxMessageSize": 10, "pingTimeout": 10}, True, "bundled")


@pytest.mark.engine_extension
def test_extension_options_accepted_by_bundled_engine():
    with ixws.Server(port=0, max_message_size=1 << 20) as s:
        assert s.config["maxMessageSize"] == 1 << 20
    with ixws.Client(url=URL, ping_timeout=5, max_message_size=100) as c:
        assert c.config["pingTimeout"] == 5


def test_engine_info():
    info = ixws.engine_info()
    assert info["engine"] in ("bundled", "system")
    assert isinstance(info["version"], str) and info["version"]
    assert isinstance(info["extensions"], bool)
