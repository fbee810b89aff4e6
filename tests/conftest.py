"""Shared pytest configuration.

Tests marked ``engine_extension`` need an extension of the bundled engine and
are skipped when _ixws was built against upstream IXWebSocket
(IXWS_ENGINE=system), where ``ixws.engine_info()["extensions"]`` is False.
"""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    try:
        import ixws

        extensions = bool(ixws.engine_info().get("extensions"))
    except Exception:  # the module is not built: let the imports fail loudly
        return
    if extensions:
        return
    skip = pytest.mark.skip(reason="needs an ixws engine extension (built with IXWS_ENGINE=system)")
    for item in items:
        if "engine_extension" in item.keywords:
            item.add_marker(skip)
