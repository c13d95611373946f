"""The one path every artifact takes: fetch -> build -> stage -> wheel -> audit -> smoke -> dist.

Each step is one call into its own module; this module only sequences them and keeps the
promise that nothing half-written reaches ``dist/``: the wheel is written, audited and
smoke-tested in the work directory and moved into ``dist/`` by an atomic rename at the end.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import fetch
from .audit import MUSL_LIBC_SONAMES, AuditReport, audit_wheel
from .builders.cmake import cmake_build
from .builders.compilers import Compilers, write_compilers
from .builders.prebuilt import prebuilt_files
from .errors import ConfigError
from .log import Logger
from .recipe import Recipe
from .smoke.check import SmokeResult, run_smoke
from .smoke.qemu import qemu_command
from .stage import stage
from .toolchain import Toolchain
from .wheel import WheelSpec, write_wheel


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
        return self.work_dir or self.cache_dir / "work"

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


def wheel_filename(recipe: Recipe, toolchain: Toolchain) -> str:
    dist = recipe.wheel.distribution.replace("-", "_")
    return f"{dist}-{recipe.version}-py3-none-{toolchain.platform_tag}.whl"


class Expander:
    """Fills ``{source:NAME}``, ``{build}``, ``{recipe_dir}``, ``{target}``, ``{arch}``."""

    def __init__(self, recipe: Recipe, toolchain: Toolchain, sources: dict[str, Path],
                 build_dir: Path):
        self.values = {"build": str(build_dir), "recipe_dir": str(recipe.directory),
                       "target": toolchain.name, "arch": toolchain.arch}
        self.values.update({f"source:{k}": str(v) for k, v in sources.items()})
        self.recipe = recipe

    def __call__(self, text: str) -> str:
        out, pos = [], 0
        while (start := text.find("{", pos)) != -1:
            end = text.find("}", start)
            if end == -1:
                break
            key = text[start + 1:end]
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
        archive = fetch.fetch_source(source, opts, logger)
        trees[source.name] = fetch.prepare_source(source, archive, opts, logger)
    return trees


def build_wheel(recipe: Recipe, toolchain: Toolchain, options: BuildOptions,
                logger: Logger) -> tuple[Path, dict[str, float], Compilers]:
    """fetch -> build -> stage -> wheel; the wheel stays in the work directory."""
    work = work_dir_for(recipe, toolchain, options)
    work.mkdir(parents=True, exist_ok=True)
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
        musl = MUSL_LIBC_SONAMES.get(toolchain.arch) if toolchain.libc == "musl" else None
        staged = stage(recipe, expand, work / "stage", compilers.strip, logger, musl)
    with logger.step("wheel"):
        spec = WheelSpec(
            distribution=recipe.wheel.distribution,
            version=recipe.version,
            platform_tags=toolchain.wheel_tags,
            summary=recipe.wheel.summary,
            license=recipe.wheel.license,
            requires_python=recipe.wheel.requires_python,
            requires_dist=recipe.wheel.requires_dist,
            entry_points=_entry_points(recipe),
        )
        wheelhouse = work / "wheelhouse"
        if wheelhouse.exists():
            shutil.rmtree(wheelhouse)
        wheel = write_wheel(spec, staged.files, wheelhouse, license_files=staged.licenses,
                            source_date_epoch=options.source_date_epoch)
        logger.info(f"wrote {wheel.name} ({wheel.stat().st_size} bytes)")
    return wheel, seconds, compilers


def _entry_points(recipe: Recipe) -> dict[str, dict[str, str]]:
    groups = {g: dict(v) for g, v in recipe.wheel.entry_points.items()}
    if recipe.wheel.console_scripts:
        groups.setdefault("console_scripts", {}).update(recipe.wheel.console_scripts)
    return groups


def build(recipe: Recipe, toolchain: Toolchain, options: BuildOptions, logger: Logger,
          host: Toolchain | None = None) -> BuildReport:
    """The whole pipeline for one recipe and one target; returns what it did."""
    if options.smoke:
        qemu_command(toolchain)  # a missing QEMU fails now, not after a long build
    wheel, seconds, compilers = build_wheel(recipe, toolchain, options, logger)
    with logger.step("audit"):
        report = audit_wheel(wheel, toolchain, recipe.wheel.system_libraries)
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
    """The host's wheel of the same recipe, whose smoke outputs the target's must match."""
    if toolchain.name == host.name:
        return wheel
    existing = work_dir_for(recipe, host, options) / "wheelhouse" / wheel_filename(recipe, host)
    if existing.is_file():
        return existing
    with logger.step(f"build the host reference ({host.name}) to check outputs against"):
        host_wheel, _, _ = build_wheel(recipe, host, options, logger)
    return host_wheel


def publish(wheel: Path, dist_dir: Path) -> Path:
    """Copy into ``dist/`` under a temp name, then rename: dist never holds a partial wheel."""
    dist_dir.mkdir(parents=True, exist_ok=True)
    final = dist_dir / wheel.name
    tmp = dist_dir / f".{wheel.name}.tmp"
    shutil.copyfile(wheel, tmp)
    os.replace(tmp, final)
    return final
