"""libedgetpu's C API (tflite/public/edgetpu_c.h) through ctypes, and device strings.

Only what the plugin needs is declared::

    struct edgetpu_device { enum edgetpu_device_type type; const char* path; };
    struct edgetpu_device* edgetpu_list_devices(size_t* num_devices);
    void edgetpu_free_devices(struct edgetpu_device* dev);
    const char* edgetpu_version(void);

``enum edgetpu_device_type``: ``EDGETPU_APEX_PCI = 0``, ``EDGETPU_APEX_USB = 1``.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from ctypes import POINTER, Structure, byref, c_char_p, c_int, c_size_t
from dataclasses import dataclass

from ._errors import LibEdgeTpuError

_TYPE_NAMES = {0: "pci", 1: "usb"}
_DEVICE = re.compile(r"^(?P<type>usb|pci)?(?::(?P<index>\d+))?$")


class _EdgeTpuDevice(Structure):
    _fields_ = [("type", c_int), ("path", c_char_p)]


@dataclass(frozen=True)
class EdgeTpuDevice:
    """One Edge TPU libedgetpu enumerated.

    ``name`` is the device string that selects it (``"usb:0"``, ``"pci:1"``): the type and its
    index among the devices of that type, in libedgetpu's enumeration order.
    """

    type: str  # "usb" or "pci"
    path: str  # e.g. "/sys/bus/usb/devices/2-1" or "/dev/apex_0"
    index: int  # among the devices of the same type

    @property
    def name(self) -> str:
        return f"{self.type}:{self.index}"


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device string: ``""``, ``"usb"``, ``"pci"``, ``":N"``, ``"usb:N"``, ``"pci:N"``."""

    text: str
    type: str | None  # None: any type
    index: int | None  # None: any device of that type

    def select(self, devices: list[EdgeTpuDevice]) -> EdgeTpuDevice | None:
        """The device this spec names, as libedgetpu would pick it, or None."""
        pool = [d for d in devices if self.type is None or d.type == self.type]
        if self.index is None:
            return pool[0] if pool else None
        return pool[self.index] if self.index < len(pool) else None


def parse_device(text: str) -> DeviceSpec:
    """Parse a device string; raises ``ValueError`` listing the accepted forms."""
    m = _DEVICE.match(text.strip())
    if m is None:
        raise ValueError(
            f"invalid Edge TPU device {text!r}: use \"usb\" or \"pci\" (the first of that type), "
            "\"usb:N\" or \"pci:N\" (the N-th of that type, from 0), \":N\" (the N-th of any "
            "type), or leave it out for any Edge TPU"
        )
    index = m.group("index")
    return DeviceSpec(text=text, type=m.group("type"), index=int(index) if index else None)


class LibEdgeTpu:
    """A loaded libedgetpu with its device-listing functions declared."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._cdll = ctypes.CDLL(path)
        except OSError as exc:
            hint = ""
            if "libusb" in str(exc):
                hint = (" libedgetpu needs the system's libusb-1.0: `sudo apt-get install "
                        "libusb-1.0-0` (Debian, Raspberry Pi OS, Ubuntu).")
            raise LibEdgeTpuError(f"cannot load libedgetpu from {path}: {exc}.{hint}") from exc
        try:
            self._list = self._cdll.edgetpu_list_devices
            self._free = self._cdll.edgetpu_free_devices
            self._version = self._cdll.edgetpu_version
        except AttributeError as exc:
            raise LibEdgeTpuError(
                f"{path} is not libedgetpu: it lacks the edgetpu_c.h functions ({exc})"
            ) from exc
        self._list.argtypes = [POINTER(c_size_t)]
        self._list.restype = POINTER(_EdgeTpuDevice)
        self._free.argtypes = [POINTER(_EdgeTpuDevice)]
        self._free.restype = None
        self._version.argtypes = []
        self._version.restype = c_char_p

    def version(self) -> str:
        """``edgetpu_version()``: libedgetpu's build label and runtime version."""
        return (self._version() or b"").decode("utf-8", "replace")

    def list_devices(self) -> list[EdgeTpuDevice]:
        """``edgetpu_list_devices()``, copied into Python objects and freed."""
        count = c_size_t(0)
        array = self._list(byref(count))
        devices: list[EdgeTpuDevice] = []
        if not array:
            return devices
        try:
            seen: dict[str, int] = {}
            for i in range(count.value):
                raw = array[i]
                kind = _TYPE_NAMES.get(raw.type, f"type{raw.type}")
                path = (raw.path or b"").decode("utf-8", "replace")
                devices.append(EdgeTpuDevice(type=kind, path=path, index=seen.get(kind, 0)))
                seen[kind] = seen.get(kind, 0) + 1
        finally:
            self._free(array)
        return devices


_lock = threading.Lock()
_loaded: dict[str, LibEdgeTpu] = {}


def load(path: str | os.PathLike[str]) -> LibEdgeTpu:
    """Load libedgetpu at ``path`` once per process (dlopen shares the handle anyway)."""
    key = os.path.abspath(os.fspath(path))
    with _lock:
        lib = _loaded.get(key)
        if lib is None:
            lib = _loaded[key] = LibEdgeTpu(key)
        return lib
