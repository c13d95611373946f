"""External delegates: TFLite's plugin ABI, and delegate plugins found through entry points.

The ABI (tensorflow/lite/delegates/external/external_delegate_interface.h), the same one
``tflite_runtime.interpreter.load_delegate`` speaks::

    TfLiteDelegate* tflite_plugin_create_delegate(
        const char* const* keys, const char* const* values, size_t n,
        void (*report_error)(const char*));
    void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate);

Delegate plugins
----------------
A Python distribution makes a delegate loadable by name (``load_delegate("edgetpu")``) by
declaring an entry point in the group ``tflite_edge.delegates``::

    [project.entry-points."tflite_edge.delegates"]
    edgetpu = "tflite_edge_coral:plugin"

The entry point names an object (a module, a class instance, ...) that follows
:class:`DelegatePlugin`: it says where the delegate library for this machine is and turns
the user's options into the key/value strings the library understands. Optional
``aliases`` let existing code keep working, e.g. ``("libedgetpu.so.1",)`` so that
``load_delegate("libedgetpu.so.1")`` finds the library the plugin ships.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import weakref
from collections.abc import Iterable, Mapping
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_size_t, c_void_p
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "tflite_edge.delegates"

ReportErrorCallback = CFUNCTYPE(None, c_char_p)

_REFCOUNTED = sys.implementation.name == "cpython"  # objects go with their last reference


class DelegateLoadError(ValueError, OSError):
    """A delegate could not be loaded: ``"Failed to load delegate from ..."``. Both a
    ValueError (what tflite_runtime raises when the library loads but yields no delegate)
    and an OSError (what it raises when the dynamic loader cannot load the library), so
    either ``except`` clause written for tflite_runtime catches it."""


@runtime_checkable
class DelegatePlugin(Protocol):
    """What an object registered under ``tflite_edge.delegates`` provides.

    ``library_path()`` returns the path of the external-delegate shared library for the
    running machine (raise ``FileNotFoundError`` with a helpful message when the plugin has
    none for it). ``options_to_strings(options)`` validates the user's options and returns
    the key/value strings passed to ``tflite_plugin_create_delegate``.
    Optional attributes: ``aliases``, other names (such as a library soname) that select the
    plugin; ``describe()``, lines ``python -m tflite_edge doctor`` prints under the plugin
    (devices found, version checks). ``describe()`` should not raise.
    """

    def library_path(self) -> str | os.PathLike[str]: ...

    def options_to_strings(self, options: Mapping[str, Any]) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class PluginInfo:
    """An installed delegate plugin, as ``doctor`` and error messages describe it."""

    name: str
    value: str  # the entry point's "module:attr"
    distribution: str | None


def _entry_points() -> list[Any]:
    from importlib import metadata

    eps = metadata.entry_points()
    if hasattr(eps, "select"):  # Python 3.10+
        return list(eps.select(group=ENTRY_POINT_GROUP))
    return list(eps.get(ENTRY_POINT_GROUP, ()))


def installed_plugins() -> list[PluginInfo]:
    """Every delegate plugin registered in the environment (without importing any)."""
    out = []
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        out.append(PluginInfo(ep.name, ep.value, getattr(dist, "name", None)))
    return sorted(out, key=lambda p: p.name)


def find_plugin(name: str) -> tuple[str, DelegatePlugin] | None:
    """The plugin registered as ``name`` (or listing it among its aliases), loaded."""
    eps = _entry_points()
    for ep in eps:
        if ep.name == name:
            return ep.name, _load_plugin(ep)
    for ep in eps:
        try:
            plugin = _load_plugin(ep)
        except ValueError:
            continue
        if name in tuple(getattr(plugin, "aliases", ()) or ()):
            return ep.name, plugin
    return None


def _load_plugin(ep: Any) -> DelegatePlugin:
    try:
        plugin = ep.load()
    except Exception as exc:
        raise ValueError(
            f"delegate plugin {ep.name!r} ({ep.value}) failed to import: {exc}"
        ) from exc
    if not isinstance(plugin, DelegatePlugin):
        raise ValueError(
            f"delegate plugin {ep.name!r} ({ep.value}) lacks library_path() or "
            "options_to_strings(options)"
        )
    return plugin


def _options_as_strings(options: Mapping[Any, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (options or {}).items()}


def _release(lib: Any, ptr: int, keepalive: object) -> None:
    destroy = lib.tflite_plugin_destroy_delegate
    destroy.argtypes = [c_void_p]
    destroy.restype = None
    destroy(ptr)


class Delegate:
    """A delegate created by an external-delegate library; pass it to ``Interpreter``'s
    ``experimental_delegates``. It is destroyed when the last reference to it goes (an
    Interpreter keeps a reference to each of its delegates)."""

    def __init__(self, library: str | os.PathLike[str], options: Mapping[Any, Any] | None = None,
                 *, plugin: str | None = None) -> None:
        self.library = os.fspath(library)
        self.plugin = plugin
        self.options = _options_as_strings(options)
        try:
            lib = ctypes.CDLL(self.library)
        except OSError as exc:
            raise ValueError(str(exc)) from exc
        try:
            create = lib.tflite_plugin_create_delegate
            lib.tflite_plugin_destroy_delegate  # noqa: B018 - both symbols are required
        except AttributeError as exc:
            raise ValueError(
                f"{self.library} is not a TFLite external delegate: it lacks "
                "tflite_plugin_create_delegate / tflite_plugin_destroy_delegate"
            ) from exc
        create.argtypes = [POINTER(c_char_p), POINTER(c_char_p), c_size_t, ReportErrorCallback]
        create.restype = c_void_p
        n = len(self.options)
        keys = (c_char_p * max(n, 1))()
        values = (c_char_p * max(n, 1))()
        for i, (k, v) in enumerate(self.options.items()):
            keys[i] = k.encode("utf-8")
            values[i] = v.encode("utf-8")
        messages: list[str] = []

        def report(message: bytes | None) -> None:
            messages.append((message or b"").decode("utf-8", "replace"))

        # Kept for the delegate's lifetime: a plugin may report errors later, not only here.
        self._report = ReportErrorCallback(report)
        self._messages = messages
        ptr = create(keys, values, n, self._report)
        if not ptr:
            detail = "".join(messages) or "tflite_plugin_create_delegate returned NULL"
            raise ValueError(detail)
        self._ptr: int = ptr
        self._lib = lib
        self._finalizer = weakref.finalize(self, _release, lib, ptr, self._report)
        # The interpreters (their handles) this delegate was applied to: each keeps a
        # strong reference to the delegate, so it is never destroyed under one, except
        # through close().
        self._users: weakref.WeakSet[object] = weakref.WeakSet()

    def _attach(self, user: object) -> None:
        """Record that ``user`` (an interpreter's handle) runs with this delegate."""
        if not self._finalizer.alive:
            raise ValueError(f"{self!r} was closed; load the delegate again")
        self._users.add(user)

    def _get_native_delegate_pointer(self) -> int:
        """The ``TfLiteDelegate*`` (the name tflite_runtime uses, for code that calls it)."""
        return self._ptr

    def close(self) -> None:
        """Destroy the delegate now. Refused (RuntimeError) while an Interpreter it was
        given to is alive (or an array from that interpreter's ``tensor()``): delete those
        first. Closing twice is harmless."""
        for _ in range(0 if _REFCOUNTED else 5):  # PyPy: an unreachable interpreter
            if not self._users:                    # lingers until a few collections
                break
            gc.collect()
        users = len(self._users)
        if users:
            raise RuntimeError(
                f"{self!r} is still used by {users} interpreter(s): delete them (and the "
                "arrays from their tensor()) before close(), or drop the last reference to "
                "the delegate and it is destroyed after them"
            )
        self._finalizer()

    def __repr__(self) -> str:
        via = f" via plugin {self.plugin!r}" if self.plugin else ""
        return f"<Delegate {self.library}{via}>"


def load_delegate(library: str | os.PathLike[str],
                  options: Mapping[Any, Any] | None = None) -> Delegate:
    """Load an external delegate, by plugin name or by library path/soname.

    ``library`` is first looked up among the installed delegate plugins (entry-point group
    ``tflite_edge.delegates``, by name or alias); otherwise it is handed to the dynamic
    loader as a path or library name, as ``tflite_runtime.interpreter.load_delegate`` does.
    Any failure raises ``ValueError("Failed to load delegate from ...")``.
    """
    name = os.fspath(library)
    path: str = name
    plugin_name: str | None = None
    strings: Mapping[Any, Any] | None = options
    try:
        found = find_plugin(name) if not _looks_like_path(name) else None
    except ValueError as exc:
        raise DelegateLoadError(f"Failed to load delegate from {name}\n{exc}") from exc
    if found is not None:
        plugin_name, plugin = found
        try:
            path = os.fspath(plugin.library_path())
            strings = plugin.options_to_strings(dict(options or {}))
        except Exception as exc:  # whatever the plugin raises; kept as __cause__
            raise DelegateLoadError(
                f"Failed to load delegate from {name} (plugin {plugin_name!r})\n{exc}"
            ) from exc
    try:
        return Delegate(path, strings, plugin=plugin_name)
    except ValueError as exc:
        hint = ""
        if found is None and not _looks_like_path(name):
            plugins = ", ".join(p.name for p in installed_plugins()) or "none"
            hint = (
                f"\n{name!r} is neither an installed delegate plugin (installed: {plugins}; "
                f"plugins register in the {ENTRY_POINT_GROUP!r} entry-point group) nor a "
                "library the dynamic loader can find."
            )
        raise DelegateLoadError(f"Failed to load delegate from {path}\n{exc}{hint}") from exc


def _looks_like_path(name: str) -> bool:
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return any(s in name for s in seps)


def describe_plugins(plugins: Iterable[PluginInfo]) -> list[str]:
    """Lines for ``doctor``: per plugin its name, origin and library for this machine, then
    whatever its optional ``describe()`` says (indented). Never raises."""
    lines = []
    for p in plugins:
        where = f" from {p.distribution}" if p.distribution else ""
        extra: list[str] = []
        try:
            found = find_plugin(p.name)
            if found is None:
                raise ValueError("not found")
            plugin = found[1]
            try:
                lib = os.fspath(plugin.library_path())
                state = lib if os.path.exists(lib) else f"{lib} (missing)"
            except Exception as exc:
                state = f"no library: {exc}"
            describe = getattr(plugin, "describe", None)
            if callable(describe):
                extra = [str(line) for line in describe()]
        except Exception as exc:  # doctor reports, never raises
            state = f"unusable: {exc}"
        lines.append(f"{p.name} ({p.value}{where}): {state}")
        lines.extend(f"  {line}" for line in extra)
    return lines


__all__ = [
    "ENTRY_POINT_GROUP",
    "Delegate",
    "DelegateLoadError",
    "DelegatePlugin",
    "PluginInfo",
    "installed_plugins",
    "load_delegate",
]
