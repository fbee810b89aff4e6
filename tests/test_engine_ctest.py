"""The engine's C++ unit and loopback tests (ctest), built with ASan/UBSan.

They test the Sans-I/O core byte by byte and the I/O side through the public ix
API; running them here keeps them part of the one test command.
"""
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENGINE = ROOT / "extern" / "ixwebsocket"
BUILD = ROOT / "build" / "engine-asan"


def _tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (it comes with the 'test' extra)")
    return path


@pytest.mark.timeout(1200)
def test_engine_ctest_under_sanitizers():
    if not ENGINE.is_dir():
        pytest.skip("engine sources not present (installed package without the source tree)")
    cmake = _tool("cmake")
    _tool("ninja")
    env = dict(os.environ)
    # Leaks are errors; the process-wide client loop is reachable, not leaked.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    subprocess.run([cmake, "-S", str(ENGINE), "-B", str(BUILD), "-G", "Ninja",
                    "-DIXWS_SANITIZE=ON", "-DCMAKE_BUILD_TYPE=Debug"],
                   check=True, capture_output=True, text=True, env=env)
    build = subprocess.run([cmake, "--build", str(BUILD)], capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    test = subprocess.run(["ctest", "--test-dir", str(BUILD), "--output-on-failure", "--timeout", "300"],
                          capture_output=True, text=True, env=env)
    assert test.returncode == 0, test.stdout[-6000:] + test.stderr[-2000:]
    assert "100% tests passed" in test.stdout
