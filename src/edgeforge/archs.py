"""CPU architectures: ``archs.toml`` (package data) -> typed ``Arch``.

The facts the audit, the strip step and staging need about the machine a toolchain targets
live in one data file, so that no module keeps a table of its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from . import resources, tomlfile
from .errors import ConfigError

ARCHS_FILE = resources.shipped("archs.toml")

#: Tag_CPU_arch values (ARM ABI addenda), for messages.
ARM_CPU_ARCH_NAMES = {
    0: "pre-v4", 1: "v4", 2: "v4T", 3: "v5T", 4: "v5TE", 5: "v5TEJ", 6: "v6", 7: "v6KZ",
    8: "v6T2", 9: "v6K", 10: "v7", 11: "v6-M", 12: "v6S-M", 13: "v7E-M", 14: "v8",
}


@dataclass(frozen=True)
class Arch:
    name: str  # the wheel tag's machine name: x86_64, aarch64, armv7l, ...
    elf_machine: str  # pyelftools' e_machine name, e.g. "EM_AARCH64"
    elf_class: int  # 32 or 64
    little_endian: bool
    binutils: str | None  # Debian binutils-<triplet> that strips its binaries
    policy_arch: str  # auditwheel's name for it
    musl_libc: str | None  # Alpine's musl libc soname
    hard_float: bool  # 32-bit ARM hard-float ABI required
    arm_cpu_arch_max: int | None  # newest Tag_CPU_arch allowed (32-bit ARM)
    npm_cpu: str | None = None  # Node's process.arch (npm's `cpu` field)
    npm_name: str | None = None  # the npm platform name's arch part, where not npm_cpu
    node_arm_version: int | None = None  # 32-bit ARM: Node's arm_version it needs
    conan_arch: str | None = None  # Conan's `arch` setting


def _arch(name: str, t: tomlfile.Table) -> Arch:
    elf_class = t.int("elf-class", required=True)
    if elf_class not in (32, 64):
        raise t.error("elf-class", f"must be 32 or 64, got {elf_class}")
    arch = Arch(
        name=name,
        elf_machine=t.str("elf-machine", required=True),
        elf_class=elf_class,
        little_endian=t.bool("little-endian", True),
        binutils=t.str("binutils"),
        policy_arch=t.str("policy-arch", name),
        musl_libc=t.str("musl-libc"),
        hard_float=t.bool("hard-float"),
        arm_cpu_arch_max=t.int("arm-cpu-arch-max"),
        npm_cpu=t.str("npm-cpu"),
        npm_name=t.str("npm-name"),
        node_arm_version=t.int("node-arm-version"),
        conan_arch=t.str("conan-arch"),
    )
    t.reject_unknown()
    return arch


@functools.cache
def load_archs(path: Path = ARCHS_FILE) -> dict[str, Arch]:
    root = tomlfile.Table(tomlfile.load(path), path)
    return {name: _arch(name, root.table(name)) for name in list(root.data)}


def arch_info(name: str, path: Path = ARCHS_FILE) -> Arch:
    known = load_archs(path)
    if name not in known:
        raise ConfigError(f"edgeforge knows nothing of architecture {name!r} (known: "
                          f"{', '.join(known)}); describe it with a table in {path}",
                          path=path, key=name)
    return known[name]
