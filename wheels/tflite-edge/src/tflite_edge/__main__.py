"""``python -m tflite_edge doctor``."""

from __future__ import annotations

import sys

USAGE = "usage: python -m tflite_edge doctor"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["doctor"]:
        from .doctor import main as doctor

        return doctor(args[1:])
    print(USAGE, file=sys.stderr)
    return 0 if args[:1] in (["-h"], ["--help"]) else 2


if __name__ == "__main__":
    sys.exit(main())
