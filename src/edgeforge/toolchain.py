"""Target toolchains: ``toolchains/*.toml`` -> typed ``Toolchain``.

A toolchain file is declarative data: the target's architecture and libc, the wheel tags it
promises, the compiler backends that can build for it (``zig`` by default, Debian's cross gcc
as the second), and how to smoke-test its wheels (QEMU binary, Debian architecture).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import resources, tomlfile
from .archs import ARCHS_FILE, load_archs
from .binfmt import BinaryFormat, format_for_system
from .errors import ConfigError, UnknownTargetError

BACKENDS = ("zig", "gcc", "native")
# ucrt: Windows' Universal CRT (zig's *-windows-gnu); macos: libSystem, libc-version is the
# deployment target (LC_BUILD_VERSION's minos) the macosx_* tag promises.
LIBCS = ("glibc", "musl", "ucrt", "macos")
SMOKE_RUNNERS = ("python", "c-driver", "wine", "link-only")

TOOLCHAINS_DIR = resources.SHIPPED_TOOLCHAINS  # package data: found from an installed wheel too


@dataclass(frozen=True)
class ZigSpec:
    target: str  # e.g. "aarch64-linux-gnu.2.17": zig's target triple with the glibc floor
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class GccSpec:
    triplet: str  # e.g. "aarch64-linux-gnu": Debian's g++-<triplet> cross compiler
    flags: tuple[str, ...] = ()
    debian_packages: tuple[str, ...] = ()  # what to apt-get install for this backend
    # What a Debian cross gcc can promise: it links against its own release's glibc (bookworm:
    # 2.36), so with this backend the wheel gets this floor and these tags instead.
    libc_version: str | None = None
    wheel_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmokeSpec:
    debian_arch: str | None  # e.g. "arm64"; None: the runner needs no Debian root
    debian_suite: str = "bookworm"
    qemu: str | None = None  # e.g. "qemu-aarch64-static"; None: runs natively on the host
    # "python": a Debian Python root; "c-driver": musl, no Debian Python; "wine": the C driver
    # under Debian's wine64; "link-only": the C driver is linked against the library, not run
    runner: str = "python"


@dataclass(frozen=True)
class Toolchain:
    name: str
    path: Path
    description: str
    arch: str  # the machine name wheels use: x86_64, aarch64, armv7l, armv6l, riscv64
    libc: str  # glibc or musl
    libc_version: str  # the floor the wheel tag promises, e.g. "2.17"
    wheel_tags: tuple[str, ...]  # platform tags, most specific first
    cmake_system_name: str
    cmake_system_processor: str
    backend: str
    flags: tuple[str, ...]  # CPU flags for every backend
    zig: ZigSpec | None
    gcc: GccSpec | None
    smoke: SmokeSpec
    extra: dict[str, str] = field(default_factory=dict)
    # more variables the CMake toolchain file sets ([cmake.variables]), over the binary
    # format's own (formats.toml: Darwin's, what CMake would ask sw_vers for)
    cmake_variables: dict[str, str] = field(default_factory=dict)

    @property
    def platform_tag(self) -> str:
        """The compressed platform tag of the wheel file name (dual tags joined by dots)."""
        return ".".join(self.wheel_tags)

    @property
    def audit_policy(self) -> str | None:
        """The manylinux/musllinux policy name the first tag promises, or None (``linux_*``)."""
        first = self.wheel_tags[0]
        for prefix in ("manylinux_", "musllinux_"):
            if first.startswith(prefix):
                return first[: -len(self.arch) - 1]
        return None

    @property
    def binary_format(self) -> BinaryFormat:
        """ELF, PE or Mach-O: what the target's CMake system produces (formats.toml)."""
        return format_for_system(self.cmake_system_name)

    def with_backend(self, backend: str) -> Toolchain:
        if backend not in BACKENDS:
            known = ", ".join(BACKENDS)
            raise ConfigError(f"unknown compiler backend {backend!r}; use one of {known}")
        if backend == "zig" and self.zig is None:
            raise ConfigError("this target has no [compiler.zig] table", path=self.path,
                              key="compiler")
        if backend == "gcc" and self.gcc is None:
            raise ConfigError("this target has no [compiler.gcc] table", path=self.path,
                              key="compiler")
        if backend == "gcc" and self.gcc is not None and self.gcc.libc_version:
            return replace(self, backend=backend, libc_version=self.gcc.libc_version,
                           wheel_tags=self.gcc.wheel_tags or self.wheel_tags)
        return replace(self, backend=backend)

    @property
    def is_host(self) -> bool:
        """True when binaries for this target run on this machine without QEMU (or wine)."""
        return self.smoke.qemu is None and self.cmake_system_name == platform.system()


def _wheel_tags(t: tomlfile.Table, machine: str, required: bool) -> list[str]:
    """``machine``: the arch as the platform's tags name it (x86_64, or amd64 on Windows)."""
    tags = t.str_list("wheel-tags", required=required)
    if required and not tags:
        raise t.error("wheel-tags", "needs at least one platform tag")
    for tag in tags:
        if not tag.endswith("_" + machine):
            raise t.error("wheel-tags", f"tag {tag!r} does not end with the arch {machine!r}")
    return tags


def load_toolchain(path: Path) -> Toolchain:
    t = tomlfile.Table(tomlfile.load(path), path)
    name = t.str("name", required=True)
    arch = t.str("arch", required=True)
    if arch not in load_archs():
        raise t.error("arch", f"unknown architecture {arch!r} (known: "
                      f"{', '.join(load_archs())}); a new one is a table in {ARCHS_FILE}")
    libc = t.choice("libc", LIBCS)
    libc_version = t.str("libc-version", required=True)
    description = t.str("description", "")

    cmake = t.table("cmake", required=True)
    system_name = cmake.str("system-name", "Linux")
    processor = cmake.str("system-processor", required=True)
    variables = cmake.str_map("variables")
    cmake.reject_unknown()
    try:
        machine = format_for_system(system_name).tag_machine(arch)
    except ConfigError as err:
        raise cmake.error("system-name", str(err)) from None
    tags = _wheel_tags(t, machine, required=True)

    compiler = t.table("compiler", required=True)
    backend = compiler.choice("backend", BACKENDS, "zig")
    flags = tuple(compiler.str_list("flags"))
    zig = gcc = None
    if "zig" in compiler.data:
        z = compiler.table("zig")
        zig = ZigSpec(target=z.str("target", required=True), flags=tuple(z.str_list("flags")))
        z.reject_unknown()
    if "gcc" in compiler.data:
        g = compiler.table("gcc")
        gcc = GccSpec(
            triplet=g.str("triplet", required=True),
            flags=tuple(g.str_list("flags")),
            debian_packages=tuple(g.str_list("debian-packages")),
            libc_version=g.str("libc-version"),
            wheel_tags=tuple(_wheel_tags(g, machine, required=False)),
        )
        if gcc.wheel_tags and not gcc.libc_version:
            raise g.error("libc-version", "wheel-tags for the gcc backend need its libc-version")
        g.reject_unknown()
    compiler.reject_unknown()
    if backend == "zig" and zig is None:
        raise compiler.error("zig", "backend is zig but there is no [compiler.zig] table")
    if backend == "gcc" and gcc is None:
        raise compiler.error("gcc", "backend is gcc but there is no [compiler.gcc] table")

    s = t.table("smoke", required=True)
    runner = s.choice("runner", SMOKE_RUNNERS, "python")
    smoke = SmokeSpec(
        debian_arch=s.str("debian-arch", required=runner in ("python", "c-driver")),
        debian_suite=s.str("debian-suite", "bookworm"),
        qemu=s.str("qemu"),
        runner=runner,
    )
    s.reject_unknown()
    t.reject_unknown()
    return Toolchain(
        name=name,
        path=path,
        description=description,
        arch=arch,
        libc=libc,
        libc_version=libc_version,
        wheel_tags=tuple(tags),
        cmake_system_name=system_name,
        cmake_system_processor=processor,
        backend=backend,
        flags=flags,
        zig=zig,
        gcc=gcc,
        smoke=smoke,
        cmake_variables=variables,
    )


def _directories(directories: Sequence[Path] | None) -> Sequence[Path]:
    return resources.SearchPath.build().toolchains if directories is None else directories


def available_targets(directories: Sequence[Path] | None = None) -> dict[str, Path]:
    """Target name -> toolchain file: the user's search path first, then the shipped ones."""
    return resources.list_toml(_directories(directories))


def resolve_target(target: str | None, toolchain_file: Path | None = None,
                   directories: Sequence[Path] | None = None) -> Toolchain:
    """A user's own toolchain file wins; otherwise the target name picks one from the search
    path (``--toolchain-path``, ``EDGEFORGE_TOOLCHAIN_PATH``, then the shipped toolchains)."""
    if toolchain_file is not None:
        return load_toolchain(toolchain_file)
    if target is None or target == "host":
        target = host_target_name()
    known = available_targets(directories)
    if target not in known:
        raise UnknownTargetError(
            f"unknown target {target!r}. Known targets: {', '.join(known)}. "
            "Run `edgeforge targets` to see them, or pass your own with --toolchain FILE "
            f"(or a directory of them with --toolchain-path / ${resources.TOOLCHAIN_PATH_ENV})."
        )
    return load_toolchain(known[target])


def host_target_name() -> str:
    machine = platform.machine()
    libc, _ = platform.libc_ver()
    prefix = "linux" if libc == "glibc" else "musllinux"
    return f"{prefix}-{machine}"
