"""The plugin's pure rules: the TensorFlow-version rule and device strings (no library)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PLUGIN_SRC = Path(__file__).resolve().parents[2] / "wheels" / "tflite-edge-coral" / "src"
sys.path.insert(0, str(PLUGIN_SRC))

from tflite_edge_coral import _versions  # noqa: E402
from tflite_edge_coral._native import EdgeTpuDevice, parse_device  # noqa: E402


@pytest.mark.parametrize(("built", "runtime", "ok"), [
    ("2.14.1", "2.14.1", True),
    ("2.14.1", "2.14.0", True),  # patch releases keep the structures libedgetpu compiles in
    ("2.15.0-rc1", "2.15.0", True),
    ("2.5.0", "2.14.1", False),
    ("2.14.1", "2.15.0", False),
    ("2.14.1", "3.14.1", False),
])
def test_version_rule(built: str, runtime: str, ok: bool) -> None:
    assert _versions.versions_match(built, runtime) is ok


def test_version_rule_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a TensorFlow version"):
        _versions.major_minor("tf-latest")


def test_mismatch_message_names_both_versions_and_the_ways_out() -> None:
    text = _versions.mismatch_message("2.5.0", "2.14.1", "LIB", "RUNTIME")
    assert "TensorFlow 2.5.0" in text and "TensorFlow 2.14.1" in text
    assert "LIB" in text and "RUNTIME" in text
    assert "edgeforge build libedgetpu-source" in text
    assert _versions.ALLOW_MISMATCH_ENV in text


@pytest.mark.parametrize(("text", "kind", "index"), [
    ("", None, None), ("usb", "usb", None), ("pci", "pci", None), ("usb:0", "usb", 0),
    ("pci:3", "pci", 3), (":1", None, 1),
])
def test_device_strings(text: str, kind: str | None, index: int | None) -> None:
    spec = parse_device(text)
    assert (spec.type, spec.index) == (kind, index)


@pytest.mark.parametrize("text", ["tpu", "usb:", "usb:-1", "usb0", "usb:0:1", "USB:0"])
def test_bad_device_strings(text: str) -> None:
    with pytest.raises(ValueError, match="invalid Edge TPU device"):
        parse_device(text)


def test_device_selection_follows_enumeration_order_per_type() -> None:
    devices = [EdgeTpuDevice("usb", "/sys/bus/usb/devices/2-1", 0),
               EdgeTpuDevice("pci", "/dev/apex_0", 0),
               EdgeTpuDevice("usb", "/sys/bus/usb/devices/2-2", 1)]
    assert parse_device("usb:1").select(devices) == devices[2]
    assert parse_device("pci").select(devices) == devices[1]
    assert parse_device(":1").select(devices) == devices[1]
    assert parse_device("").select(devices) == devices[0]
    assert parse_device("pci:1").select(devices) is None
    assert devices[2].name == "usb:1"
