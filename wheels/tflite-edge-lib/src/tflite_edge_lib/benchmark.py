"""``tflite-edge-benchmark``: run the bundled TFLite ``benchmark_model`` with these args.

Example: ``tflite-edge-benchmark --graph=model.tflite --num_threads=4``.
"""

from __future__ import annotations

import os
import subprocess
import sys

from . import benchmark_path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        exe = os.fspath(benchmark_path())
    except FileNotFoundError as exc:
        print(f"tflite-edge-benchmark: {exc}", file=sys.stderr)
        return 2
    if not os.access(exe, os.X_OK):
        print(f"tflite-edge-benchmark: {exe} is not executable", file=sys.stderr)
        return 2
    if sys.platform == "win32" or argv is not None:
        return subprocess.call([exe, *args])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, [exe, *args])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
