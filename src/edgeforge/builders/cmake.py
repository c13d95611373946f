"""The CMake + Ninja backend: configure with the generated toolchain file, build, log."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingToolError
from ..fsutil import atomic_write_text, sha256_file
from ..log import Logger
from ..recipe import CMakeBuild
from ..toolchain import Toolchain
from .compilers import Compilers, cmake_toolchain_file, toolchain_link_flags
from .runner import run_logged


@dataclass(frozen=True)
class BuildOutput:
    build_dir: Path
    log: Path
    configure_seconds: float
    build_seconds: float


def _require(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise MissingToolError(f"{tool} is missing: apt-get install {package}")
    return found


def cmake_build(spec: CMakeBuild, toolchain: Toolchain, compilers: Compilers, source_dir: Path,
                work_dir: Path, expand: Callable[[str], str], logger: Logger,
                jobs: int | None = None) -> BuildOutput:
    """Configure and build ``spec`` in ``work_dir/build``; ``expand`` fills placeholders."""
    cmake = _require("cmake", "cmake")
    ninja = _require("ninja", "ninja-build")
    build_dir = work_dir / "build"
    src = source_dir / spec.subdir if spec.subdir else source_dir
    # A build directory belongs to one source tree and one toolchain: new sources (a patch, a
    # new pin) or a changed toolchain file or compiler wrapper get a clean one (CMake refuses
    # to switch sources and reads a toolchain file's *_INIT flags only at the first
    # configure; ninja does not know that a wrapper's flags changed; the compiler cache keeps
    # the rebuild cheap). The marker is written only once a configure
    # finished, and removed before the next one starts: a configure that was killed half-way
    # (its CMakeCache.txt and compiler checks half-written) leaves no marker, and the next
    # build starts from a clean directory too. An interrupted compile keeps its marker:
    # ninja's log knows which outputs are complete, and ninja removes the outputs of the
    # commands it had to stop.
    toolchain_file = cmake_toolchain_file(toolchain, compilers, work_dir / "toolchain.cmake")
    configured_from = "".join([f"{src}\n", *(f"{p.name} sha256 {sha256_file(p)}\n" for p in (
        toolchain_file, compilers.cc, compilers.cxx, compilers.ar, compilers.ranlib))])
    marker = work_dir / "configured-from"
    configured = marker.read_text() if marker.is_file() else None
    if build_dir.exists() and configured != configured_from:
        if configured is None:
            why = "the last configure did not finish"
        elif configured.split("\n")[0] != str(src):
            why = "sources changed since the last build"
        else:
            why = "the toolchain file or compilers changed since the last build"
        logger.info(f"{why}: starting a clean build directory")
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    log = work_dir / "build.log"
    log.write_text("")

    defines = {"CMAKE_BUILD_TYPE": "Release", "CMAKE_TOOLCHAIN_FILE": str(toolchain_file),
               "CMAKE_POSITION_INDEPENDENT_CODE": "ON", **recipe_defines(spec, toolchain, expand)}

    env = dict(compilers.env)
    # Paths inside this work directory (the build tree, generated headers) become relative;
    # source trees live in the cache under content-derived names and stay absolute. So the
    # compiler cache hits from any work directory, at any depth (--work-dir, a fresh build
    # directory, a clean clone): only what differs between builds is made relative.
    env["CCACHE_BASEDIR"] = str(work_dir)
    argv = [cmake, "-G", "Ninja", "-S", str(src), "-B", str(build_dir)]
    argv += [f"-D{k}={expand(v)}" for k, v in sorted(defines.items())]
    logger.info(f"configuring {src.relative_to(source_dir.parent)} for {toolchain.name} "
                f"({compilers.description})")
    configure = run_logged(argv, log_path=log, logger=logger, what="cmake configure", env=env)
    atomic_write_text(marker, configured_from)

    # ninja itself (what `cmake --build` would run): edgeforge's death, even by SIGKILL,
    # reaches it (run_logged), and ninja stops its jobs; a `cmake --build` would leave it be.
    build_argv = [ninja, "-C", str(build_dir), "-j", str(jobs or os.cpu_count() or 2),
                  *spec.targets]
    logger.info(f"building {' '.join(spec.targets) or 'all'} (log: {log})")
    built = run_logged(build_argv, log_path=log, logger=logger, what="build", env=env)
    return BuildOutput(build_dir=build_dir, log=log, configure_seconds=configure,
                       build_seconds=built)


def recipe_defines(spec: CMakeBuild, toolchain: Toolchain,
                   expand: Callable[[str], str]) -> dict[str, str]:
    """The CMake defines ``spec`` gives for ``toolchain``: its defines, then the ones for the
    target's binary format, its arch and its name (a later layer's value wins, except that a
    CMake ``*_FLAGS`` variable gets every layer's flags), then the recipe's own flags."""
    defines = dict(spec.defines)
    for layer in (spec.format_defines.get(toolchain.binary_format.key, {}),
                  spec.arch_defines.get(toolchain.arch, {}),
                  spec.arch_defines.get(toolchain.name, {})):
        for key, value in layer.items():
            before = defines.get(key, "") if key.endswith("_FLAGS") else ""
            defines[key] = f"{before} {value}" if before else value
    c_flags = [expand(f) for f in spec.c_flags]
    cxx_flags = [expand(f) for f in spec.cxx_flags]
    link_flags = [expand(f) for f in spec.link_flags]
    if spec.version_script:
        link_flags.append(f"-Wl,--version-script={expand(spec.version_script)}")
    # The recipe's flags go after what a define of the same variable says (an arch-define's
    # CMAKE_CXX_FLAGS for one target): both apply.
    for variable, flags in (("CMAKE_C_FLAGS", c_flags), ("CMAKE_CXX_FLAGS", cxx_flags),
                            ("CMAKE_SHARED_LINKER_FLAGS", link_flags)):
        if flags:
            defines[variable] = " ".join([*defines.get(variable, "").split(), *flags])
    # A variable given on the command line is never initialised from the toolchain file's
    # *_INIT: the toolchain's own link flags (Mach-O's -S, gcc's -static-libstdc++) go first.
    for variable in ("CMAKE_SHARED_LINKER_FLAGS", "CMAKE_EXE_LINKER_FLAGS"):
        if variable in defines:
            defines[variable] = " ".join([*toolchain_link_flags(toolchain),
                                          *defines[variable].split()])
    return defines
