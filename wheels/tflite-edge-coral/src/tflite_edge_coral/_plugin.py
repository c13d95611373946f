"""The ``edgetpu`` delegate plugin (tflite-edge's ``tflite_edge.delegates`` protocol).

``load_delegate("edgetpu", options)`` in tflite-edge calls ``plugin.library_path()`` and then
``plugin.options_to_strings(options)``, and creates the delegate from the library with
those strings. This plugin:

1. finds libedgetpu: ``TFLITE_EDGE_CORAL_LIBRARY`` if set, else the ``tflite-edge-coral-lib``
   (or ``-max``) wheel for this machine;
2. refuses a TensorFlow Lite runtime of another TensorFlow version than the one libedgetpu was
   built for, naming both (``_versions``);
3. checks, through libedgetpu's own ``edgetpu_list_devices``, that an Edge TPU matching the
   requested device exists, and otherwise raises one clear error saying what to check (USB
   cable, udev rules, plugdev group) instead of handing libedgetpu a device it cannot open.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _native
from ._errors import (
    UDEV_RULES_NAME,
    LibEdgeTpuError,
    NoEdgeTpuError,
    RuntimeUnavailableError,
    TFVersionMismatchError,
    no_device_help,
)
from ._native import EdgeTpuDevice, parse_device
from ._versions import ALLOW_MISMATCH_ENV, mismatch_message, versions_match

LIBRARY_ENV = "TFLITE_EDGE_CORAL_LIBRARY"

# Options libedgetpu's plugin entry point understands (edgetpu_delegate_for_custom_op_
# tflite_plugin.cc), by their Python-style names; upstream's own spellings pass too.
_OPTION_NAMES = {
    "device": "device",
    "performance": "Performance",
    "usb_always_dfu": "Usb.AlwaysDfu",
    "usb_max_bulk_in_queue_length": "Usb.MaxBulkInQueueLength",
}
_UPSTREAM_NAMES = {v: v for v in _OPTION_NAMES.values()}
_PERFORMANCE = ("Low", "Medium", "High", "Max")


@dataclass(frozen=True)
class LibraryChoice:
    """Which libedgetpu the plugin uses, and what is known about it."""

    path: str
    source: str  # "tflite-edge-coral-lib 16.0 (std)" or "TFLITE_EDGE_CORAL_LIBRARY"
    tensorflow: str | None  # the TF version it was built for; None when unknown (override)


def udev_rules_path() -> Path:
    """The udev rules file this package ships (``data/99-edgetpu-accelerator.rules``)."""
    return Path(__file__).resolve().parent / "data" / UDEV_RULES_NAME


def find_library() -> LibraryChoice:
    """Locate libedgetpu for this machine without loading it."""
    override = os.environ.get(LIBRARY_ENV)
    if override is not None:
        if not override or not os.path.isfile(override):
            raise LibEdgeTpuError(f"{LIBRARY_ENV}={override!r}: no such file")
        return LibraryChoice(os.path.abspath(override), LIBRARY_ENV, None)
    try:
        import tflite_edge_coral_lib as lib
    except ImportError as exc:
        if type(exc).__name__ == "VariantConflictError":
            raise LibEdgeTpuError(str(exc)) from exc
        raise LibEdgeTpuError(
            "libedgetpu is not installed: `pip install tflite-edge-coral-lib` (standard clock) "
            "or `pip install tflite-edge-coral-lib-max` (maximum clock) installs the wheel for "
            f"this machine; or set {LIBRARY_ENV} to a libedgetpu.so.1 ({exc})"
        ) from exc
    try:
        info = lib.build_info()
        path = lib.library_path()
    except (OSError, ValueError) as exc:
        raise LibEdgeTpuError(str(exc)) from exc
    source = f"{info.distribution} (libedgetpu {info.libedgetpu}, {info.variant})"
    return LibraryChoice(str(path), source, info.tensorflow)


def runtime_version() -> tuple[str, str]:
    """(TensorFlow version, library path) of the TensorFlow Lite runtime tflite-edge uses:
    ``TfLiteVersion()`` of the libtensorflowlite_c it loads."""
    try:
        from tflite_edge import _library
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"tflite-edge is not installed (`pip install tflite-edge`): {exc}"
        ) from exc
    try:
        loaded = _library.load_library()
    except ImportError as exc:  # tflite_edge._library.LibraryNotFoundError
        raise RuntimeUnavailableError(
            "cannot check which TensorFlow version the TensorFlow Lite runtime is, which "
            f"libedgetpu must match: {exc}"
        ) from exc
    return loaded.version, loaded.path


def check_tf_version(choice: LibraryChoice) -> None:
    """Raise :class:`TFVersionMismatchError` unless the runtime's TF version matches."""
    runtime_tf, runtime_path = runtime_version()
    if choice.tensorflow is None:
        warnings.warn(
            f"{LIBRARY_ENV} is set: the TensorFlow version {choice.path} was built for is "
            f"unknown, so it is not checked against the runtime's ({runtime_tf})",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    if versions_match(choice.tensorflow, runtime_tf):
        return
    message = mismatch_message(choice.tensorflow, runtime_tf,
                               f"{choice.source}, {choice.path}", runtime_path)
    if os.environ.get(ALLOW_MISMATCH_ENV) == "1":
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return
    raise TFVersionMismatchError(message, choice.tensorflow, runtime_tf)


def list_devices() -> list[EdgeTpuDevice]:
    """The Edge TPUs libedgetpu sees (``edgetpu_list_devices``); ``[]`` when none."""
    return _native.load(find_library().path).list_devices()


def _describe_devices(devices: list[EdgeTpuDevice]) -> str:
    return ", ".join(f"{d.name} ({d.path})" for d in devices)


def check_device(device: str, library: str) -> EdgeTpuDevice:
    """The Edge TPU ``device`` selects, or :class:`NoEdgeTpuError` with what to check."""
    spec = parse_device(device)
    devices = _native.load(library).list_devices()
    chosen = spec.select(devices)
    if chosen is not None:
        return chosen
    wanted = f"device {device!r}" if device else "any device"
    if not devices:
        raise NoEdgeTpuError(
            f"No Edge TPU found ({wanted}): libedgetpu ({library}) sees no USB or PCIe "
            f"Edge TPU.\n{no_device_help(str(udev_rules_path()))}"
        )
    raise NoEdgeTpuError(
        f"No Edge TPU matches {wanted}: libedgetpu sees {_describe_devices(devices)}. "
        "Device strings: \"usb\", \"pci\", \"usb:N\", \"pci:N\" (N counts from 0 per type), "
        "\":N\" (any type)."
    )


def _option_value(name: str, value: Any) -> str:
    if name == "Performance":
        for level in _PERFORMANCE:
            if str(value).lower() == level.lower():
                return level
        raise ValueError(f"performance must be one of {', '.join(_PERFORMANCE)}, got {value!r}")
    if name == "Usb.AlwaysDfu":
        text = str(value).lower()
        if isinstance(value, bool) or text in ("true", "false", "1", "0"):
            return "True" if (value is True or text in ("true", "1")) else "False"
        raise ValueError(f"usb_always_dfu must be True or False, got {value!r}")
    if name == "Usb.MaxBulkInQueueLength":
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if not 0 <= number <= 255:
            raise ValueError(f"usb_max_bulk_in_queue_length must be 0..255, got {value!r}")
        return str(number)
    return "" if value is None else str(value)


class EdgeTpuPlugin:
    """The object registered as ``edgetpu`` in the ``tflite_edge.delegates`` group."""

    name = "edgetpu"
    #: Names existing code passes to ``load_delegate`` for libedgetpu.
    aliases = ("libedgetpu.so.1", "libedgetpu.so.1.0", "libedgetpu.1.dylib", "edgetpu.dll")

    def library_path(self) -> str:
        """libedgetpu for this machine, after the TensorFlow-version check."""
        choice = find_library()
        check_tf_version(choice)
        return choice.path

    def options_to_strings(self, options: Mapping[str, Any]) -> dict[str, str]:
        """Validate the options and check that the requested Edge TPU exists."""
        strings: dict[str, str] = {}
        for key, value in options.items():
            name = _OPTION_NAMES.get(key) or _UPSTREAM_NAMES.get(key)
            if name is None:
                known = ", ".join(sorted(_OPTION_NAMES))
                raise ValueError(f"unknown Edge TPU option {key!r}; known: {known}")
            strings[name] = _option_value(name, value)
        check_device(strings.get("device", ""), find_library().path)
        return strings

    def describe(self) -> list[str]:
        """Lines for ``doctor``: the library, the TensorFlow-version rule, the Edge TPUs.
        Never raises: each problem becomes a line."""
        lines: list[str] = []
        try:
            choice = find_library()
        except LibEdgeTpuError as exc:
            return [f"libedgetpu: unusable: {exc}"]
        lines.append(f"libedgetpu: {choice.path} from {choice.source}")
        try:
            lines.append(f"libedgetpu version: {_native.load(choice.path).version()}")
        except LibEdgeTpuError as exc:
            return [*lines, f"libedgetpu: cannot load: {exc}"]
        try:
            runtime_tf, _ = runtime_version()
            built = choice.tensorflow or "unknown"
            ok = choice.tensorflow is not None and versions_match(choice.tensorflow, runtime_tf)
            lines.append(f"TensorFlow: libedgetpu built for {built}, runtime is {runtime_tf} "
                         f"({'match' if ok else 'MISMATCH: load_delegate refuses it'})")
        except RuntimeUnavailableError as exc:
            lines.append(f"TensorFlow: runtime not checked: {exc}")
        devices = _native.load(choice.path).list_devices()
        if devices:
            lines.append(f"Edge TPUs: {_describe_devices(devices)}")
        else:
            lines.append("Edge TPUs: none found (USB cable? udev rules? plugdev group? "
                         "`python -m tflite_edge_coral udev` shows the rules)")
        return lines

    def __repr__(self) -> str:
        return "<tflite_edge_coral edgetpu delegate plugin>"


plugin = EdgeTpuPlugin()
