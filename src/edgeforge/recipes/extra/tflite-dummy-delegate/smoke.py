"""Smoke test of the dummy delegate plugin on the target: load its library and create and
destroy delegates through TFLite's external-delegate ABI. Prints JSON for the host check."""

from __future__ import annotations

import ctypes
import json
import platform

import tflite_edge_dummy_delegate as plugin_module

Strings = ctypes.c_char_p * 4


def create(lib: ctypes.CDLL, options: dict[str, str]) -> bool:
    keys = Strings(*[k.encode() for k in options])
    values = Strings(*[v.encode() for v in options.values()])
    delegate = lib.tflite_plugin_create_delegate(keys, values, len(options), None)
    if delegate:
        lib.tflite_plugin_destroy_delegate(delegate)
    return bool(delegate)


def main() -> None:
    plugin = plugin_module.plugin
    lib = ctypes.CDLL(str(plugin.library_path()))
    lib.tflite_plugin_create_delegate.restype = ctypes.c_void_p
    lib.tflite_plugin_create_delegate.argtypes = [Strings, Strings, ctypes.c_size_t,
                                                  ctypes.c_void_p]
    lib.tflite_plugin_destroy_delegate.argtypes = [ctypes.c_void_p]
    good = plugin.options_to_strings({"allowed_builtin_code": 0, "error_during_invoke": True})
    bad = plugin.options_to_strings({"allowed_builtin_code": "not-a-number"})
    print(json.dumps({
        "machine": platform.machine(),
        "created_with_good_options": create(lib, good),
        "created_with_no_options": create(lib, {}),
        "created_with_bad_options": create(lib, bad),
    }))


if __name__ == "__main__":
    main()
