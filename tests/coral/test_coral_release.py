"""The libedgetpu recipes: unpinned upstream release, lock files, per-target selection."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from coral_support import RECIPES, Release, edgeforge, write_test_recipe
from elftools.elf.elffile import ELFFile

from edgeforge.builders.prebuilt import prebuilt_files
from edgeforge.errors import BuildError
from edgeforge.fetch import FetchOptions, fetch_source, prepare_source
from edgeforge.lock import read_lock
from edgeforge.log import Logger
from edgeforge.recipe import load_recipe, resolve_recipe
from edgeforge.toolchain import resolve_target

UPSTREAM = ("https://github.com/google-coral/libedgetpu/releases/download/release-grouper/"
            "edgetpu_runtime_20221024.zip")


@pytest.mark.parametrize(("name", "distribution", "variant_dir", "build_info"), [
    ("libedgetpu", "tflite-edge-coral-lib", "throttled", "release-16.0-std.json"),
    ("libedgetpu-max", "tflite-edge-coral-lib-max", "direct", "release-16.0-max.json"),
])
def test_shipped_recipes(name: str, distribution: str, variant_dir: str,
                         build_info: str) -> None:
    recipe = resolve_recipe(name)
    assert recipe.version == "16.0"
    (source,) = recipe.sources
    (location,) = source.locations
    assert location.url == UPSTREAM and location.sha256 is None  # nobody here could hash it
    assert recipe.wheel.distribution == distribution
    assert recipe.wheel.package == "tflite_edge_coral_lib"  # std and max: the same files
    assert recipe.prebuilt is not None
    assert set(recipe.prebuilt.paths) == {"linux-x86_64", "linux-aarch64", "linux-armv7l",
                                          "linux-armv6l"}
    assert all(f"/{variant_dir}/" in p for p in recipe.prebuilt.paths.values())
    info = json.loads((RECIPES / "coral-lib/build-info" / build_info).read_text())
    assert info["distribution"] == distribution
    assert info["tensorflow"] == "2.5.0" and info["libedgetpu"] == recipe.version


def test_normal_build_refuses_the_unpinned_release(tmp_path: Path) -> None:
    proc = edgeforge("--cache-dir", tmp_path / "cache", "build", "libedgetpu", "--target",
                     "linux-x86_64", "--dist", tmp_path / "dist", check=False)
    assert proc.returncode != 0
    assert "unpinned" in proc.stderr and "edgeforge lock" in proc.stderr
    assert UPSTREAM in proc.stderr
    assert not (tmp_path / "dist").exists()


def test_lock_records_the_sha256_and_builds_then_use_it(release: Release,
                                                        tmp_path: Path) -> None:
    recipe_path = write_test_recipe("libedgetpu", tmp_path / "recipes", release.url, None)
    cache = tmp_path / "cache"
    refused = edgeforge("--cache-dir", cache, "fetch", recipe_path, "--target", "linux-x86_64",
                        check=False)
    assert refused.returncode != 0 and "unpinned" in refused.stderr

    edgeforge("--cache-dir", cache, "lock", recipe_path)
    recipe = load_recipe(recipe_path)
    assert read_lock(recipe) == {release.url: release.sha256}
    fetched = edgeforge("--cache-dir", cache, "fetch", recipe_path, "--target", "linux-x86_64",
                        "--offline")
    assert "edgetpu-runtime: " in fetched.stdout  # the extracted tree, from the locked file
    assert (cache / "downloads" / release.sha256 / release.archive.name).is_file()


@pytest.fixture(scope="module")
def release_tree(release: Release, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("tree")
    recipe = load_recipe(write_test_recipe("libedgetpu", base / "recipes", release.url,
                                           release.sha256))
    opts = FetchOptions(cache_dir=base / "cache")
    archive = fetch_source(recipe.sources[0], opts, Logger())
    return recipe.path, prepare_source(recipe.sources[0], archive, opts, Logger())


@pytest.mark.parametrize(("target", "machine", "elfclass"), [
    ("linux-x86_64", "EM_X86_64", 64),
    ("linux-aarch64", "EM_AARCH64", 64),
    ("linux-armv7l", "EM_ARM", 32),
    ("linux-armv6l", "EM_ARM", 32),
])
@pytest.mark.parametrize("name", ["libedgetpu", "libedgetpu-max"])
def test_each_target_picks_its_release_directory(release_tree: tuple[Path, Path], name: str,
                                                 target: str, machine: str, elfclass: int,
                                                 tmp_path: Path) -> None:
    recipe = resolve_recipe(name)
    assert recipe.prebuilt is not None
    out = prebuilt_files(recipe.prebuilt, resolve_target(target), release_tree[1],
                         tmp_path / "build", Logger())
    lib = out / "libedgetpu.so.1.0"
    with lib.open("rb") as f:
        elf = ELFFile(f)
        assert (elf.header.e_machine, elf.elfclass) == (machine, elfclass)
    variant = "direct" if name.endswith("-max") else "throttled"
    assert variant.encode() in lib.read_bytes()  # the stand-in's build label


def test_musllinux_has_no_release_binary(release_tree: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    recipe = resolve_recipe("libedgetpu")
    assert recipe.prebuilt is not None
    with pytest.raises(BuildError, match="no binaries for musllinux-x86_64"):
        prebuilt_files(recipe.prebuilt, resolve_target("musllinux-x86_64"), release_tree[1],
                       tmp_path / "build", Logger())


def test_lib_wheels_through_the_pipeline(host_wheels) -> None:  # type: ignore[no-untyped-def]
    """edgeforge build -> audited, smoke-tested wheels; std and max hold the same paths."""
    names = {}
    for wheel, dist in ((host_wheels.std, "tflite_edge_coral_lib"),
                        (host_wheels.max, "tflite_edge_coral_lib_max")):
        assert wheel.name == f"{dist}-16.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        with zipfile.ZipFile(wheel) as zf:
            files = {n for n in zf.namelist() if ".dist-info/" not in n}
            info = json.loads(zf.read("tflite_edge_coral_lib/_build_info.json"))
            licenses = [n for n in zf.namelist() if "/licenses/" in n]
        assert {"tflite_edge_coral_lib/__init__.py", "tflite_edge_coral_lib/lib/libedgetpu.so.1",
                "tflite_edge_coral_lib/_build_info.json",
                "tflite_edge_coral_lib/include/edgetpu_c.h"} <= files
        assert licenses, "the release's LICENSE must ship in the wheel"
        names[info["variant"]] = files
        assert info["tensorflow"] == "2.5.0"
    assert names["std"] == names["max"]  # the same package path: never both installed
