"""Toolchain and recipe files: every shipped one loads, and bad input names file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeforge.archs import load_archs
from edgeforge.errors import ConfigError, UnknownTargetError
from edgeforge.recipe import RECIPES_DIR, load_recipe, resolve_recipe
from edgeforge.toolchain import TOOLCHAINS_DIR, available_targets, load_toolchain, resolve_target

REQUIRED_TARGETS = {"linux-x86_64", "linux-aarch64", "linux-armv7l", "linux-armv6l",
                    "linux-riscv64", "musllinux-x86_64", "musllinux-aarch64"}


def test_every_required_target_is_shipped_and_valid() -> None:
    targets = available_targets()
    assert set(targets) >= REQUIRED_TARGETS
    for path in targets.values():
        t = load_toolchain(path)
        assert t.name == path.stem
        # the arch as the platform's tags name it: x86_64, amd64 (Windows), arm64 (macOS)
        assert all(tag.endswith(t.binary_format.tag_machine(t.arch)) for tag in t.wheel_tags)


def test_dual_tags_for_manylinux2014_targets() -> None:
    t = resolve_target("linux-aarch64")
    assert t.platform_tag == "manylinux_2_17_aarch64.manylinux2014_aarch64"
    assert t.audit_policy == "manylinux_2_17"
    assert resolve_target("linux-armv6l").audit_policy is None


def test_every_shipped_recipe_loads() -> None:
    for path in sorted(RECIPES_DIR.glob("*.toml")):
        if path.name.endswith(".lock.toml"):
            continue
        recipe = load_recipe(path)
        assert recipe.sources


def test_unknown_target_lists_the_known_ones() -> None:
    with pytest.raises(UnknownTargetError) as err:
        resolve_target("linux-sparc")
    assert "linux-aarch64" in str(err.value)
    assert "--toolchain" in str(err.value)


def _toolchain_text() -> str:
    return (TOOLCHAINS_DIR / "linux-aarch64.toml").read_text()


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text(_toolchain_text() + "\nthis is not toml\n")
    with pytest.raises(ConfigError) as err:
        load_toolchain(bad)
    assert str(bad) in str(err.value) and "malformed TOML" in str(err.value)


@pytest.mark.parametrize(("old", "new", "key"), [
    ('arch = "aarch64"', 'arch = 7', "arch"),
    ('arch = "aarch64"', 'arch = "sparc64"', "arch"),
    ('libc = "glibc"', 'libc = "bionic"', "libc"),
    ('qemu = "qemu-aarch64-static"', 'qemu = "qemu-aarch64-static"\nqmeu = "typo"', "smoke.qmeu"),
    ('backend = "zig"', 'backend = "msvc"', "compiler.backend"),
    ('wheel-tags = ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]',
     'wheel-tags = ["manylinux_2_17_x86_64"]', "wheel-tags"),
])
def test_bad_toolchain_key_is_named(tmp_path: Path, old: str, new: str, key: str) -> None:
    path = tmp_path / "mine.toml"
    text = _toolchain_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_toolchain(path)
    assert f"[{key}]" in str(err.value)
    assert str(path) in str(err.value)


def test_every_shipped_target_arch_is_described_once() -> None:
    """A target names an arch; what the audit and strip need of it is one table of archs.toml."""
    archs = load_archs()
    for path in available_targets().values():
        arch = archs[load_toolchain(path).arch]
        assert arch.elf_machine.startswith("EM_") and arch.elf_class in (32, 64)
        assert arch.binutils, f"{path.name}: no binutils to strip {arch.name}"
    assert archs["armv6l"].policy_arch == "armv7l" and archs["armv6l"].arm_cpu_arch_max == 9
    assert archs["x86_64"].musl_libc == "libc.musl-x86_64.so.1"


def test_bad_arch_table_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "archs.toml"
    bad.write_text('[mips64]\nelf-machine = "EM_MIPS"\nelf-class = 63\n')
    with pytest.raises(ConfigError) as err:
        load_archs(bad)
    assert "[mips64.elf-class]" in str(err.value) and str(bad) in str(err.value)


def test_gcc_backend_promises_its_own_glibc_floor() -> None:
    zig = resolve_target("linux-aarch64")
    assert zig.libc_version == "2.17" and zig.audit_policy == "manylinux_2_17"
    gcc = zig.with_backend("gcc")
    assert gcc.libc_version == "2.36"
    assert gcc.platform_tag == "manylinux_2_36_aarch64"
    assert gcc.audit_policy == "manylinux_2_36"


def test_own_toolchain_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "my-board.toml"
    path.write_text(_toolchain_text().replace('name = "linux-aarch64"', 'name = "my-board"'))
    assert resolve_target("ignored", path).name == "my-board"


RECIPE = """
[package]
name = "demo"
version = "1.0"

[[sources]]
name = "demo"
urls = [{ url = "https://example.invalid/demo-1.0.tar.gz", sha256 = "%s" }]

[build]
system = "cmake"
[build.cmake]
source = "demo"

[[stage]]
from = "{build}/libdemo.so"
to = "lib/"

[wheel]
distribution = "demo-lib"
package = "demo_lib"
"""


def test_recipe_checks_sha256_format(tmp_path: Path) -> None:
    path = tmp_path / "demo.toml"
    path.write_text(RECIPE % ("0" * 64))
    assert load_recipe(path).sources[0].locations[0].sha256 == "0" * 64
    path.write_text(RECIPE % "not-a-hash")
    with pytest.raises(ConfigError, match=r"\[sources\[0\]\.urls\[0\]\.sha256\]"):
        load_recipe(path)


def test_recipe_without_sha256_must_say_unpinned(tmp_path: Path) -> None:
    path = tmp_path / "demo.toml"
    path.write_text((RECIPE % "x").replace(', sha256 = "x"', ""))
    with pytest.raises(ConfigError, match="unpinned"):
        load_recipe(path)
    path.write_text((RECIPE % "x").replace('sha256 = "x"', "unpinned = true"))
    assert load_recipe(path).sources[0].locations[0].sha256 is None


def test_recipe_build_must_name_a_source(tmp_path: Path) -> None:
    path = tmp_path / "demo.toml"
    path.write_text((RECIPE % ("0" * 64)).replace('source = "demo"', 'source = "other"'))
    with pytest.raises(ConfigError, match="names source 'other'"):
        load_recipe(path)


def test_recipe_cmake_project_next_to_the_recipe(tmp_path: Path) -> None:
    path = tmp_path / "demo.toml"
    text = RECIPE % ("0" * 64)
    path.write_text(text.replace('source = "demo"', 'project = "cmake-demo"'))
    with pytest.raises(ConfigError, match=r"no CMakeLists\.txt"):
        load_recipe(path)
    (tmp_path / "cmake-demo").mkdir()
    (tmp_path / "cmake-demo" / "CMakeLists.txt").write_text("project(demo C)\n")
    recipe = load_recipe(path)
    assert recipe.cmake is not None and recipe.cmake.project == "cmake-demo"
    assert recipe.cmake.source is None
    for both_or_neither in ('source = "demo"\nproject = "cmake-demo"', ""):
        path.write_text(text.replace('source = "demo"', both_or_neither))
        with pytest.raises(ConfigError, match="either `source`"):
            load_recipe(path)


def test_unknown_recipe_lists_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="unknown recipe"):
        resolve_recipe("no-such-recipe")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeforge", *args], capture_output=True,
                          text=True, check=False)


def test_cli_targets_lists_every_target() -> None:
    proc = _cli("targets")
    assert proc.returncode == 0, proc.stderr
    for name in REQUIRED_TARGETS:
        assert name in proc.stdout
    assert "manylinux_2_17_aarch64.manylinux2014_aarch64" in proc.stdout
    assert "qemu-riscv64-static" in proc.stdout


def test_cli_unknown_target_is_one_clear_error(tmp_path: Path) -> None:
    proc = _cli("build", str(tmp_path / "x.toml"), "--target", "linux-sparc")
    assert proc.returncode != 0
    assert proc.stderr.startswith("edgeforge: error:")
    assert "Traceback" not in proc.stderr
