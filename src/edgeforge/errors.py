"""Typed errors. Each carries an exit code and a message that tells the user what to do."""

from __future__ import annotations


class EdgeforgeError(Exception):
    """Base class: a failure the user can act on. ``str(err)`` is the whole message."""

    exit_code = 1


class ConfigError(EdgeforgeError):
    """A recipe, toolchain or option is malformed. The message names the file and the key."""

    exit_code = 2

    def __init__(self, message: str, *, path: object | None = None, key: str | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if key:
                where += f": [{key}]"
            where += ": "
        elif key:
            where = f"[{key}]: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.key = key


class UnknownTargetError(ConfigError):
    """The user named a target that no toolchain file describes."""


class FetchError(EdgeforgeError):
    """No URL of a source gave a file with the pinned sha256."""

    exit_code = 3


class ChecksumError(FetchError):
    """A downloaded or cached file does not have its pinned sha256."""


class UnsafeArchiveError(FetchError):
    """An archive member would land outside its destination."""


class BuildError(EdgeforgeError):
    """The compiler or CMake failed; the message carries the log's tail and path."""

    exit_code = 4


class MissingToolError(EdgeforgeError):
    """A program edgeforge needs is not installed; the message says how to install it."""

    exit_code = 5


class AuditError(EdgeforgeError):
    """The binary needs more than its wheel tag promises."""

    exit_code = 6


class SmokeError(EdgeforgeError):
    """The wheel failed to install or run under QEMU, or its outputs differ from the host's."""

    exit_code = 7


class ReleaseError(EdgeforgeError):
    """A release directory is incomplete, corrupt or conflicts with another one."""

    exit_code = 8


class ConanError(EdgeforgeError):
    """A conan command failed; the message carries its output's tail."""

    exit_code = 9
