"""Stage: gather the files a wheel needs (libraries, tools, headers, Python code, licenses).

Shared libraries and executables of the target's binary format (ELF, PE, Mach-O: ``binfmt``)
are stripped with the target's strip tool, as the format says.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .binfmt import BinaryFormat, load_formats
from .errors import BuildError, ConfigError, MissingToolError
from .fsutil import atomic_directory
from .log import Logger
from .recipe import Recipe


@dataclass(frozen=True)
class Staged:
    files: dict[str, Path]  # archive path in the wheel -> file on disk
    licenses: dict[str, Path]  # license file name -> file on disk


def strip_binary(path: Path, strip: Path | None, fmt: BinaryFormat) -> bool:
    """Strip ``path`` as its format says; False when the format's binaries stay as linked."""
    if strip is None or (argv := fmt.strip_argv(strip, path)) is None:
        return False
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{strip.name} failed on {path}: {result.stderr.strip()}")
    return True


def musl_libc_needed(path: Path, soname: str) -> None:
    """zig links musl binaries against ``libc.so``; Alpine's loader, auditwheel and pip expect
    the musl soname (``libc.musl-aarch64.so.1``). musl's loader takes any ``libc.*`` as itself."""
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        raise MissingToolError("patchelf is missing: apt-get install patchelf")
    needed = subprocess.run([patchelf, "--print-needed", str(path)], capture_output=True,
                            text=True, check=False).stdout.split()
    if "libc.so" in needed:
        result = subprocess.run([patchelf, "--replace-needed", "libc.so", soname, str(path)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BuildError(f"patchelf failed on {path}: {result.stderr.strip()}")


def _python_files(package_dir: Path, package: str) -> dict[str, Path]:
    files = {}
    for path in sorted(package_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[f"{package}/{path.relative_to(package_dir).as_posix()}"] = path
    return files


def stage(recipe: Recipe, expand: Callable[[str], str], stage_dir: Path, strip: Path | None,
          logger: Logger, musl_soname: str | None = None,
          fmt: BinaryFormat | None = None) -> Staged:
    """Copy what the recipe's ``[[stage]]`` entries name into ``stage_dir``; strip the binaries
    of ``fmt`` (default ELF; and, for musl targets, name musl's libc by its soname
    ``musl_soname``).

    The tree is filled in a process-unique directory beside ``stage_dir`` and renamed into
    place complete: an interrupted stage leaves no ``stage_dir`` that looks finished."""
    with atomic_directory(stage_dir) as tmp:
        staged = _stage_into(recipe, expand, tmp, strip, logger, musl_soname,
                             fmt or load_formats()["elf"])
    moved = {name: stage_dir / path.relative_to(tmp) if path.is_relative_to(tmp) else path
             for name, path in staged.files.items()}
    return Staged(files=moved, licenses=staged.licenses)


def _stage_into(recipe: Recipe, expand: Callable[[str], str], stage_dir: Path,
                strip: Path | None,
                logger: Logger, musl_soname: str | None, fmt: BinaryFormat) -> Staged:
    package = recipe.wheel.package
    files: dict[str, Path] = {}
    for rel in recipe.wheel.python_sources:
        src = (recipe.directory / rel).resolve()
        if not src.is_dir():
            raise ConfigError(f"python-sources directory not found: {src}", path=recipe.path,
                              key="wheel.python-sources")
        files.update(_python_files(src, src.name))

    for entry in recipe.stage:
        pattern = expand(entry.src)
        matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not matches:
            if entry.optional:
                logger.info(f"stage: nothing matches {pattern} (optional)")
                continue
            raise BuildError(f"stage: nothing matches {pattern} (recipe {recipe.path}, "
                             f"[[stage]] from = {entry.src!r})")
        base = Path(expand(entry.base)) if entry.base else None
        for src in matches:
            name = src.relative_to(base).as_posix() if base else src.name
            dest = entry.dest if not entry.dest.endswith("/") else entry.dest + name
            archive_path = f"{package}/{dest}"
            out = stage_dir / archive_path
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src.resolve(), out)
            binary = fmt.is_binary(out)
            executable = entry.executable or (binary and not fmt.is_shared_library(out.name))
            out.chmod(0o755 if executable else 0o644)
            if binary:
                before = out.stat().st_size
                stripped = strip_binary(out, strip, fmt)
                if musl_soname:
                    musl_libc_needed(out, musl_soname)
                how = "stripped" if stripped else f"{fmt.title}: kept as linked"
                logger.info(f"staged {archive_path} ({before} -> {out.stat().st_size} bytes, "
                            f"{how})")
            else:
                logger.debug(f"staged {archive_path}")
            files[archive_path] = out

    licenses: dict[str, Path] = {}
    for pattern in recipe.licenses:
        base = Path(expand(pattern.split("/", 1)[0])) if pattern.startswith("{") else None
        found = sorted(glob.glob(expand(pattern)))
        if not found:
            raise BuildError(f"license file not found: {expand(pattern)} (recipe {recipe.path})")
        for m in found:
            # `{source:abseil}/LICENSE` lands as licenses/abseil/LICENSE: no name collisions
            name = Path(m).name
            if pattern.startswith("{source:") and base is not None:
                source_name = pattern[len("{source:"):pattern.index("}")]
                name = f"{source_name}/{Path(m).relative_to(base).as_posix()}"
            licenses[name] = Path(m)
    return Staged(files=files, licenses=licenses)
