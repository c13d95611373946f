"""recipes/libedgetpu-source.toml: libedgetpu compiled against the runtime's TensorFlow pin.

libedgetpu's own source cannot be downloaded here (unpinned until `edgeforge lock`), so the
build itself is not run; what can be checked is: the recipe loads, every other source is
pinned and per-architecture libusb trees have the files the CMake build reads, the patch that
adds the CMake build applies, and a normal build refuses the unpinned source."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from coral_support import RECIPES, edgeforge

from edgeforge.fetch import FetchOptions, default_cache_dir, fetch_source, prepare_source
from edgeforge.log import Logger
from edgeforge.recipe import resolve_recipe

TRIPLETS = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
            "armv7l": "arm-linux-gnueabihf", "armv6l": "arm-linux-gnueabihf"}


def test_recipe_pins_everything_but_libedgetpu() -> None:
    recipe = resolve_recipe("libedgetpu-source")
    assert recipe.cmake is not None and recipe.cmake.source == "libedgetpu"
    for source in recipe.sources:
        (location,) = source.locations
        if source.name == "libedgetpu":
            assert location.sha256 is None
            assert location.url is not None and "google-coral/libedgetpu" in location.url
        else:
            assert location.sha256 is not None, source.name
            assert location.debian_pool is not None, source.name
    tf = recipe.source("tensorflow").locations[0]
    assert tf.debian_pool == "t/tensorflow/tensorflow_2.14.1+dfsg.orig.tar.xz"
    info = json.loads((RECIPES / "coral-lib/build-info/source-tf2.14.1-std.json").read_text())
    assert info["tensorflow"] == "2.14.1" and info["variant"] == "std"
    assert recipe.wheel.distribution == "tflite-edge-coral-lib"


@pytest.mark.parametrize("arch", sorted(TRIPLETS))
def test_each_arch_gets_its_libusb(arch: str) -> None:
    recipe = resolve_recipe("libedgetpu-source")
    assert recipe.cmake is not None
    names = {s.name for s in recipe.sources_for(arch, "glibc")}
    defines = recipe.cmake.arch_defines[arch]
    for key in ("LIBUSB_INCLUDE_ROOT", "LIBUSB_LIBRARY_ROOT"):
        assert defines[key].removeprefix("{source:").removesuffix("}") in names
    assert not any(s.name.startswith("libusb") for s in recipe.sources_for(arch, "musl"))


def test_libusb_debs_hold_what_the_cmake_build_reads(tmp_path: Path) -> None:
    """Fetch (small, pinned Debian .debs) and extract the aarch64 libusb trees."""
    recipe = resolve_recipe("libedgetpu-source")
    opts = FetchOptions(cache_dir=default_cache_dir())
    trees = {}
    for source in recipe.sources_for("aarch64", "glibc"):
        if source.name.startswith("libusb"):
            trees[source.name] = prepare_source(source, fetch_source(source, opts, Logger()),
                                                opts, Logger())
    assert (trees["libusb-dev-arm64"] / "include/libusb-1.0/libusb.h").is_file()
    libs = list((trees["libusb-arm64"] / "lib").glob("*/libusb-1.0.so.0.*"))
    assert [p.parent.name for p in libs] == [TRIPLETS["aarch64"]]


def test_cmake_patch_applies(tmp_path: Path) -> None:
    if shutil.which("patch") is None:
        pytest.skip("the patch program is missing (apt-get install patch)")
    (patch,) = resolve_recipe("libedgetpu-source").source("libedgetpu").patches
    proc = subprocess.run(["patch", "-p1", "--forward", "--batch", "-d", str(tmp_path), "-i",
                           str(patch)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (tmp_path / "CMakeLists.txt").read_text()
    for needle in ("add_library(edgetpu SHARED", "THROTTLE_EDGE_TPU", "core/c/common.cc",
                   "libedgetpu.lds", "SOVERSION 1 VERSION 1.0"):
        assert needle in text


def test_build_refuses_unpinned_libedgetpu_source(tmp_path: Path) -> None:
    proc = edgeforge("--cache-dir", tmp_path / "cache", "fetch", "libedgetpu-source",
                     "--target", "linux-x86_64", "--offline", check=False)
    assert proc.returncode != 0
    assert "libedgetpu" in proc.stderr and "unpinned" in proc.stderr
