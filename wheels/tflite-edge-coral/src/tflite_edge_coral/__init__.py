"""Coral Edge TPU support for tflite-edge: the ``edgetpu`` delegate plugin.

Installing this package registers ``edgetpu`` in tflite-edge's ``tflite_edge.delegates``
entry-point group::

    from tflite_edge import load_delegate
    delegate = load_delegate("edgetpu")                      # any Edge TPU
    delegate = load_delegate("edgetpu", {"device": "usb:0"})  # the first USB Accelerator

Device strings: ``"usb"``, ``"pci"`` (the first of that type), ``"usb:N"``, ``"pci:N"`` (the
N-th of that type, from 0), ``":N"`` (the N-th of any type); none: any Edge TPU.

libedgetpu comes from the ``tflite-edge-coral-lib`` wheel for this machine (or
``tflite-edge-coral-lib-max``), or from ``TFLITE_EDGE_CORAL_LIBRARY``. It must have been built
for the runtime's TensorFlow version: ``load_delegate`` refuses a mismatch, naming both.
"""

from __future__ import annotations

from ._errors import (
    CoralError,
    LibEdgeTpuError,
    NoEdgeTpuError,
    RuntimeUnavailableError,
    TFVersionMismatchError,
    udev_commands,
)
from ._native import DeviceSpec, EdgeTpuDevice, parse_device
from ._plugin import (
    LIBRARY_ENV,
    EdgeTpuPlugin,
    LibraryChoice,
    find_library,
    list_devices,
    plugin,
    runtime_version,
    udev_rules_path,
)
from ._versions import ALLOW_MISMATCH_ENV, versions_match

__version__ = "0.1.0"


def udev_hint() -> str:
    """How to install the udev rules this package ships, as shell commands."""
    return (
        "To use a Coral USB Accelerator without root, install the udev rules shipped with "
        "tflite-edge-coral and add your user to the plugdev group:\n"
        f"{udev_commands(str(udev_rules_path()))}"
    )


__all__ = [
    "ALLOW_MISMATCH_ENV",
    "LIBRARY_ENV",
    "CoralError",
    "DeviceSpec",
    "EdgeTpuDevice",
    "EdgeTpuPlugin",
    "LibEdgeTpuError",
    "LibraryChoice",
    "NoEdgeTpuError",
    "RuntimeUnavailableError",
    "TFVersionMismatchError",
    "find_library",
    "list_devices",
    "parse_device",
    "plugin",
    "runtime_version",
    "udev_hint",
    "udev_rules_path",
    "versions_match",
]
