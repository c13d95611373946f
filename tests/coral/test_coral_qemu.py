"""Foreign targets under qemu-user: `edgeforge build` of the lib wheel (its smoke test runs in a
Debian root of the target's architecture), then tflite-edge + tflite-edge-coral + that wheel
installed by pip into the same root, and load_delegate("edgetpu") run there."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from coral_support import RELEASE_TF, Release, Runtime, build_lib_wheel, write_test_recipe

from edgeforge.fetch import default_cache_dir
from edgeforge.log import Logger
from edgeforge.recipe import load_recipe
from edgeforge.smoke import ensure_smoke_root, install_wheels, run_in_root
from edgeforge.toolchain import resolve_target

pytestmark = pytest.mark.slow

TARGETS = {"linux-aarch64": "aarch64-linux-gnu.2.17", "linux-armv7l": "arm-linux-gnueabihf.2.17"}

# One process per runtime: tflite-edge loads its library once per process.
SCRIPT = """
import json, platform
import tflite_edge_coral
from tflite_edge.delegates import load_delegate, DelegateLoadError

try:
    load_delegate("edgetpu", {"device": "usb:0"})
    result = ["LOADED", ""]
except DelegateLoadError as exc:
    result = [type(exc.__cause__).__name__, str(exc)]
print(json.dumps({"machine": platform.machine(),
                  "devices": [d.name for d in tflite_edge_coral.list_devices()],
                  "load_delegate": result}))
"""


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_plugin_under_qemu(target: str, release: Release, runtime: Runtime, plugin_wheel: Path,
                           runtime_libs: Callable[..., Path],
                           tmp_path: Path) -> None:
    toolchain = resolve_target(target)
    if shutil.which(toolchain.smoke.qemu or "") is None:
        pytest.skip(f"{toolchain.smoke.qemu} is missing: apt-get install qemu-user-static")
    if runtime.wheel is None:
        pytest.skip("wheels/tflite-edge builds no wheel yet, so it cannot be pip-installed "
                    "into the target's root")
    # The pipeline: fetch -> pick -> stage -> wheel -> audit -> smoke under QEMU (it fails the
    # build if the smoke test does), into dist/.
    wheel = build_lib_wheel("libedgetpu", target, release, tmp_path / "edgeforge")
    assert toolchain.wheel_tags[0] in wheel.name

    recipe = load_recipe(write_test_recipe("libedgetpu", tmp_path / "r", release.url,
                                           release.sha256))
    root = ensure_smoke_root(toolchain, default_cache_dir(), Logger(),
                             packages=recipe.smoke.packages)
    assert runtime.wheel is not None
    site = install_wheels(root, [wheel, plugin_wheel, runtime.wheel], toolchain.wheel_tags,
                          tmp_path / "site")
    script = tmp_path / "coral_under_qemu.py"
    script.write_text(SCRIPT)

    def run_with(tf_version: str) -> dict:
        lib = runtime_libs(tf_version, TARGETS[target])
        proc = run_in_root(root, toolchain, [str(root.python), str(script)],
                           env={"PYTHONPATH": str(site), "TFLITE_EDGE_LIBRARY": str(lib)},
                           timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out: dict = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["machine"] == {"linux-aarch64": "aarch64", "linux-armv7l": "armv7l"}[target]
        assert out["devices"] == []
        return out

    kind, message = run_with(RELEASE_TF)["load_delegate"]
    assert kind == "NoEdgeTpuError" and "No Edge TPU found (device 'usb:0')" in message
    assert "USB cable" in message and "plugdev" in message
    kind, message = run_with("2.14.1")["load_delegate"]
    assert kind == "TFVersionMismatchError"
    assert "TensorFlow 2.5.0" in message and "TensorFlow 2.14.1" in message
