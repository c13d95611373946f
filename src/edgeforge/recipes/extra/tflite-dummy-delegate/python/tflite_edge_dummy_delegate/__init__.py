"""TFLite's sample external delegate as a tflite-edge delegate plugin.

Registered as ``tflite-dummy`` in the ``tflite_edge.delegates`` entry-point group::

    from tflite_edge import load_delegate
    delegate = load_delegate("tflite-dummy", {"allowed_builtin_code": 0})  # claims ADD nodes

Options (TFLite's own): ``allowed_builtin_code`` (int, -1: claim nothing),
``error_during_init``, ``error_during_prepare``, ``error_during_invoke`` (bool).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

OPTIONS = {
    "allowed_builtin_code": int,
    "error_during_init": bool,
    "error_during_prepare": bool,
    "error_during_invoke": bool,
}


class DummyDelegatePlugin:
    """The plugin protocol tflite_edge.delegates asks for."""

    aliases = ("libdummy_external_delegate.so",)

    def library_path(self) -> Path:
        return Path(__file__).resolve().parent / "lib" / "libdummy_external_delegate.so"

    def options_to_strings(self, options: Mapping[str, object]) -> dict[str, str]:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; "
                             f"the dummy delegate knows {', '.join(OPTIONS)}")
        strings = {}
        for key, value in options.items():
            if OPTIONS[key] is bool:
                strings[key] = str(value).lower() if isinstance(value, bool) else str(value)
            else:
                strings[key] = str(value)
        return strings


plugin = DummyDelegatePlugin()
