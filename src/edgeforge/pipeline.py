"""The one path every artifact takes: fetch -> build -> stage -> wheel -> audit -> smoke -> dist.

Each step is one call into its own module; this module only sequences them and keeps the
promise that nothing half-written reaches ``dist/``: the wheel is written, audited and
smoke-tested in the work directory and moved into ``dist/`` by an atomic rename at the end.

Many edgeforge processes may share one cache and one work root. The whole build of one recipe
for one target holds ``<work dir>.lock`` (``fsutil.file_lock``): a second build of the same
target waits (and says for which pid), then finds the first's build directory up to date.
What an interrupted build (SIGTERM, Ctrl-C, a crash) leaves, step by step, and how the next
run treats it:

- fetch: downloads and extracted trees become visible only complete (``fetch``).
- compiler wrappers, toolchain file: rewritten by every run, each through a temporary name.
- configure: ``configured-from`` exists only after a configure finished; without it the
  build directory is started clean (``builders.cmake``).
- compile: the build's process group is stopped (ninja removes the outputs it was writing);
  the next run's ninja redoes what its log does not record as done.
- stage: filled in a temporary directory, renamed into place; redone by every run.
- wheel: written under a temporary name; ``wheel.complete`` (its name, sha256 and inputs) is
  removed when a build starts and written once the wheel is; only a wheel it vouches for is
  reused (as another target's host reference). Audit and smoke run on every build.
- dist: the audited, smoke-tested wheel is copied in under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, fetch
from .archs import arch_info
from .audit import AuditReport, audit_wheel
from .builders.cmake import cmake_build
from .builders.compilers import Compilers, write_compilers
from .builders.prebuilt import prebuilt_files
from .errors import ConfigError
from .fsutil import atomic_copy, atomic_write_text, file_lock, sha256_file
from .log import Logger
from .recipe import Recipe
from .smoke.check import SmokeResult, require_runner, run_smoke
from .stage import stage
from .toolchain import Toolchain
from .treehash import tree_hash
from .wheel import WheelSpec, resolve_source_date_epoch, write_wheel


@dataclass(frozen=True)
class BuildOptions:
    cache_dir: Path
    dist_dir: Path
    work_dir: Path | None = None  # default: <cache_dir>/work
    offline: bool = False
    jobs: int | None = None
    smoke: bool = True
    reference: bool = True  # compare smoke outputs with the host's
    source_date_epoch: int | None = None
    locked: dict[str, str] = field(default_factory=dict)

    @property
    def work_root(self) -> Path:
        # absolute: CMake gets these paths from inside its build directory
        return (self.work_dir or self.cache_dir / "work").absolute()

    @property
    def fetch_options(self) -> fetch.FetchOptions:
        return fetch.FetchOptions(cache_dir=self.cache_dir, offline=self.offline,
                                  locked=self.locked)


@dataclass(frozen=True)
class BuildReport:
    recipe: str
    target: str
    wheel: Path
    audit: AuditReport
    smoke: SmokeResult | None
    seconds: dict[str, float]


def work_dir_for(recipe: Recipe, toolchain: Toolchain, options: BuildOptions) -> Path:
    return options.work_root / f"{recipe.name}-{recipe.version}" / \
        f"{toolchain.name}-{toolchain.backend}"


@contextlib.contextmanager
def work_lock(recipe: Recipe, toolchain: Toolchain, options: BuildOptions,
              logger: Logger) -> Iterator[None]:
    """Hold ``<work dir>.lock``: one build at a time per work directory (a waiting build
    says which process it waits for)."""
    work = work_dir_for(recipe, toolchain, options)
    with file_lock(work.parent / f"{work.name}.lock",
                   f"the work directory of {recipe.name} {recipe.version} for {toolchain.name}",
                   logger.info):
        yield


def wheel_filename(recipe: Recipe, toolchain: Toolchain) -> str:
    dist = recipe.wheel.distribution.replace("-", "_")
    return f"{dist}-{recipe.version}-py3-none-{toolchain.platform_tag}.whl"


class Expander:
    """Fills ``{source:NAME}``, ``{build}``, ``{recipe_dir}``, ``{target}``, ``{arch}`` and
    ``{shared-library:NAME}`` (the target's file name of shared library NAME: libNAME.so,
    libNAME.dll, libNAME.dylib)."""

    def __init__(self, recipe: Recipe, toolchain: Toolchain, sources: dict[str, Path],
                 build_dir: Path):
        self.values = {"build": str(build_dir), "recipe_dir": str(recipe.directory),
                       "target": toolchain.name, "arch": toolchain.arch}
        self.values.update({f"source:{k}": str(v) for k, v in sources.items()})
        self.recipe = recipe
        self.binary_format = toolchain.binary_format

    def __call__(self, text: str) -> str:
        out, pos = [], 0
        while (start := text.find("{", pos)) != -1:
            end = text.find("}", start)
            if end == -1:
                break
            key = text[start + 1:end]
            if key.startswith("shared-library:"):
                out += [text[pos:start],
                        self.binary_format.shared_library(key.split(":", 1)[1])]
                pos = end + 1
                continue
            if key not in self.values:
                raise ConfigError(f"unknown placeholder {{{key}}} in {text!r}; known: "
                                  f"{', '.join('{' + k + '}' for k in self.values)}",
                                  path=self.recipe.path)
            out += [text[pos:start], self.values[key]]
            pos = end + 1
        out.append(text[pos:])
        return "".join(out)


def fetch_sources(recipe: Recipe, toolchain: Toolchain, options: BuildOptions,
                  logger: Logger) -> dict[str, Path]:
    trees = {}
    opts = options.fetch_options
    for source in recipe.sources_for(toolchain.arch, toolchain.libc):
        if source.smoke_only and not options.smoke:
            continue
        trees[source.name] = fetch.fetch_tree(source, opts, logger)
    return trees


def build_wheel(recipe: Recipe, toolchain: Toolchain, options: BuildOptions,
                logger: Logger) -> tuple[Path, dict[str, float], Compilers]:
    """fetch -> build -> stage -> wheel; the wheel stays in the work directory."""
    work = work_dir_for(recipe, toolchain, options)
    work.mkdir(parents=True, exist_ok=True)
    (work / COMPLETE_MARKER).unlink(missing_ok=True)
    _remove_leftovers(work, logger)
    seconds: dict[str, float] = {}
    with logger.step(f"fetch sources of {recipe.name} {recipe.version}"):
        trees = fetch_sources(recipe, toolchain, options, logger)
    compilers = write_compilers(toolchain, work / "bin", options.cache_dir)
    expand = Expander(recipe, toolchain, trees, work / "build")
    with logger.step(f"build for {toolchain.name}"):
        if recipe.cmake is not None:
            project = (recipe.directory / recipe.cmake.project if recipe.cmake.project
                       else trees[recipe.cmake.source])  # type: ignore[index]
            out = cmake_build(recipe.cmake, toolchain, compilers, project, work, expand,
                              logger, options.jobs)
            seconds["configure"] = out.configure_seconds
            seconds["build"] = out.build_seconds
        else:
            assert recipe.prebuilt is not None
            prebuilt_files(recipe.prebuilt, toolchain, trees[recipe.prebuilt.source],
                           work / "build", logger)
    with logger.step("stage"):
        musl = arch_info(toolchain.arch).musl_libc if toolchain.libc == "musl" else None
        staged = stage(recipe, expand, work / "stage", compilers.strip, logger, musl,
                       toolchain.binary_format)
    with logger.step("wheel"):
        spec = wheel_spec(recipe, toolchain)
        wheelhouse = work / "wheelhouse"
        if wheelhouse.exists():
            shutil.rmtree(wheelhouse)
        wheel = write_wheel(spec, staged.files, wheelhouse, license_files=staged.licenses,
                            source_date_epoch=options.source_date_epoch)
        logger.info(f"wrote {wheel.name} ({wheel.stat().st_size} bytes)")
    atomic_write_text(work / COMPLETE_MARKER, json.dumps(
        {"wheel": wheel.name, "sha256": sha256_file(wheel),
         "inputs": _inputs(recipe, toolchain, options, trees)},
        indent=1, sort_keys=True) + "\n")
    return wheel, seconds, compilers


COMPLETE_MARKER = "wheel.complete"


def _remove_leftovers(work: Path, logger: Logger) -> None:
    """Temporary files and directories of a build that was killed outright (SIGKILL: no
    ``finally`` ran). Under the work directory's lock, no live build owns any of them."""
    for directory in (work, work / "bin", work / "wheelhouse", work / "reference"):
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.name.startswith(".") and path.name.endswith((".tmp", ".old")):
                logger.info(f"removing {path} (left by an interrupted build)")
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def _inputs(recipe: Recipe, toolchain: Toolchain, options: BuildOptions,
            trees: dict[str, Path]) -> dict[str, str]:
    """What a finished wheel was built from: edgeforge (its version), the target's toolchain
    (every field but where its file is: a user's edited board file makes a new wheel), the
    wheel's timestamp, the recipe file, the files beside it in the folder of its name
    (recipes/tflite/: the shim, CMake additions) and the source trees (their directory names
    are derived from their content); smoke-only data is not an input."""
    smoke_only = {s.name for s in recipe.sources if s.smoke_only}
    described = repr(dataclasses.replace(toolchain, path=Path(toolchain.path.name)))
    inputs = {"edgeforge": __version__,
              "toolchain": hashlib.sha256(described.encode()).hexdigest(),
              "source-date-epoch": str(resolve_source_date_epoch(options.source_date_epoch)),
              "recipe": sha256_file(recipe.path)}
    companion = recipe.path.with_suffix("")
    if companion.is_dir():
        inputs["recipe-files"] = tree_hash(companion)
    return {**inputs, **{k: str(v) for k, v in sorted(trees.items()) if k not in smoke_only}}


def complete_wheel(recipe: Recipe, toolchain: Toolchain, options: BuildOptions,
                   trees: dict[str, Path]) -> Path | None:
    """The work directory's wheel if a finished build of these inputs wrote it and it is
    unchanged since; None otherwise (no marker: that build was interrupted)."""
    work = work_dir_for(recipe, toolchain, options)
    try:
        marker = json.loads((work / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    wheel = work / "wheelhouse" / str(marker.get("wheel"))
    if (marker.get("inputs") != _inputs(recipe, toolchain, options, trees) or not wheel.is_file()
            or sha256_file(wheel) != marker.get("sha256")):
        return None
    return wheel


def wheel_spec(recipe: Recipe, toolchain: Toolchain) -> WheelSpec:
    """The wheel a recipe makes for a target (the pipeline's and the PEP 517 backend's)."""
    return WheelSpec(
        distribution=recipe.wheel.distribution,
        version=recipe.version,
        platform_tags=toolchain.wheel_tags,
        summary=recipe.wheel.summary,
        license=recipe.wheel.license,
        requires_python=recipe.wheel.requires_python,
        requires_dist=recipe.wheel.requires_dist,
        entry_points=_entry_points(recipe),
    )


def _entry_points(recipe: Recipe) -> dict[str, dict[str, str]]:
    groups = {g: dict(v) for g, v in recipe.wheel.entry_points.items()}
    if recipe.wheel.console_scripts:
        groups.setdefault("console_scripts", {}).update(recipe.wheel.console_scripts)
    return groups


def build(recipe: Recipe, toolchain: Toolchain, options: BuildOptions, logger: Logger,
          host: Toolchain | None = None) -> BuildReport:
    """The whole pipeline for one recipe and one target; returns what it did."""
    if options.smoke:
        require_runner(toolchain)  # a missing QEMU or wine fails now, not after a long build
    with work_lock(recipe, toolchain, options, logger):
        return _build_locked(recipe, toolchain, options, logger, host)


def _build_locked(recipe: Recipe, toolchain: Toolchain, options: BuildOptions, logger: Logger,
                  host: Toolchain | None) -> BuildReport:
    wheel, seconds, compilers = build_wheel(recipe, toolchain, options, logger)
    with logger.step("audit"):
        report = audit_wheel(wheel, toolchain, recipe.wheel.system_libraries,
                             recipe.wheel.exports)
        if recipe.wheel.system_libraries:
            logger.info("system libraries the recipe declares (users install them): "
                        + ", ".join(recipe.wheel.system_libraries))
        for line in report.summary().splitlines():
            logger.info(line)
    smoke_result = None
    if options.smoke:
        reference = None
        if options.reference and host is not None:
            reference = host_reference_wheel(recipe, toolchain, host, wheel, options, logger)
        with logger.step(f"smoke test on {toolchain.name}"):
            smoke_result = run_smoke(recipe, toolchain, wheel, reference, compilers,
                                     options.cache_dir, work_dir_for(recipe, toolchain, options),
                                     logger, smoke_env(recipe, toolchain, options, logger))
            for line in smoke_result.summary().splitlines():
                logger.info(line)
    final = publish(wheel, options.dist_dir)
    logger.info(f"==> {final}")
    return BuildReport(recipe=recipe.name, target=toolchain.name, wheel=final, audit=report,
                       smoke=smoke_result, seconds=seconds)


def smoke_env(recipe: Recipe, toolchain: Toolchain, options: BuildOptions,
              logger: Logger) -> dict[str, str]:
    """What the smoke program is told: ``EDGEFORGE_SOURCE_<NAME>`` for each smoke-only source
    (models and other test data) and the recipe's extra pure-Python paths."""
    env = {}
    trees = fetch_sources(recipe, toolchain, options, logger)
    for source in recipe.sources_for(toolchain.arch, toolchain.libc):
        if source.smoke_only:
            key = "EDGEFORGE_SOURCE_" + source.name.upper().replace("-", "_").replace(".", "_")
            env[key] = str(trees[source.name])
    paths = [str((recipe.directory / p).resolve()) for p in recipe.smoke.python_path]
    if paths:
        env["EDGEFORGE_SMOKE_PYTHONPATH"] = os.pathsep.join(paths)
    return env


def host_reference_wheel(recipe: Recipe, toolchain: Toolchain, host: Toolchain, wheel: Path,
                         options: BuildOptions, logger: Logger) -> Path:
    """The host's wheel of the same recipe, whose smoke outputs the target's must match: the
    host work directory's finished wheel of the same inputs, else built now (under the host
    work directory's lock), copied into this target's work directory."""
    if toolchain.name == host.name:
        return wheel
    with work_lock(recipe, host, options, logger):
        host_wheel = complete_wheel(recipe, host, options,
                                    fetch_sources(recipe, host, options, logger))
        if host_wheel is None:
            with logger.step(f"build the host reference ({host.name}) to check outputs against"):
                host_wheel, _, _ = build_wheel(recipe, host, options, logger)
        reference = work_dir_for(recipe, toolchain, options) / "reference" / host_wheel.name
        atomic_copy(host_wheel, reference)
    return reference


def publish(wheel: Path, dist_dir: Path) -> Path:
    """Copy into ``dist/`` under a process-unique temporary name, then rename: a dist
    directory (even one that several builds share) never holds a partial wheel."""
    final = dist_dir / wheel.name
    atomic_copy(wheel, final, durable=True)
    return final
