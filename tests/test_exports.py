"""The public surface of ixws: what dir() and ``import *`` show is the API."""
from __future__ import annotations

import inspect

import ixws
import ixws.plugin

CORE = {"Server", "Client", "Event", "HandshakeRequest", "Headers", "engine_info", "set_inline_callbacks",
        "__version__"}

PLUGIN_COMMANDS = [
    "websocket_server", "websocket_client", "websocket_server_start", "websocket_client_start",
    "websocket_server_stop", "websocket_client_stop", "websocket_server_send", "websocket_client_send",
    "websocket_server_clear", "websocket_client_clear", "websocket_server_clients",
    "websocket_server_messages", "websocket_client_messages",
]


def test_dir_shows_only_the_public_api():
    assert dir(ixws) == sorted(ixws.__all__)
    assert CORE <= set(ixws.__all__)
    for helper in ("Any", "Dict", "annotations", "PackageNotFoundError", "_ixws", "_dispatch"):
        assert helper not in dir(ixws)


def test_every_public_name_exists_and_star_import_gives_exactly_them():
    namespace: dict = {}
    exec("from ixws import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(ixws.__all__)
    for name in ixws.__all__:
        assert getattr(ixws, name) is namespace[name]


def test_public_classes_and_functions_are_documented_ixws_objects():
    for name in ixws.__all__:
        obj = getattr(ixws, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("ixws"), name
            assert inspect.getdoc(obj), f"ixws.{name} has no docstring"
    assert isinstance(ixws.__version__, str) and ixws.__version__


def test_plugin_module_has_one_function_per_plugin_command():
    assert ixws.plugin.__all__ == [*PLUGIN_COMMANDS, "config_to_json"]
    assert dir(ixws.plugin) == sorted(ixws.plugin.__all__)
    for name in PLUGIN_COMMANDS:
        function = getattr(ixws.plugin, name)
        assert inspect.isfunction(function)
        # The docstring starts with the 4D command it ports ("Websocket server start").
        assert inspect.getdoc(function).startswith(name.replace("_", " ").capitalize()), name
