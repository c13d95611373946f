"""Smoke test of an installed tflite-edge-coral-lib wheel: prints ONE JSON object.

Run by edgeforge's smoke step in the target's Debian Python (under qemu-user for foreign
targets) and by the host's Python with the host's wheel; the two outputs must agree. No Edge
TPU is attached in either, so libedgetpu must enumerate none and refuse to create a delegate
without crashing. Needs nothing but the standard library (and the system's libusb-1.0, which
libedgetpu links).
"""

from __future__ import annotations

import ctypes
import json
import platform
import re
import sys
from ctypes import POINTER, Structure, byref, c_char_p, c_int, c_size_t, c_void_p

import tflite_edge_coral_lib

REQUIRED = (
    "tflite_plugin_create_delegate",
    "tflite_plugin_destroy_delegate",
    "edgetpu_list_devices",
    "edgetpu_free_devices",
    "edgetpu_create_delegate",
    "edgetpu_free_delegate",
    "edgetpu_verbosity",
    "edgetpu_version",
)


class EdgeTpuDevice(Structure):
    _fields_ = [("type", c_int), ("path", c_char_p)]


def main() -> int:
    info = tflite_edge_coral_lib.build_info()
    path = tflite_edge_coral_lib.library_path()
    lib = ctypes.CDLL(str(path))
    missing = [name for name in REQUIRED if not hasattr(lib, name)]

    lib.edgetpu_version.restype = c_char_p
    version = (lib.edgetpu_version() or b"").decode("utf-8", "replace")
    runtime = re.search(r"RuntimeVersion\((\d+)\)", version)

    lib.edgetpu_list_devices.argtypes = [POINTER(c_size_t)]
    lib.edgetpu_list_devices.restype = POINTER(EdgeTpuDevice)
    lib.edgetpu_free_devices.argtypes = [POINTER(EdgeTpuDevice)]
    count = c_size_t(0)
    devices = lib.edgetpu_list_devices(byref(count))
    if devices:
        lib.edgetpu_free_devices(devices)

    report_type = ctypes.CFUNCTYPE(None, c_char_p)
    reported: list[str] = []
    report = report_type(lambda m: reported.append((m or b"").decode("utf-8", "replace")))
    create = lib.tflite_plugin_create_delegate
    create.argtypes = [POINTER(c_char_p), POINTER(c_char_p), c_size_t, report_type]
    create.restype = c_void_p
    keys = (c_char_p * 1)(b"device")
    values = (c_char_p * 1)(b"usb:0")
    delegate = create(keys, values, 1, report)
    if delegate:  # an Edge TPU is attached after all: release it
        lib.tflite_plugin_destroy_delegate.argtypes = [c_void_p]
        lib.tflite_plugin_destroy_delegate(delegate)

    result = {
        "machine": platform.machine(),
        "distribution": info.distribution,
        "variant": info.variant,
        "libedgetpu": info.libedgetpu,
        "tensorflow": info.tensorflow,
        "library": path.name,
        "missing_symbols": missing,
        "runtime_version": int(runtime.group(1)) if runtime else None,
        "devices": count.value,
        "delegate_without_device": bool(delegate),
    }
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
