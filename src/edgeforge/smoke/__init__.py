"""QEMU smoke: Debian target roots (``roots``) and running programs in them (``qemu``)."""

from .qemu import ensure_smoke_root, install_wheels, qemu_command, run_in_root
from .roots import (
    DEFAULT_PYTHON_PACKAGES,
    DebianRoot,
    debian_mirror,
    ensure_musl_root,
    ensure_root,
    musl_loader,
)

__all__ = [
    "DEFAULT_PYTHON_PACKAGES",
    "DebianRoot",
    "debian_mirror",
    "ensure_musl_root",
    "ensure_root",
    "ensure_smoke_root",
    "install_wheels",
    "musl_loader",
    "qemu_command",
    "run_in_root",
]
