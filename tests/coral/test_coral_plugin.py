"""tflite-edge-coral installed by pip next to tflite-edge and the lib wheel edgeforge built:
entry point, load_delegate("edgetpu"), list_devices(), the TensorFlow-version rule, the
no-device error, and the std/max conflict."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from coral_support import RELEASE_TF, BuiltWheels, Env, Runtime, make_env

LOAD = (
    "from tflite_edge.delegates import load_delegate, DelegateLoadError\n"
    "try:\n"
    "    load_delegate({name!r}, {options!r})\n"
    "except DelegateLoadError as exc:\n"
    "    cause = exc.__cause__\n"
    "    print(type(cause).__name__ if cause is not None else 'none')\n"
    "    print(exc)\n"
    "else:\n"
    "    print('LOADED')\n"
)


def load(env: Env, runtime_lib: Path, name: str = "edgetpu", options: dict | None = None,
         extra_env: dict[str, str] | None = None) -> tuple[str, str]:
    """(exception class of the plugin's error, full message) of ``load_delegate``."""
    proc = env.run(LOAD.format(name=name, options=options or {}),
                   env={"TFLITE_EDGE_LIBRARY": str(runtime_lib), **(extra_env or {})})
    kind, _, message = proc.stdout.partition("\n")
    return kind, message


def test_entry_point_is_registered(coral_env: Env) -> None:
    out = coral_env.run(
        "import json\n"
        "from importlib.metadata import entry_points\n"
        "from tflite_edge.delegates import installed_plugins\n"
        "eps = [(e.name, e.value) for e in entry_points(group='tflite_edge.delegates')]\n"
        "print(json.dumps([eps, [(p.name, p.distribution) for p in installed_plugins()]]))"
    ).stdout
    eps, plugins = json.loads(out)
    assert ["edgetpu", "tflite_edge_coral:plugin"] in eps
    assert ["edgetpu", "tflite-edge-coral"] in plugins


def test_no_device_gives_one_clear_error(coral_env: Env,
                                         runtime_libs: Callable[..., Path]) -> None:
    lib = runtime_libs(RELEASE_TF)
    for options in ({}, {"device": "usb:0"}, {"device": "usb"}, {"device": "pci:0"}):
        kind, message = load(coral_env, lib, options=options)
        assert kind == "NoEdgeTpuError", message
        assert message.startswith("Failed to load delegate from edgetpu")
        assert "No Edge TPU found" in message
        # it reached libedgetpu of the lib wheel (edgetpu_list_devices said: none)
        assert "tflite_edge_coral_lib/lib/libedgetpu.so.1" in message
        for what in ("USB cable", "udev", "plugdev", "99-edgetpu-accelerator.rules"):
            assert what in message, (what, message)
        if options:
            assert repr(options["device"]) in message


def test_soname_alias_goes_through_the_plugin(coral_env: Env,
                                              runtime_libs: Callable[..., Path]) -> None:
    kind, message = load(coral_env, runtime_libs(RELEASE_TF), name="libedgetpu.so.1")
    assert kind == "NoEdgeTpuError" and "No Edge TPU found" in message


def test_list_devices_is_empty(coral_env: Env) -> None:
    out = coral_env.run("import tflite_edge_coral as c; print(c.list_devices())").stdout
    assert out.strip() == "[]"


def test_tf_version_mismatch_is_refused_naming_both(coral_env: Env,
                                                    runtime_libs: Callable[..., Path]) -> None:
    lib = runtime_libs("2.14.1")
    kind, message = load(coral_env, lib, options={"device": "usb:0"})
    assert kind == "TFVersionMismatchError", message
    assert "built for TensorFlow 2.5.0" in message
    assert "runtime (" + str(lib) + ") is TensorFlow 2.14.1" in message
    assert "edgeforge build libedgetpu-source" in message
    # the escape hatch, documented in the message, turns the refusal into a warning
    kind, message = load(coral_env, lib, extra_env={"TFLITE_EDGE_CORAL_ALLOW_TF_MISMATCH": "1"})
    assert kind == "NoEdgeTpuError"


def test_devices_reach_the_delegate_abi(coral_env: Env,
                                        runtime_libs: Callable[..., Path]) -> None:
    """With a (stand-in) device enumerated, selection works and libedgetpu's own
    tflite_plugin_create_delegate is called; its error comes back through the ABI."""
    lib = runtime_libs(RELEASE_TF)
    fake = {"EDGEFORGE_TEST_EDGETPU_DEVICES":
            "usb:/sys/bus/usb/devices/2-1,pci:/dev/apex_0"}
    out = coral_env.run("import tflite_edge_coral as c; "
                        "print([(d.name, d.path) for d in c.list_devices()])", env=fake).stdout
    assert out.strip() == "[('usb:0', '/sys/bus/usb/devices/2-1'), ('pci:0', '/dev/apex_0')]"
    kind, message = load(coral_env, lib, options={"device": "usb:0"}, extra_env=fake)
    assert kind == "ValueError", message  # the plugin let it through; the library refused
    assert "Failed to open device 'usb:0': no Edge TPU is attached" in message
    kind, message = load(coral_env, lib, options={"device": "usb:1"}, extra_env=fake)
    assert kind == "NoEdgeTpuError"
    assert "No Edge TPU matches device 'usb:1'" in message and "usb:0" in message
    kind, message = load(coral_env, lib, options={"device": "tpu:0"}, extra_env=fake)
    assert kind == "ValueError" and "invalid Edge TPU device 'tpu:0'" in message
    kind, message = load(coral_env, lib, options={"colour": "red"}, extra_env=fake)
    assert kind == "ValueError" and "unknown Edge TPU option 'colour'" in message


def test_describe_and_udev_hint(coral_env: Env, runtime_libs: Callable[..., Path]) -> None:
    env = {"TFLITE_EDGE_LIBRARY": str(runtime_libs(RELEASE_TF))}
    info = coral_env.run("import runpy, sys; sys.argv = ['x']; "
                         "runpy.run_module('tflite_edge_coral', run_name='__main__')",
                         env=env, check=False)
    assert info.returncode == 0, info.stderr
    assert "tflite-edge-coral-lib (libedgetpu 16.0, std)" in info.stdout
    assert "TensorFlow: libedgetpu built for 2.5.0, runtime is 2.5.0 (match)" in info.stdout
    assert "Edge TPUs: none found" in info.stdout
    udev = coral_env.run("import runpy, sys; sys.argv = ['x', 'udev']; "
                         "runpy.run_module('tflite_edge_coral', run_name='__main__')")
    assert 'ATTRS{idVendor}=="18d1",ATTRS{idProduct}=="9302",GROUP="plugdev"' in udev.stdout
    assert "sudo cp " in udev.stdout and "/etc/udev/rules.d/" in udev.stdout
    rules = udev.stdout.splitlines()[0].removeprefix("# ")
    assert Path(rules).is_file() and str(coral_env.root) in rules  # shipped in the package


def test_std_and_max_are_never_used_together(tmp_path: Path, runtime: Runtime,
                                             plugin_wheel: Path, host_wheels: BuiltWheels,
                                             runtime_libs: Callable[..., Path]) -> None:
    """Both lib distributions write tflite_edge_coral_lib/: pip overwrites silently, so the
    package itself refuses to import with both installed, naming both."""
    env = make_env(tmp_path / "both", runtime, [plugin_wheel, host_wheels.std, host_wheels.max])
    proc = env.run("import tflite_edge_coral_lib", check=False)
    assert proc.returncode != 0
    assert "VariantConflictError" in proc.stderr
    assert "tflite-edge-coral-lib 16.0 and tflite-edge-coral-lib-max 16.0 are both installed" \
        in proc.stderr
    kind, message = load(env, runtime_libs(RELEASE_TF))
    assert kind == "LibEdgeTpuError" and "must never be" in message

    only_max = make_env(tmp_path / "max", runtime, [plugin_wheel, host_wheels.max])
    out = only_max.run("import tflite_edge_coral_lib as m; print(m.variant(), "
                       "m.build_info().distribution)").stdout
    assert out.split() == ["max", "tflite-edge-coral-lib-max"]
    kind, message = load(only_max, runtime_libs(RELEASE_TF))
    assert kind == "NoEdgeTpuError"
