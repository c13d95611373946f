"""edgeforge's targets as npm platforms: the one mapping table, derived from the toolchains
(os, arch, libc) and archs.toml (Node's name for the CPU, and on 32-bit ARM the
``arm_version`` Node reports), never kept by hand.

``linux-x86_64`` is ``linux-x64``, ``musllinux-aarch64`` is ``linux-arm64-musl``, ``linux-armv7l``
is ``linux-arm``. npm's ``cpu`` field cannot tell ARMv6 from ARMv7, so ``linux-armv6l``
(``linux-armv6``) is not an optional dependency: the main package's platform function picks it
on an ARMv6 Node when it is installed, and says to install it when not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..archs import arch_info
from ..errors import ConfigError
from ..toolchain import Toolchain, available_targets, load_toolchain

#: CMake's system name -> Node's process.platform.
NODE_OS = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}


@dataclass(frozen=True)
class NpmPlatform:
    name: str  # "linux-arm64-musl": the platform package's name after the scope
    target: str  # edgeforge's target, "musllinux-aarch64"
    os: str  # process.platform
    cpu: str  # process.arch
    libc: str | None  # "glibc" / "musl" on Linux (npm's `libc` field), else None
    arm_version: int | None  # 32-bit ARM: Node's arm_version the binary needs
    optional: bool  # listed in optionalDependencies (npm can choose it by os/cpu/libc)
    wheel_tags: tuple[str, ...]  # every platform tag a wheel for it may carry

    def manifest_fields(self) -> dict[str, list[str]]:
        """The package.json fields npm filters optional dependencies by."""
        fields = {"os": [self.os], "cpu": [self.cpu]}
        if self.libc:
            fields["libc"] = [self.libc]
        return fields


def npm_platform(tc: Toolchain) -> NpmPlatform:
    arch = arch_info(tc.arch)
    if arch.npm_cpu is None:
        raise ConfigError(f"archs.toml gives no npm-cpu for {tc.arch!r} (target {tc.name}): "
                          "say what Node's process.arch calls it")
    node_os = NODE_OS.get(tc.cmake_system_name)
    if node_os is None:
        raise ConfigError(f"target {tc.name}: no Node platform for CMake system "
                          f"{tc.cmake_system_name!r}", path=tc.path)
    libc = tc.libc if node_os == "linux" else None
    name = f"{node_os}-{arch.npm_name or arch.npm_cpu}{'-musl' if libc == 'musl' else ''}"
    tags = [*tc.wheel_tags, *(tc.gcc.wheel_tags if tc.gcc else ())]
    return NpmPlatform(name=name, target=tc.name, os=node_os, cpu=arch.npm_cpu, libc=libc,
                       arm_version=arch.node_arm_version, optional=arch.npm_name is None,
                       wheel_tags=tuple(dict.fromkeys(tags)))


def all_platforms(toolchains: Iterable[Toolchain] | None = None) -> list[NpmPlatform]:
    """Every target's platform, sorted by name; two targets with one name are an error."""
    tcs = list(toolchains) if toolchains is not None else [
        load_toolchain(p) for p in available_targets().values()]
    out: dict[str, NpmPlatform] = {}
    for tc in tcs:
        p = npm_platform(tc)
        if p.name in out:
            raise ConfigError(f"targets {out[p.name].target} and {tc.name} are both the npm "
                              f"platform {p.name}", path=tc.path)
        out[p.name] = p
    return [out[k] for k in sorted(out)]


def platform_of_wheel(platform_tag: str, platforms: Iterable[NpmPlatform]) -> NpmPlatform:
    """The platform whose tags a wheel file name's platform tag (dotted) carries."""
    tags = set(platform_tag.split("."))
    for p in platforms:
        if tags & set(p.wheel_tags):
            return p
    raise ConfigError(f"no edgeforge target carries the wheel tag {platform_tag!r}, so no npm "
                      "platform package can be named for it")
