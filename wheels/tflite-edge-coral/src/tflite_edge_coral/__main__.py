"""``python -m tflite_edge_coral [info|devices|udev]``: what the plugin sees, and the udev hint."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import CoralError, list_devices, plugin, udev_hint, udev_rules_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tflite_edge_coral",
                                     description=__doc__)
    parser.add_argument("command", nargs="?", default="info", choices=("info", "devices", "udev"),
                        help="info (default): library, TensorFlow versions, Edge TPUs; "
                             "devices: one Edge TPU per line; udev: the rules and how to "
                             "install them")
    args = parser.parse_args(argv)
    if args.command == "udev":
        print(f"# {udev_rules_path()}")
        print(udev_rules_path().read_text(encoding="utf-8").rstrip())
        print()
        print(udev_hint())
        return 0
    if args.command == "devices":
        try:
            devices = list_devices()
        except CoralError as exc:
            print(f"tflite-edge-coral: {exc}", file=sys.stderr)
            return 1
        for d in devices:
            print(f"{d.name}\t{d.path}")
        if not devices:
            print("no Edge TPU found", file=sys.stderr)
            return 1
        return 0
    for line in plugin.describe():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
