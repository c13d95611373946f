"""``edgeforge release``: a matrix of recipes x targets, the packages, checksums, a manifest and
a simple index, in one directory that appears whole or not at all.

A release directory holds, side by side::

    *.whl, *.tar.gz     the binary wheels (one per matrix cell, through edgeforge.pipeline),
                        the pure packages (wheel + sdist) and the binary distributions' sdists
    manifest.json       each file's sha256, size, kind, distribution, version, tags; for binary
                        wheels the audited libc floor and the smoke result (release_manifest)
    simple/             a PEP 503 index of those files (simple_index)
    SHA256SUMS          every other file, ``sha256sum -c`` format, written last

Everything is written into a temporary directory beside the destination and renamed into
place at the end (``fsutil.atomic_directory``): a failed release leaves no half directory.
A CI matrix builds one cell per job (``--cell RECIPE:TARGET``, and ``--packages`` for the
sdists and pure packages), each a complete release of its own; ``merge`` verifies each one and
joins them (a file two cells hold with different bytes is an error), rebuilding the manifest,
the index and the checksums. ``verify`` refuses a directory whose files do not match its
SHA256SUMS and manifest, or that holds anything they do not list.

Pure packages are built by ``python -m build`` from a copy of their project (the checkout stays
clean) in build isolation (their declared build requirements, from the package index; with
``--offline``, from this environment instead). A
binary distribution's sdist comes from ``edgeforge.backend``'s ``build_sdist`` hook through the
same frontend, without isolation: its backend is this edgeforge, not one from an index.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import pipeline
from .errors import MissingToolError, ReleaseError
from .fsutil import atomic_directory, atomic_write_text, sha256_file
from .lock import read_lock
from .log import Logger
from .release_config import Cell, Package, ReleaseConfig
from .release_manifest import (
    MANIFEST,
    SHA256SUMS,
    Artifact,
    build_record,
    describe,
    manifest_text,
    read_manifest,
    read_sums,
    sums_text,
)
from .simple_index import index_pages, write_index
from .toolchain import Toolchain, resolve_target
from .wheel import resolve_source_date_epoch

# Never copied into a pure package's build copy.
_COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", ".ci-venv", "build", "dist", "__pycache__",
                                      "*.egg-info", ".ruff_cache", ".pytest_cache", "*.pyc")


@dataclass(frozen=True)
class ReleaseOptions:
    cache_dir: Path
    toolchain_dirs: tuple[Path, ...]
    work_dir: Path | None = None
    offline: bool = False
    jobs: int | None = None
    smoke: bool = True


def matrix_json(config: ReleaseConfig) -> str:
    """The cells as a GitHub Actions matrix: ``{"include": [{"cell": ..., "name": ...}]}``."""
    return json.dumps({"include": [{"cell": c.id, "name": c.slug} for c in config.cells]})


def release(config: ReleaseConfig, out: Path, cells: Sequence[Cell], packages: bool,
            options: ReleaseOptions, logger: Logger) -> list[Artifact]:
    """Build ``cells`` (and, with ``packages``, the config's packages) into ``out``."""
    _check_destination(out, ())
    host = resolve_target(None, directories=options.toolchain_dirs)
    with atomic_directory(out) as staging:
        artifacts = []
        for cell in cells:
            with logger.step(f"release cell {cell.id}"):
                artifacts.append(build_cell(cell, staging, options, logger, host))
        if packages:
            for package in config.packages:
                with logger.step(f"release package {package.name} ({package.directory})"):
                    artifacts += build_package(package, staging, logger,
                                               isolated=not options.offline)
        finish(staging, artifacts)
    return artifacts


def build_cell(cell: Cell, dist: Path, options: ReleaseOptions, logger: Logger,
               host: Toolchain) -> Artifact:
    toolchain = resolve_target(cell.target, directories=options.toolchain_dirs)
    build_options = pipeline.BuildOptions(
        cache_dir=options.cache_dir, dist_dir=dist, work_dir=options.work_dir,
        offline=options.offline, jobs=options.jobs, smoke=options.smoke, reference=True,
        locked=read_lock(cell.recipe))
    report = pipeline.build(cell.recipe, toolchain, build_options, logger, host=host)
    return describe(report.wheel, build_record(cell.recipe.name, cell.target, report.audit,
                                               report.smoke))


def build_package(package: Package, dist: Path, logger: Logger, isolated: bool = True
                  ) -> list[Artifact]:
    """A pure package's wheel and sdist, or a binary distribution's sdist, into ``dist``."""
    if importlib.util.find_spec("build") is None:
        raise MissingToolError("edgeforge release builds packages with PyPA's `build`: "
                               "pip install build")
    with tempfile.TemporaryDirectory(prefix="edgeforge-release-") as tmp:
        out = Path(tmp) / "out"
        argv = [sys.executable, "-m", "build", "--outdir", str(out)]
        if package.binary:
            argv += ["--sdist", "--no-isolation", str(package.directory)]
            wanted = {"sdist"}
        else:
            copy = Path(tmp) / package.directory.name
            shutil.copytree(package.directory, copy, ignore=_COPY_IGNORE)
            if not isolated:
                argv.append("--no-isolation")
            argv.append(str(copy))
            wanted = {"sdist", "pure-wheel"}
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(resolve_source_date_epoch())}
        logger.info("$ " + " ".join(argv))
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise ReleaseError(f"building {package.directory} failed (exit {proc.returncode}):"
                               f"\n{tail}")
        artifacts = []
        for path in sorted(out.iterdir()):
            artifact = describe(path)
            if artifact.kind not in wanted:
                raise ReleaseError(f"building {package.directory} gave {path.name}, a "
                                   f"{artifact.kind}; expected only: {', '.join(sorted(wanted))}")
            wanted.discard(artifact.kind)
            if (dist / path.name).exists():
                raise ReleaseError(f"{path.name} from {package.directory} is already in the "
                                   "release: two projects make the same file")
            shutil.copyfile(path, dist / path.name)
            logger.info(f"wrote {path.name} ({artifact.size} bytes)")
            artifacts.append(artifact)
        if wanted:
            raise ReleaseError(f"building {package.directory} made no {', '.join(wanted)}")
    return artifacts


def expected_files(artifacts: Sequence[Artifact]) -> dict[str, bytes | None]:
    """Every file a release of these artifacts holds but SHA256SUMS: its bytes where they
    follow from the artifacts (manifest, index), None for the distributions themselves."""
    files: dict[str, bytes | None] = {a.filename: None for a in artifacts}
    files[MANIFEST] = manifest_text(artifacts).encode()
    files.update({rel: text.encode() for rel, text in index_pages(artifacts).items()})
    return files


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


def finish(root: Path, artifacts: Sequence[Artifact]) -> None:
    """Write manifest, index and (last) SHA256SUMS for the distributions already in ``root``."""
    names = [a.filename for a in artifacts]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ReleaseError(f"two cells made the same file: {', '.join(twice)}")
    present = _files_under(root)
    if present != set(names):
        raise ReleaseError(f"{root}: holds {sorted(present - set(names))} and lacks "
                           f"{sorted(set(names) - present)}")
    for a in artifacts:
        if sha256_file(root / a.filename) != a.sha256:
            raise ReleaseError(f"{root / a.filename} changed while the release was made")
    atomic_write_text(root / MANIFEST, manifest_text(artifacts), 0o644)
    write_index(root, artifacts)
    atomic_write_text(root / SHA256SUMS, sums_text(root), 0o644)


def verify(root: Path) -> list[Artifact]:
    """The artifacts of a complete, intact release; anything else is refused with the reason."""
    if not root.is_dir():
        raise ReleaseError(f"{root} is not a directory")
    sums = read_sums(root / SHA256SUMS)
    on_disk = _files_under(root) - {SHA256SUMS}
    if on_disk != set(sums):
        raise ReleaseError(f"{root}: SHA256SUMS does not list {sorted(on_disk - set(sums))}"
                           f" and lists missing {sorted(set(sums) - on_disk)}: a half or "
                           "altered release")
    for rel, digest in sorted(sums.items()):
        actual = sha256_file(root / rel)
        if actual != digest:
            raise ReleaseError(f"{root / rel}: sha256 {actual}, SHA256SUMS says {digest}: "
                               "the file is corrupt or was replaced")
    artifacts = read_manifest(root / MANIFEST)
    for a in artifacts:
        if sums.get(a.filename) != a.sha256 or (root / a.filename).stat().st_size != a.size:
            raise ReleaseError(f"{root / MANIFEST}: files.{a.filename} does not match the file")
    expected = expected_files(artifacts)
    if set(expected) != on_disk:
        raise ReleaseError(f"{root}: files {sorted(on_disk - set(expected))} are not the "
                           f"manifest's; missing: {sorted(set(expected) - on_disk)}")
    for rel, data in expected.items():
        if data is not None and (root / rel).read_bytes() != data:
            raise ReleaseError(f"{root / rel} does not match {MANIFEST}")
    return artifacts


def merge(inputs: Sequence[Path], out: Path, logger: Logger) -> list[Artifact]:
    """Join verified releases (e.g. one per CI cell) into ``out``."""
    if not inputs:
        raise ReleaseError("merge needs at least one release directory")
    _check_destination(out, inputs)
    chosen: dict[str, tuple[Artifact, Path]] = {}
    for directory in inputs:
        for a in verify(directory):
            if a.filename in chosen:
                other, where = chosen[a.filename]
                if other.sha256 != a.sha256:
                    raise ReleaseError(f"{a.filename} differs between {where} (sha256 "
                                       f"{other.sha256}) and {directory} (sha256 {a.sha256})")
                continue
            chosen[a.filename] = (a, directory)
        logger.info(f"verified {directory}")
    with atomic_directory(out) as staging:
        for name, (_, directory) in sorted(chosen.items()):
            shutil.copyfile(directory / name, staging / name)
        artifacts = [a for a, _ in chosen.values()]
        finish(staging, artifacts)
    return artifacts


def _check_destination(out: Path, inputs: Sequence[Path]) -> None:
    """``out`` may be new, empty or an earlier release (replaced whole); nothing else."""
    if any(out.resolve() == p.resolve() for p in inputs):
        raise ReleaseError(f"--out {out} is one of the directories to merge: pick a new one")
    if not out.exists():
        return
    if not out.is_dir():
        raise ReleaseError(f"--out {out} is a file, not a directory")
    if any(out.iterdir()) and not (out / SHA256SUMS).is_file() and not (out / MANIFEST).is_file():
        raise ReleaseError(f"--out {out} holds files that are not an edgeforge release; "
                           "refusing to replace it: give a new or empty directory")


def describe_artifact(a: Artifact) -> str:
    """One line for the CLI's summary."""
    if a.kind != "binary-wheel":
        return f"{a.kind:12}  {a.filename}"
    audit, smoke = a.build["audit"], a.build["smoke"]
    return (f"{a.kind:12}  {a.filename} ({a.build['target']}; {audit['policy']}, "
            f"{audit['libc']} {audit['libc_floor']}; smoke {smoke['result']})")
