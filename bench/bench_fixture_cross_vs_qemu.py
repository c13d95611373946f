#!/usr/bin/env python3
"""The fixture library for linux-aarch64: edgeforge's cross build vs a native compiler under QEMU.

(a) ``python -m edgeforge build tests/fixtures/edgemath.toml --target linux-aarch64
--no-smoke`` in a fresh work directory with ``CCACHE_DISABLE=1``, so every object is really
compiled (zig's own cache of libc++/glibc stubs stays warm, as on any machine that built
once).

(b) the cibuildwheel way: Debian arm64's own g++/cmake/ninja (a root unpacked by
``edgeforge.smoke.roots.ensure_root``) running under qemu-user. A compiler driver spawns
cc1plus, as and ld, which ``qemu-aarch64 -L ROOT`` cannot follow, so the script registers a
temporary binfmt_misc entry (``edgeforge-bench-aarch64``, F flag, /usr/bin/qemu-aarch64-static)
and runs cmake + ninja in a chroot of the root, inside a private mount namespace
(``unshare -m``: the bind mounts vanish with the process). The entry is always removed
afterwards. Same CMakeLists, same build type (Release), same target (``edgemath``), one job.

Wall seconds and CPU seconds (user+sys of all children) are reported for both, with the
ratio qemu / cross. Needs root (binfmt_misc, chroot, unshare).

Usage: python bench/bench_fixture_cross_vs_qemu.py [--runs N] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_NAME = "edgeforge-bench-aarch64"
QEMU = "/usr/bin/qemu-aarch64-static"
# qemu's own aarch64 ELF magic and mask (scripts/qemu-binfmt-conf.sh)
AARCH64_MAGIC = (r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00")
AARCH64_MASK = (r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff"
                r"\xff\xff")
# dash: the chroot needs a /bin/sh (ninja runs every command through it)
ROOT_PACKAGES = ["g++", "cmake", "ninja-build", "make", "python3", "dash"]
FIXTURE = REPO / "tests" / "fixtures"
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "LC_ALL": "C"}


# ---------------------------------------------------------------- machine and timing

def machine() -> dict[str, object]:
    """nproc, CPU model, RAM and the load average right now."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem_kb / 2**20, 1),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def timed(argv: Sequence[str], **kwargs: object) -> dict[str, float]:
    """Run ``argv`` (check=True); wall seconds and CPU seconds of all its descendants."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.monotonic()
    subprocess.run(list(argv), check=True, **kwargs)  # type: ignore[call-overload]
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


# ---------------------------------------------------------------- the Debian arm64 root

def arm64_root(packages: Sequence[str] = ROOT_PACKAGES) -> Path:
    from edgeforge.fetch import default_cache_dir
    from edgeforge.log import Logger
    from edgeforge.smoke.roots import ensure_root

    return ensure_root("arm64", "bookworm", list(packages), default_cache_dir(), Logger()).path


@contextlib.contextmanager
def binfmt_aarch64() -> Iterator[str]:
    """A temporary binfmt_misc entry for aarch64 ELF (F flag); removed on the way out.

    Yields "binfmt" when registered, raises OSError when the kernel refuses.
    """
    entry = BINFMT_DIR / BINFMT_NAME
    if not (BINFMT_DIR / "register").exists():
        raise OSError(f"{BINFMT_DIR} is not mounted")
    if entry.exists():  # a leftover of an interrupted run of this script
        entry.write_text("-1")
    rule = f":{BINFMT_NAME}:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{QEMU}:F"
    with open(BINFMT_DIR / "register", "w") as f:
        f.write(rule)
    try:
        yield "binfmt"
    finally:
        if entry.exists():
            entry.write_text("-1")


def in_chroot(root: Path, work: Path, script: str, binds: Sequence[Path] = ()) -> list[str]:
    """argv running ``script`` by the root's /bin/sh in a chroot of ``root``, ``work`` as /bench.

    Everything happens in a private mount namespace (``unshare -m``): a tmpfs holds an
    overlay whose lower layer is the cached root, so /dev, /proc, /tmp and the /bin/sh link
    (Debian's dash package leaves it to a maintainer script, which an unpacked root never
    runs) are added without writing into the cached root; ``work`` is bind-mounted as /bench
    and each of ``binds`` read-only at its own path. Nothing outlives the process.
    """
    ovl = work.parent / "overlay"
    ovl.mkdir(exist_ok=True)
    q = shlex.quote
    mnt = q(str(ovl / "m"))
    setup = " && ".join([
        f"mount -t tmpfs edgeforge-bench {q(str(ovl))}",
        f"mkdir {q(str(ovl / 'u'))} {q(str(ovl / 'w'))} {mnt}",
        f"mount -t overlay overlay -o lowerdir={q(str(root))},upperdir={q(str(ovl / 'u'))},"
        f"workdir={q(str(ovl / 'w'))} {mnt}",
        f"mkdir -p {mnt}/dev {mnt}/proc {mnt}/tmp {mnt}/bench",
        f"{{ [ -e {mnt}/usr/bin/sh ] || ln -s dash {mnt}/usr/bin/sh; }}",
        f"mount --rbind /dev {mnt}/dev",
        f"mount -t proc proc {mnt}/proc",
        f"mount --bind {q(str(work))} {mnt}/bench",
        *[f"mkdir -p {mnt}{q(str(b))} && mount --bind -o ro {q(str(b))} {mnt}{q(str(b))}"
          for b in binds],
        f"exec chroot {mnt} /bin/sh -c {q(script)}",
    ])
    return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", setup]


def check_root(root: Path) -> None:
    for inside in ("usr/bin/dash", "usr/bin/cmake", "usr/bin/ninja", "usr/bin/g++"):
        if not (root / inside).exists():
            raise SystemExit(f"the arm64 root {root} has no /{inside}")


# ---------------------------------------------------------------- the two builds

def cross_build(tmp: Path, env: dict[str, str]) -> dict[str, object]:
    work, dist = tmp / "cross-work", tmp / "cross-dist"
    argv = [sys.executable, "-m", "edgeforge", "build", str(FIXTURE / "edgemath.toml"),
            "--target", "linux-aarch64", "--no-smoke", "-j", "1",
            "--work-dir", str(work), "--dist", str(dist)]
    result = timed(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    return {"command": " ".join(["CCACHE_DISABLE=1", "python", *argv[1:]]), **result,
            "wheels": wheels}


def qemu_build(tmp: Path, root: Path) -> dict[str, object]:
    work = tmp / "qemu-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(FIXTURE / "edgemath", work / "edgemath")
    script = ("cd /bench && cmake -G Ninja -S edgemath -B build -DCMAKE_BUILD_TYPE=Release "
              "-DCMAKE_POSITION_INDEPENDENT_CODE=ON -DEDGEMATH_BUILD_SMOKE_DRIVER=OFF "
              ">configure.log 2>&1 && ninja -C build -j1 edgemath >build.log 2>&1")
    env = CHROOT_ENV
    result = timed(in_chroot(root, work, script), env=env)
    lib = work / "build" / "libedgemath.so"
    out = subprocess.run(["file", "-b", str(lib)], capture_output=True, text=True).stdout.strip()
    return {"command": script, **result, "library": out.split(",")[:2]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="alternating runs of each (2)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    tarball = FIXTURE / "edgemath-1.0.tar"
    subprocess.run([sys.executable, str(FIXTURE / "make_tarball.py"), str(tarball)], check=True,
                   stdout=subprocess.DEVNULL)
    root = arm64_root()
    check_root(root)
    env = dict(os.environ, CCACHE_DISABLE="1")
    info = machine()
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp_s:
        tmp = Path(tmp_s)
        with binfmt_aarch64():
            for i in range(args.runs):
                shutil.rmtree(tmp / "cross-work", ignore_errors=True)
                shutil.rmtree(tmp / "cross-dist", ignore_errors=True)
                runs.append({"run": i + 1, "cross": cross_build(tmp, env),
                             "qemu": qemu_build(tmp, root)})
    assert not (BINFMT_DIR / BINFMT_NAME).exists()

    report = {"machine": info, "root": str(root), "runs": runs,
              "qemu_binary": subprocess.run([QEMU, "--version"], capture_output=True,
                                            text=True).stdout.splitlines()[0]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Machine: {info['cpu']}, nproc {info['nproc']}, {info['ram_gib']} GiB, "
          f"load average at start {info['loadavg']}; {report['qemu_binary']}")
    print("| run | cross wall (s) | cross CPU (s) | qemu wall (s) | qemu CPU (s) | "
          "ratio wall | ratio CPU | load before/after |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in runs:
        c, q = r["cross"], r["qemu"]
        print(f"| {r['run']} | {c['wall_s']} | {c['cpu_s']} | {q['wall_s']} | {q['cpu_s']} | "
              f"{q['wall_s'] / c['wall_s']:.1f} | {q['cpu_s'] / c['cpu_s']:.1f} | "
              f"{c['load_before']}/{q['load_after']} |")
    print(f"cross: {runs[0]['cross']['command']}")
    print(f"qemu (chroot of {root.name}, binfmt {BINFMT_NAME} F): {runs[0]['qemu']['command']}")
    print(f"qemu output: {runs[0]['qemu']['library']}; cross wheel: {runs[0]['cross']['wheels']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
