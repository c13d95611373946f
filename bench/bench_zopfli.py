#!/usr/bin/env python3
"""Deflated size and time of a file: zlib level 9 against zopfli at some iteration counts.

What edgeforge/zipwriter.py's choice rests on (docs/benchmarks.md 2e): members of 64 KiB or
more are deflated by zopfli with ZOPFLI_ITERATIONS iterations. Prints a markdown table, one
row per (file, method), with the raw deflate bytes (what a zip member stores), the ratio to
zlib -9 and the wall seconds.

Usage: python bench/bench_zopfli.py FILE [FILE ...] [--iterations 1,15]
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

import zopfli.zopfli


def _zlib_raw(data: bytes) -> int:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return len(comp.compress(data) + comp.flush())


def _zopfli_raw(data: bytes, iterations: int) -> int:
    # the same call as edgeforge/zipwriter.py: a zlib stream, i.e. a 2-byte header and a
    # 4-byte Adler-32 around the raw deflate stream
    return len(zopfli.zopfli.compress(data, numiterations=iterations)) - 6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--iterations", default="1,15",
                    help="comma-separated zopfli iteration counts (default: 1,15)")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.iterations.split(",") if x]
    print("| file | bytes | method | deflated bytes | / zlib -9 | seconds |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for path in args.files:
        data = path.read_bytes()
        t0 = time.perf_counter()
        base = _zlib_raw(data)
        rows = [("zlib -9", base, time.perf_counter() - t0)]
        for n in counts:
            t0 = time.perf_counter()
            size = _zopfli_raw(data, n)
            rows.append((f"zopfli, {n} iteration{'s' if n != 1 else ''}", size,
                         time.perf_counter() - t0))
        for method, size, secs in rows:
            print(f"| {path.name} | {len(data):,} | {method} | {size:,} | "
                  f"{size / base:.3f} | {secs:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
