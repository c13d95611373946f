"""Per-target compiler wrapper scripts, the CMake toolchain file, and the compiler cache.

The zig target is baked into each wrapper script: putting it in the environment from a CMake
toolchain file fails silently and builds for the host. Each wrapper names the compiler's
version, so the compiler cache (hashing the wrapper's content) never serves objects from an
older compiler.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..archs import arch_info
from ..errors import MissingToolError
from ..fsutil import atomic_write_text
from ..toolchain import Toolchain
from .zig import stable_zig


@dataclass(frozen=True)
class Compilers:
    cc: Path
    cxx: Path
    ar: Path
    ranlib: Path
    strip: Path | None  # None: the target's binary format is never stripped (formats.toml)
    launcher: str | None  # ccache or sccache, when installed
    env: dict[str, str] = field(default_factory=dict)  # cache directories for zig and the launcher
    description: str = ""


def zig_executable() -> Path:
    try:
        import ziglang
    except ImportError:
        raise MissingToolError("zig is missing: pip install ziglang") from None
    return Path(ziglang.__file__).resolve().parent / "zig"


def zig_version(zig: Path) -> str:
    return subprocess.run([str(zig), "version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def find_strip(toolchain: Toolchain) -> Path | None:
    # ELF: Debian's binutils-<triplet> (archs.toml), then llvm-strip; PE, Mach-O: none
    triplet = arch_info(toolchain.arch).binutils
    candidates = toolchain.binary_format.strip_candidates(toolchain.arch, toolchain.is_host)
    if not candidates:
        return None
    for name in candidates:
        found = shutil.which(name)
        if found:
            return Path(found)
    package = f"binutils-{triplet}" if triplet and any(triplet in c for c in candidates) \
        else "llvm"
    raise MissingToolError(f"no strip tool for {toolchain.arch} (tried {', '.join(candidates)}): "
                           f"apt-get install {package}")


def find_launcher() -> str | None:
    for name in ("ccache", "sccache"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _write_script(path: Path, lines: list[str]) -> Path:
    # A process-unique temporary name: two builds of one target may rewrite it at once.
    atomic_write_text(path, "#!/bin/sh\n" + "\n".join(lines) + "\n", mode=0o755)
    return path


def _wrapper(path: Path, comment: str, argv: list[str], rewrite_march: bool = False) -> Path:
    lines = [f"# edgeforge wrapper: {comment}"]
    if rewrite_march:
        base_cpu = "generic"
        for a in argv:
            if a.startswith("-mcpu="):
                base_cpu = a[len("-mcpu="):]
        lines.append(f"base_cpu={shlex.quote(base_cpu)}")
        lines += _MARCH_REWRITE
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv) + ' "$@"')
    return _write_script(path, lines)


# zig's driver reads -march= as a CPU model name, and its -mcpu= (a full feature list) wins
# over -mfpu=. XNNPACK compiles its ARM kernels with per-file flags such as
# `-march=armv8.2-a+dotprod+fp16` (AArch64) or `-marm -march=armv7-a -mfpu=neon-fp16`
# (AArch32), and its RISC-V vector kernels with -march=rv64gcv / rv64gc_zvfh. The wrapper
# rewrites them into one zig -mcpu= appended last (so it wins over the toolchain's):
# -mcpu=generic+v8_2a+dotprod+fullfp16, -mcpu=generic+v7a+neon+fp16 (the -mfpu's features
# folded in; an -mfpu without -march adds its features to the toolchain's own CPU), and
# -mcpu=baseline_rv64+v (the single-letter extensions beyond G and C, then each
# `_`-separated multi-letter one).
_MARCH_REWRITE = [
    "march_cpu=; fpu_feats=",
    "for a in \"$@\"; do",
    "  shift",
    "  case \"$a\" in",
    "    -march=armv[0-9]*)",
    "      rest=${a#-march=armv}; ver=${rest%%-*}; feats=${rest#\"$ver\"}; feats=${feats#-a}",
    "      feats=${feats#-m}; ver=${ver%%+*}",
    "      case \"$ver\" in",
    "        *.*) cpu=generic+v${ver%%.*}_${ver#*.}a ;;",
    "        *) cpu=generic+v${ver}a ;;",
    "      esac",
    "      [ \"$ver\" = 6 ] && cpu=generic+v6",
    "      old_ifs=$IFS; IFS=+; for f in $feats; do",
    "        [ -z \"$f\" ] && continue",
    "        [ \"$f\" = fp16 ] && f=fullfp16",
    "        cpu=$cpu+$f",
    "      done; IFS=$old_ifs",
    "      march_cpu=$cpu ;;",
    "    -mfpu=*)",
    "      case \"${a#-mfpu=}\" in",
    "        neon) fpu_feats=+neon ;;",
    "        neon-fp16) fpu_feats=+neon+fp16 ;;",
    "        neon-vfpv4) fpu_feats=+neon+vfp4 ;;",
    "        neon-fp-armv8) fpu_feats=+neon+fp_armv8 ;;",
    "        crypto-neon-fp-armv8) fpu_feats=+neon+fp_armv8+aes+sha2 ;;",
    "        vfpv4) fpu_feats=+vfp4 ;;",
    "        vfpv3-d16) fpu_feats=+vfp3d16 ;;",
    "        vfp|vfpv2) fpu_feats=+vfp2 ;;",
    "        fp-armv8) fpu_feats=+fp_armv8 ;;",
    "      esac",
    "      set -- \"$@\" \"$a\" ;;",
    "    -march=rv64*)",
    "      isa=${a#-march=rv64}; single=${isa%%_*}; multi=",
    "      [ \"$single\" != \"$isa\" ] && multi=${isa#*_}",
    "      cpu=baseline_rv64; s=$single",
    "      while [ -n \"$s\" ]; do",
    "        c=${s%\"${s#?}\"}; s=${s#?}",
    "        case \"$c\" in i|m|a|f|d|g|c) ;; *) cpu=$cpu+$c ;; esac",
    "      done",
    "      old_ifs=$IFS; IFS=_; for f in $multi; do",
    "        [ -n \"$f\" ] && cpu=$cpu+$f",
    "      done; IFS=$old_ifs",
    "      march_cpu=$cpu ;;",
    "    *) set -- \"$@\" \"$a\" ;;",
    "  esac",
    "done",
    "if [ -n \"$march_cpu\" ]; then set -- \"$@\" \"-mcpu=$march_cpu$fpu_feats\"",
    "elif [ -n \"$fpu_feats\" ]; then set -- \"$@\" \"-mcpu=$base_cpu$fpu_feats\"; fi",
]


def write_compilers(toolchain: Toolchain, bin_dir: Path, cache_dir: Path) -> Compilers:
    """Write cc/c++/ar/ranlib wrappers for the toolchain's backend into ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    flags = list(toolchain.flags)
    env: dict[str, str] = {}
    if toolchain.backend == "zig":
        assert toolchain.zig is not None
        version = zig_version(zig_executable())
        zig = stable_zig(zig_executable(), cache_dir, version)  # one path: warm caches
        target = toolchain.zig.target
        flags += list(toolchain.zig.flags)
        desc = f"zig {version} for {target} {' '.join(flags)}".strip()
        rewrite = toolchain.arch.startswith(("arm", "aarch64", "riscv"))
        cc = _wrapper(bin_dir / "cc", desc, [str(zig), "cc", "-target", target, *flags],
                      rewrite)
        cxx = _wrapper(bin_dir / "c++", desc, [str(zig), "c++", "-target", target, *flags],
                       rewrite)
        ar = _wrapper(bin_dir / "ar", f"zig {version} ar", [str(zig), "ar"])
        ranlib = _wrapper(bin_dir / "ranlib", f"zig {version} ranlib", [str(zig), "ranlib"])
        env["ZIG_GLOBAL_CACHE_DIR"] = str(cache_dir / "zig")
        env["ZIG_LOCAL_CACHE_DIR"] = str(cache_dir / "zig-local")
    elif toolchain.backend == "gcc":
        assert toolchain.gcc is not None
        triplet = toolchain.gcc.triplet
        flags += list(toolchain.gcc.flags)
        tools = {}
        for name in ("gcc", "g++", "ar", "ranlib"):
            found = shutil.which(f"{triplet}-{name}")
            if found is None:
                pkgs = " ".join(toolchain.gcc.debian_packages) or f"g++-{triplet}"
                raise MissingToolError(f"{triplet}-{name} is missing: apt-get install {pkgs}")
            tools[name] = found
        version = subprocess.run([tools["g++"], "-dumpfullversion"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        desc = f"{triplet}-g++ {version} {' '.join(flags)}".strip()
        cc = _wrapper(bin_dir / "cc", desc, [tools["gcc"], *flags])
        cxx = _wrapper(bin_dir / "c++", desc, [tools["g++"], *flags])
        ar = _wrapper(bin_dir / "ar", desc, [tools["ar"]])
        ranlib = _wrapper(bin_dir / "ranlib", desc, [tools["ranlib"]])
    else:  # native: the host's own compilers, for self-builds on platforms nobody ships for
        tools = {}
        for name, env_name, default in (("cc", "CC", "cc"), ("c++", "CXX", "c++"),
                                        ("ar", "AR", "ar"), ("ranlib", "RANLIB", "ranlib")):
            wanted = os.environ.get(env_name, default)
            found = shutil.which(wanted)
            if found is None:
                raise MissingToolError(f"no {name} compiler found ({wanted}): install a C/C++ "
                                       "toolchain (apt-get install build-essential)")
            tools[name] = found
        desc = f"native {tools['c++']} {' '.join(flags)}".strip()
        cc = _wrapper(bin_dir / "cc", desc, [tools["cc"], *flags])
        cxx = _wrapper(bin_dir / "c++", desc, [tools["c++"], *flags])
        ar = _wrapper(bin_dir / "ar", desc, [tools["ar"]])
        ranlib = _wrapper(bin_dir / "ranlib", desc, [tools["ranlib"]])

    launcher = find_launcher()
    if launcher and Path(launcher).name == "ccache":
        env.update(CCACHE_DIR=str(cache_dir / "ccache"), CCACHE_COMPILERCHECK="content",
                   CCACHE_NOHASHDIR="1", CCACHE_MAXSIZE="5G")
    elif launcher:
        env.update(SCCACHE_DIR=str(cache_dir / "sccache"), SCCACHE_CACHE_SIZE="5G")
    return Compilers(cc=cc, cxx=cxx, ar=ar, ranlib=ranlib, strip=find_strip(toolchain),
                     launcher=launcher, env=env, description=desc)


def toolchain_link_flags(toolchain: Toolchain) -> list[str]:
    """The linker flags every link for ``toolchain`` needs (the toolchain file's
    ``CMAKE_*_LINKER_FLAGS_INIT``; a recipe that sets those variables adds to these)."""
    link_flags = list(toolchain.binary_format.link_flags)  # formats.toml: e.g. Mach-O's -S
    if toolchain.backend == "gcc":
        # A library that exports only a C API carries its C++ runtime: no GLIBCXX floor. The
        # unwinder stays shared (libgcc_s.so.1, on every manylinux whitelist): with a static
        # copy in each of two libraries (TFLite and tflite-edge's shim), an exception crossing
        # them makes one copy's personality routine drive the other's unwind context and abort.
        link_flags.append("-static-libstdc++")
    return link_flags


def cmake_toolchain_file(toolchain: Toolchain, compilers: Compilers, path: Path) -> Path:
    """Write the CMake toolchain file for the target; returns its path."""
    # The format's variables (Mach-O: what CMake's Darwin platform would ask sw_vers), then the
    # toolchain's own, which win.
    variables = {**toolchain.binary_format.cmake_variables, **toolchain.cmake_variables}
    lines = [
        f"# edgeforge toolchain for {toolchain.name} ({compilers.description})",
        f"set(CMAKE_SYSTEM_NAME {toolchain.cmake_system_name})",
        f"set(CMAKE_SYSTEM_PROCESSOR {toolchain.cmake_system_processor})",
        *(f'set({k} "{v}")' for k, v in sorted(variables.items())),
        f'set(CMAKE_C_COMPILER "{compilers.cc}")',
        f'set(CMAKE_CXX_COMPILER "{compilers.cxx}")',
        f'set(CMAKE_ASM_COMPILER "{compilers.cc}")',
        f'set(CMAKE_AR "{compilers.ar}" CACHE FILEPATH "archiver")',
        f'set(CMAKE_RANLIB "{compilers.ranlib}" CACHE FILEPATH "ranlib")',
        *([f'set(CMAKE_STRIP "{compilers.strip}" CACHE FILEPATH "strip")']
          if compilers.strip else []),
        # Never pick up the build machine's libraries or headers for the target.
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)",
    ]
    link_flags = toolchain_link_flags(toolchain)
    if link_flags:
        lines += [f'set(CMAKE_SHARED_LINKER_FLAGS_INIT "{" ".join(link_flags)}")',
                  f'set(CMAKE_EXE_LINKER_FLAGS_INIT "{" ".join(link_flags)}")']
    if compilers.launcher:
        lines += [f'set(CMAKE_C_COMPILER_LAUNCHER "{compilers.launcher}")',
                  f'set(CMAKE_CXX_COMPILER_LAUNCHER "{compilers.launcher}")']
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
