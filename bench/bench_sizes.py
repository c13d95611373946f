#!/usr/bin/env python3
"""Library and wheel sizes: edgeforge's TFLite builds vs tflite-runtime 2.14.0's PyPI wheels
(Linux) and ai-edge-litert 2.3.0's (Windows, macOS).

The peers' wheels are fetched with pip's ordinary client (``pip download --no-deps
tflite-runtime==2.14.0 --platform TAG --python-version 3.11 --only-binary :all:``, and
ai-edge-litert==2.3.0 for win_amd64, win_arm64, macOS arm64 and x86_64 with Python 3.12); for
each wheel the file size and the uncompressed size of each shared library inside (.so, .pyd,
.dll, .dylib) are listed, and a platform with no wheel says so. On our side: every ``*.whl``
in the given dist directories (file size, and the libraries inside) and every
``libtensorflowlite_c.so`` under the given library directories (bytes on disk).

``--strip LIB`` reports an unstripped library's size after ``strip --strip-unneeded`` of a copy
(the strip for its ELF machine: strip, aarch64-linux-gnu-strip, arm-linux-gnueabihf-strip).

Usage: python bench/bench_sizes.py [--dist DIR ...] [--libs DIR ...] [--strip LIB ...]
       [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

# pip's --platform tags that fetch tflite-runtime 2.14.0's cp311 wheels (x86_64 is tagged
# manylinux2014; the ARM wheels need glibc 2.34)
PEER_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux_2_34_aarch64",
                  "armv7l": "manylinux_2_34_armv7l"}
# ai-edge-litert 2.3.0 for the Windows and macOS targets (our wheel's platform -> pip's
# --platform). macOS: pip takes any wheel for an older macOS than the tag names, so 15.0
# finds theirs whatever its floor is.
LITERT_PLATFORMS = {"win_amd64": "win_amd64", "win_arm64": "win_arm64",
                    "macosx_11_0_arm64": "macosx_15_0_arm64",
                    "macosx_10_15_x86_64": "macosx_15_0_x86_64"}
LIBRARY_SUFFIXES = (".so", ".pyd", ".dll", ".dylib")
DEFAULT_DISTS = [Path("/tmp/ef/dist-tflite")]
DEFAULT_LIBS = [Path("/tmp/tflite-work/out")]


def deflated(path: Path) -> int:
    """Bytes after deflate level 9 (what a wheel's zip does to the file)."""
    return len(zlib.compress(path.read_bytes(), 9))


def wheel_entry(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    sos = {i.filename: i.file_size for i in infos
           if any(suffix in Path(i.filename).name for suffix in LIBRARY_SUFFIXES)}
    return {"wheel": path.name, "wheel_bytes": path.stat().st_size,
            "installed_bytes": sum(i.file_size for i in infos), "shared_objects": sos}


def wheel_arch(name: str) -> str:
    """The machine a wheel's platform tag names (x86_64, aarch64, armv7l, ...)."""
    platform = name[:-len(".whl")].split("-")[-1].split(".")[0]
    for arch in ("x86_64", "aarch64", "armv7l", "armv6l", "riscv64"):
        if platform.endswith(arch):
            return arch
    return platform


def wheel_platform(name: str) -> str:
    """A wheel's platform tag (its first, for a compressed tag set)."""
    return name[:-len(".whl")].split("-")[-1].split(".")[0]


def pip_download(requirement: str, tag: str, python: str, dest: Path) -> dict[str, object]:
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", requirement,
            "--platform", tag, "--python-version", python, "--only-binary", ":all:",
            "-d", str(dest), "-q"]
    done = subprocess.run(argv, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return {"platform": tag, "error": (errors or ["no wheel"])[-1]}
    return {"platform": tag, **wheel_entry(wheels[0])}


def peer_wheels(tmp: Path) -> list[dict[str, object]]:
    return [{"arch": arch, **pip_download("tflite-runtime==2.14.0", tag, "3.11", tmp / arch)}
            for arch, tag in PEER_PLATFORMS.items()]


def litert_wheels(tmp: Path) -> list[dict[str, object]]:
    """ai-edge-litert 2.3.0's wheel for each of our Windows/macOS platforms, or why none."""
    return [{"ours": ours_tag, **pip_download("ai-edge-litert==2.3.0", tag, "3.12",
                                               tmp / f"litert-{ours_tag}")}
            for ours_tag, tag in LITERT_PLATFORMS.items()]


def ours(dists: Sequence[Path], libs: Sequence[Path]) -> dict[str, list[dict[str, object]]]:
    wheels = [wheel_entry(w) for d in dists for w in sorted(d.glob("*.whl"))]
    libraries = [{"library": str(p), "bytes": p.stat().st_size, "deflate9_bytes": deflated(p)}
                 for d in libs for p in sorted(d.glob("**/libtensorflowlite_c.so"))]
    return {"wheels": wheels, "libraries": libraries}


_STRIP = {62: "strip", 183: "aarch64-linux-gnu-strip", 40: "arm-linux-gnueabihf-strip"}


def stripped_size(lib: Path, tmp: Path) -> dict[str, object]:
    """Size of an unstripped library after ``strip --strip-unneeded`` (on a copy)."""
    machine = int.from_bytes(lib.read_bytes()[18:20], "little")
    copy = tmp / f"strip-{machine}-{lib.name}"
    shutil.copyfile(lib, copy)
    subprocess.run([_STRIP.get(machine, "strip"), "--strip-unneeded", str(copy)], check=True)
    return {"library": str(lib), "unstripped_bytes": lib.stat().st_size,
            "stripped_bytes": copy.stat().st_size, "deflate9_bytes": deflated(copy),
            "strip": _STRIP.get(machine, "strip")}


def print_ratios(what: str, peer: str,
                 rows: Sequence[tuple[str, dict[str, object], dict[str, object]]]) -> None:
    """A table of our wheels' sizes over the peer's, one row per (name, ours, theirs)."""
    if not rows:
        return
    print()
    print(f"| {what} | wheel: ours / {peer} | installed: ours / {peer} |")
    print("| --- | ---: | ---: |")
    for name, w, p in rows:
        print(f"| {name} | {w['wheel_bytes'] / p['wheel_bytes']:.2f} | "  # type: ignore[operator]
              f"{w['installed_bytes'] / p['installed_bytes']:.2f} |")  # type: ignore[operator]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, action="append")
    parser.add_argument("--libs", type=Path, action="append")
    parser.add_argument("--strip", type=Path, action="append", default=[],
                        help="an unstripped library: report its size stripped (on a copy)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-sizes-") as tmp:
        peers = peer_wheels(Path(tmp))
        litert = litert_wheels(Path(tmp))
        strips = [stripped_size(lib, Path(tmp)) for lib in args.strip]
    mine = ours(args.dist or DEFAULT_DISTS, args.libs or DEFAULT_LIBS)
    mine["stripped_here"] = strips
    report = {"tflite_runtime_2_14_0": peers, "ai_edge_litert_2_3_0": litert, "edgeforge": mine}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print("| artifact | wheel bytes | installed bytes | shared object(s), uncompressed bytes |")
    print("| --- | ---: | ---: | --- |")
    for label, p in [*((f"tflite-runtime 2.14.0 {p['arch']}", p) for p in peers),
                     *((f"ai-edge-litert 2.3.0 for {p['ours']}", p) for p in litert),
                     *(("", w) for w in mine["wheels"])]:
        if "error" in p:
            print(f"| {label} ({p['platform']}): no wheel: {p['error']} | | |")
            continue
        sos = ", ".join(f"{Path(k).name} {v:,}" for k, v in p["shared_objects"].items())
        print(f"| {p['wheel']} | {p['wheel_bytes']:,} | {p['installed_bytes']:,} | {sos} |")
    for lib in mine["libraries"]:
        print(f"| {lib['library']} | (deflate -9: {lib['deflate9_bytes']:,}) | | "
              f"{lib['bytes']:,} |")
    for st in strips:
        print(f"| {st['library']} after `{st['strip']} --strip-unneeded` | "
              f"(deflate -9: {st['deflate9_bytes']:,}) | | "
              f"{st['stripped_bytes']:,} (unstripped {st['unstripped_bytes']:,}) |")
    peer_by_arch = {p["arch"]: p for p in peers if "error" not in p}
    # tflite-runtime ships glibc wheels only: compare ours for glibc
    pairs = [(w, peer_by_arch[wheel_arch(str(w["wheel"]))]) for w in mine["wheels"]
             if wheel_arch(str(w["wheel"])) in peer_by_arch and "musllinux" not in str(w["wheel"])]
    print_ratios("arch", "tflite-runtime", [(wheel_arch(str(w["wheel"])), w, p) for w, p in pairs])
    litert_by_tag = {p["ours"]: p for p in litert if "error" not in p}
    native = [(w, litert_by_tag[wheel_platform(str(w["wheel"]))]) for w in mine["wheels"]
              if wheel_platform(str(w["wheel"])) in litert_by_tag]
    print_ratios("platform", "ai-edge-litert",
                 [(wheel_platform(str(w["wheel"])), w, p) for w, p in native])
    return 0


if __name__ == "__main__":
    sys.exit(main())
