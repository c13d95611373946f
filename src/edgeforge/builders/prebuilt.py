"""The prebuilt backend: pick a target's files out of an upstream release archive."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import BuildError
from ..fsutil import atomic_directory
from ..log import Logger
from ..recipe import PrebuiltBuild
from ..toolchain import Toolchain


def prebuilt_files(spec: PrebuiltBuild, toolchain: Toolchain, source_dir: Path,
                   build_dir: Path, logger: Logger) -> Path:
    """Copy the target's directory of the release into ``build_dir``; returns it.

    ``spec.paths`` maps a target name or an arch to a directory inside the archive; the
    target name wins, so one recipe can tell armv6l from armv7l.
    """
    rel = spec.paths.get(toolchain.name) or spec.paths.get(toolchain.arch)
    if rel is None:
        known = ", ".join(sorted(spec.paths))
        raise BuildError(f"the release has no binaries for {toolchain.name} "
                         f"(it covers: {known})")
    src = source_dir / rel
    if not src.is_dir():
        raise BuildError(f"the release archive has no directory {rel!r} for {toolchain.name}")
    with atomic_directory(build_dir) as tmp:  # an interrupted copy is never taken as whole
        shutil.copytree(src, tmp, symlinks=True, dirs_exist_ok=True)
    logger.info(f"picked {rel}/ from the release for {toolchain.name}")
    return build_dir
