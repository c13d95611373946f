"""Fixtures for the Coral tests; the helpers and what they build are in coral_support.py."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from coral_support import (
    CORAL_PKG,
    HOST_ZIG,
    REPO,
    RUNTIME_SRC,
    BuiltWheels,
    Env,
    Release,
    Runtime,
    build_lib_wheel,
    build_pure_wheel,
    build_release,
    make_env,
    run,
    runtime_function_names,
    write_runtime_standin,
    zig_cc,
)


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """A local edgetpu_runtime_20221024.zip with upstream's layout (stand-in libraries)."""
    return build_release(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="session")
def host_wheels(release: Release, tmp_path_factory: pytest.TempPathFactory) -> BuiltWheels:
    """std and max lib wheels for linux-x86_64, through the whole pipeline (smoke included)."""
    base = tmp_path_factory.mktemp("edgeforge")
    std = build_lib_wheel("libedgetpu", "linux-x86_64", release, base / "std")
    mx = build_lib_wheel("libedgetpu-max", "linux-x86_64", release, base / "max")
    return BuiltWheels(std=std, max=mx, work=base)


@pytest.fixture(scope="session")
def plugin_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pure_wheel(CORAL_PKG, tmp_path_factory.mktemp("plugin-wheel"))


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    """tflite-edge: its wheel when wheels/tflite-edge builds one, else its source tree."""
    if not (RUNTIME_SRC / "tflite_edge" / "delegates.py").is_file():
        pytest.skip("tflite-edge's delegate plugin protocol (wheels/tflite-edge/src/"
                    "tflite_edge/delegates.py) is missing")
    if (REPO / "wheels" / "tflite-edge" / "pyproject.toml").is_file():
        wheel = build_pure_wheel(REPO / "wheels" / "tflite-edge",
                                 tmp_path_factory.mktemp("tflite-edge-wheel"))
        return Runtime(wheel=wheel, pythonpath=None)
    return Runtime(wheel=None, pythonpath=RUNTIME_SRC)


@pytest.fixture(scope="session")
def runtime_libs(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory
                 ) -> Callable[..., Path]:
    """``lib(version, zig_target=HOST_ZIG)``: a libtensorflowlite_c stand-in whose
    TfLiteVersion() is ``version`` (the TensorFlow-version rule reads only that)."""
    out_dir = tmp_path_factory.mktemp("runtime-standin")
    site = None
    if runtime.wheel is not None:
        site = out_dir / "site"
        run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site),
             str(runtime.wheel)])
    names = runtime_function_names(runtime, site)
    cache: dict[tuple[str, str], Path] = {}

    def lib(version: str, target: str = HOST_ZIG) -> Path:
        key = (version, target)
        if key not in cache:
            source = write_runtime_standin(names, version, out_dir)
            cache[key] = zig_cc(source, out_dir / target / version / "libtensorflowlite_c.so",
                                target, soname="libtensorflowlite_c.so")
        return cache[key]

    return lib


@pytest.fixture(scope="session")
def coral_env(tmp_path_factory: pytest.TempPathFactory, runtime: Runtime, plugin_wheel: Path,
              host_wheels: BuiltWheels) -> Env:
    """tflite-edge + tflite-edge-coral + the std lib wheel, installed by pip into a venv."""
    return make_env(tmp_path_factory.mktemp("venv") / "coral", runtime,
                    [plugin_wheel, host_wheels.std])
