"""libedgetpu for this machine: the binary half of tflite-edge-coral.

One wheel per platform (``py3-none-<platform>``), built by edgeforge from a libedgetpu
release archive or from source. Two distributions install this same package:

- ``tflite-edge-coral-lib``: the ``std`` variant (libedgetpu's "throttled" build, the
  reduced USB clock that upstream installs by default);
- ``tflite-edge-coral-lib-max``: the ``max`` variant (libedgetpu's "direct" build, the
  maximum operating frequency; the USB Accelerator runs hotter).

They must never be installed together. Both put their files under the same package path
(``tflite_edge_coral_lib/``), and this module refuses to import when it finds both
distributions installed, saying which to remove (pip itself does not notice two
distributions writing the same files: the second install silently overwrites the first).

The staged ``_build_info.json`` records what the binary is: the variant, libedgetpu's version
and the TensorFlow version it was built against (the plugin refuses a runtime from another
TensorFlow version).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DISTRIBUTIONS",
    "BuildInfo",
    "VariantConflictError",
    "build_info",
    "library_path",
    "tensorflow_version",
    "variant",
]

#: The distributions that install this package, by variant.
DISTRIBUTIONS = {"std": "tflite-edge-coral-lib", "max": "tflite-edge-coral-lib-max"}

_HERE = Path(__file__).resolve().parent
_BUILD_INFO = _HERE / "_build_info.json"


class VariantConflictError(ImportError):
    """Both the std and the max distribution are installed in one environment."""


@dataclass(frozen=True)
class BuildInfo:
    """What this wheel's libedgetpu is, as the recipe that built it recorded."""

    distribution: str
    variant: str  # "std" or "max"
    libedgetpu: str  # libedgetpu's version, e.g. "16.0"
    tensorflow: str  # the TensorFlow version libedgetpu was compiled against
    origin: str  # where the binary came from, in words
    tensorflow_commit: str | None = None
    tensorflow_evidence: str | None = None


def _installed(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_single_variant() -> None:
    """Raise :class:`VariantConflictError` if both variants' distributions are installed."""
    found = {v: (d, _installed(d)) for v, d in DISTRIBUTIONS.items()}
    if all(version is not None for _, version in found.values()):
        listed = " and ".join(f"{d} {version}" for d, version in found.values())
        raise VariantConflictError(
            f"{listed} are both installed, and they must never be: they install the same "
            f"files (tflite_edge_coral_lib/), so one has overwritten the other. Keep one "
            f"variant: `pip uninstall -y {' '.join(DISTRIBUTIONS.values())}`, then "
            f"`pip install {DISTRIBUTIONS['std']}` (standard clock) or "
            f"`pip install {DISTRIBUTIONS['max']}` (maximum clock)."
        )


def build_info() -> BuildInfo:
    """The recorded facts about this wheel's libedgetpu (see the module docstring)."""
    try:
        data = json.loads(_BUILD_INFO.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{_BUILD_INFO} is missing: this tflite_edge_coral_lib was not built by edgeforge "
            "(or its files were damaged); reinstall tflite-edge-coral-lib"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{_BUILD_INFO} is not valid JSON: {exc}") from None
    fields = BuildInfo.__dataclass_fields__
    return BuildInfo(**{k: v for k, v in data.items() if k in fields})


def tensorflow_version() -> str:
    """The TensorFlow version this libedgetpu was built against, e.g. ``"2.14.1"``."""
    return build_info().tensorflow


def variant() -> str:
    """``"std"`` (throttled clock) or ``"max"`` (maximum clock)."""
    return build_info().variant


def _library_name() -> str:
    if sys.platform == "win32":
        return "edgetpu.dll"
    if sys.platform == "darwin":
        return "libedgetpu.1.dylib"
    return "libedgetpu.so.1"


def library_path() -> Path:
    """The libedgetpu shared library of this wheel (``lib/libedgetpu.so.1`` on Linux)."""
    path = _HERE / "lib" / _library_name()
    if not path.is_file():
        present = sorted(p.name for p in (_HERE / "lib").glob("*")) if (_HERE / "lib").is_dir() \
            else []
        raise FileNotFoundError(
            f"tflite-edge-coral-lib has no {path.name} for this machine at {path} (the wheel "
            f"holds: {', '.join(present) or 'nothing'}). Reinstall the wheel for this platform, "
            "or build one with `edgeforge build libedgetpu`."
        )
    return path


check_single_variant()
