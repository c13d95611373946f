"""PEP 517 build backend: the sdist self-build of an edgeforge binary distribution.

A binary distribution such as ``tflite-edge-lib`` ships one ``py3-none-<platform>`` wheel per
target. On a machine nobody ships a wheel for, pip falls back to its sdist, and this backend
builds the wheel for the host by running edgeforge's pipeline (fetch -> build -> stage ->
wheel -> audit; no QEMU), the way esbuild falls back to building from source.

The project's ``pyproject.toml`` names the recipe; everything else is settings::

    [build-system]
    requires = ["edgeforge==0.1.0"]
    build-backend = "edgeforge.backend"

    [project]
    name = "tflite-edge-lib"          # must match the recipe's [wheel] distribution
    version = "2.14.1"                # must match the recipe's [package] version
    dynamic = ["description", ...]    # the recipe's [wheel] table supplies the rest

    [tool.edgeforge]
    recipe = "recipes/tflite.toml"    # relative to pyproject.toml
    toolchains = "toolchains"         # the shipped target files (default: "toolchains")

Settings (``--config-settings KEY=VALUE`` / ``-C KEY=VALUE``, else the environment):

=============  ==========================  ==============================================
key            environment                 meaning
=============  ==========================  ==============================================
cache-dir      ``EDGEFORGE_CACHE``         downloads, sources, compiler cache, work dirs
jobs           ``EDGEFORGE_JOBS``          parallel compile jobs (default: all cores)
compiler       ``EDGEFORGE_COMPILER``      auto | native | zig | gcc (default: auto)
target         ``EDGEFORGE_TARGET``        a shipped target name instead of the host's
smoke          ``EDGEFORGE_SMOKE``         1: run the recipe's smoke test (default: 0)
offline        ``EDGEFORGE_OFFLINE``       1: use only the download cache
=============  ==========================  ==============================================

The host target: ``edgeforge.toolchain.host_target_name()`` (``linux-aarch64``,
``musllinux-x86_64``, ...). ``compiler=auto`` uses that shipped toolchain as it is (its
default compiler and its manylinux/musllinux tags, checked by the audit). When no shipped
toolchain matches the machine (``linux-ppc64le``, ``linux-s390x``, ...), or ``compiler=native``
is asked for, the backend synthesizes a ``native`` toolchain: the host's own ``cc``/``c++``
(``$CC``/``$CXX``), CMake's processor = the machine name, and the honest ``linux_<machine>``
platform tag (a native build promises no manylinux floor).

The sdist keeps the repository's relative layout (the recipe may refer to files beside it,
e.g. ``../wheels/tflite-edge-lib/src/tflite_edge_lib``): its root is the deepest directory
holding the project, the recipe and the toolchains, and it carries the recipe, its lock file,
its patches, local ``file://{recipe_dir}`` sources, smoke files, python-sources, the
toolchains, the project's readme, a generated ``pyproject.toml`` and ``PKG-INFO``.
"""

from __future__ import annotations

import gzip
import io
import os
import platform
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

from . import __version__, tomlfile
from .errors import ConfigError, EdgeforgeError, MissingToolError
from .wheel import resolve_source_date_epoch

__all__ = [
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]

COMPILERS = ("auto", "native", "zig", "gcc")
ConfigSettings = Mapping[str, "str | list[str]"] | None


@dataclass(frozen=True)
class Settings:
    """Everything the backend needs, resolved once from pyproject, config-settings and env."""

    project_dir: Path
    name: str
    version: str
    recipe: Path
    toolchains: Path
    readme: Path | None
    requires_python: str | None
    cache_dir: Path
    jobs: int | None = None
    compiler: str = "auto"
    target: str | None = None
    smoke: bool = False
    offline: bool = False

    @property
    def sdist_root(self) -> Path:
        """The directory the sdist's paths are relative to (the repository root in a checkout,
        the sdist's own root once unpacked)."""
        return Path(os.path.commonpath([self.project_dir, self.recipe.parent, self.toolchains]))


def _setting(config: ConfigSettings, key: str, env: str, environ: Mapping[str, str]
             ) -> str | None:
    if config and key in config:
        value = config[key]
        return value[-1] if isinstance(value, list) else value
    return environ.get(env) or None


def _flag(value: str | None, key: str) -> bool:
    if value is None:
        return False
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{key}={value!r}: use 1/0, true/false, yes/no or on/off")


def load_settings(project_dir: Path | None = None, config: ConfigSettings = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``pyproject.toml`` in ``project_dir`` (default: the current directory, as PEP 517
    runs hooks there) and the settings; fail with a message naming the key."""
    from .fetch import default_cache_dir

    env = os.environ if environ is None else environ
    project_dir = (project_dir or Path.cwd()).resolve()
    path = project_dir / "pyproject.toml"
    if not path.is_file():
        raise ConfigError("no pyproject.toml here: run the backend from the project directory",
                          path=project_dir)
    doc = tomlfile.Table(tomlfile.load(path), path)
    project = doc.table("project", required=True)
    name = project.str("name", required=True)
    version = project.str("version", required=True)
    readme = project.str("readme")
    requires_python = project.str("requires-python")
    tool = doc.table("tool").table("edgeforge", required=True)
    recipe = (project_dir / tool.str("recipe", required=True)).resolve()
    if not recipe.is_file():
        raise tool.error("recipe", f"recipe file not found: {recipe}")
    toolchains = (project_dir / tool.str("toolchains", "toolchains")).resolve()
    if not toolchains.is_dir():
        raise tool.error("toolchains", f"toolchains directory not found: {toolchains}")

    jobs_text = _setting(config, "jobs", "EDGEFORGE_JOBS", env)
    try:
        jobs = int(jobs_text) if jobs_text else None
    except ValueError:
        raise ConfigError(f"jobs={jobs_text!r}: give a whole number of compile jobs") from None
    if jobs is not None and jobs < 1:
        raise ConfigError(f"jobs={jobs}: give at least 1")
    compiler = _setting(config, "compiler", "EDGEFORGE_COMPILER", env) or "auto"
    if compiler not in COMPILERS:
        raise ConfigError(f"compiler={compiler!r}: use one of {', '.join(COMPILERS)}")
    cache_text = _setting(config, "cache-dir", "EDGEFORGE_CACHE", env)
    cache_dir = Path(cache_text).expanduser() if cache_text else default_cache_dir(env)
    return Settings(
        project_dir=project_dir, name=name, version=version, recipe=recipe,
        toolchains=toolchains, readme=(project_dir / readme).resolve() if readme else None,
        requires_python=requires_python, cache_dir=cache_dir.resolve(), jobs=jobs,
        compiler=compiler, target=_setting(config, "target", "EDGEFORGE_TARGET", env),
        smoke=_flag(_setting(config, "smoke", "EDGEFORGE_SMOKE", env), "smoke"),
        offline=_flag(_setting(config, "offline", "EDGEFORGE_OFFLINE", env), "offline"),
    )


# --- the recipe and the host toolchain ---------------------------------------------------


def _load_recipe(settings: Settings):  # -> Recipe (imported lazily: hooks stay cheap)
    from .recipe import load_recipe

    recipe = load_recipe(settings.recipe)
    from packaging.utils import canonicalize_name

    if canonicalize_name(recipe.wheel.distribution) != canonicalize_name(settings.name):
        raise ConfigError(f"[project] name is {settings.name!r} but the recipe builds "
                          f"{recipe.wheel.distribution!r}", path=settings.project_dir)
    if recipe.version != settings.version:
        raise ConfigError(f"[project] version is {settings.version!r} but the recipe builds "
                          f"{recipe.version!r}", path=settings.project_dir)
    return recipe


def native_toolchain(machine: str | None = None, libc: str | None = None):  # -> Toolchain
    """A toolchain for a machine no shipped target describes: the host's own compilers and
    the ``linux_<machine>`` tag."""
    from .toolchain import SmokeSpec, Toolchain

    machine = machine or platform.machine()
    if libc is None:
        libc = "glibc" if platform.libc_ver()[0] == "glibc" else "musl"
    libc_version = (platform.libc_ver()[1] or "0") if libc == "glibc" else "1.2"
    return Toolchain(
        name=f"native-{machine}", path=Path("<synthesized by edgeforge.backend>"),
        description=f"this machine ({machine}, {libc}), built with its own compilers",
        arch=machine, libc=libc, libc_version=libc_version, wheel_tags=(f"linux_{machine}",),
        cmake_system_name="Linux", cmake_system_processor=machine, backend="native",
        flags=(), zig=None, gcc=None, smoke=SmokeSpec(debian_arch=machine, qemu=None),
    )


def host_toolchain(settings: Settings):  # -> Toolchain
    """The target this self-build is for (see the module docstring for the rules)."""
    from .toolchain import available_targets, host_target_name, resolve_target

    if settings.target is not None:
        toolchain = resolve_target(settings.target, directories=(settings.toolchains,))
    else:
        name = host_target_name()
        if name not in available_targets((settings.toolchains,)):
            return native_toolchain()
        toolchain = resolve_target(name, directories=(settings.toolchains,))
    if settings.compiler == "native":  # the host's compilers: the host's libc is the floor
        native = native_toolchain(toolchain.arch, toolchain.libc)
        return replace(toolchain, backend="native", zig=None, gcc=None,
                       wheel_tags=native.wheel_tags, libc_version=native.libc_version)
    if settings.compiler in ("zig", "gcc"):
        return toolchain.with_backend(settings.compiler)
    return toolchain


def _wheel_spec(recipe, toolchain):  # -> WheelSpec
    from .pipeline import _entry_points
    from .wheel import WheelSpec

    return WheelSpec(
        distribution=recipe.wheel.distribution, version=recipe.version,
        platform_tags=toolchain.wheel_tags, summary=recipe.wheel.summary,
        license=recipe.wheel.license, requires_python=recipe.wheel.requires_python,
        requires_dist=recipe.wheel.requires_dist, entry_points=_entry_points(recipe),
    )


def preflight(toolchain) -> None:
    """Fail before any download when a build tool is missing, saying what to install."""
    missing = []
    for tool, hint in (("cmake", "apt-get install cmake  (or: pip install cmake)"),
                       ("ninja", "apt-get install ninja-build  (or: pip install ninja)")):
        if shutil.which(tool) is None:
            missing.append(f"  {tool}: {hint}")
    if toolchain.backend == "native":
        for tool, env in (("cc", "CC"), ("c++", "CXX")):
            wanted = os.environ.get(env, tool)
            if shutil.which(wanted) is None:
                missing.append(f"  {wanted} (C/C++ compiler): apt-get install build-essential "
                               f"(apk add build-base on Alpine), or set ${env}")
    if missing:
        raise MissingToolError("the self-build needs these programs on PATH:\n"
                               + "\n".join(missing))


# --- PEP 517 hooks ----------------------------------------------------------------------


def _fail(err: EdgeforgeError, what: str) -> NoReturn:
    """A clear message and edgeforge's exit code instead of a traceback (pip shows both the
    output and the code)."""
    print(f"edgeforge: error: {err}", file=sys.stderr)
    print(f"edgeforge: {what} failed. This package has no wheel for this machine "
          f"({platform.machine()}, {sys.platform}), so pip is building it from source with "
          "edgeforge. Needs: cmake, ninja, a C/C++ compiler and network access (or a filled "
          "$EDGEFORGE_CACHE); docs/install.md says more.",
          file=sys.stderr)
    raise SystemExit(err.exit_code)


def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> list[str]:
    """cmake and ninja from the package index when the machine has none on PATH."""
    return [tool for tool in ("cmake", "ninja") if shutil.which(tool) is None]


def get_requires_for_build_sdist(config_settings: ConfigSettings = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: ConfigSettings = None) -> str:
    """The wheel's .dist-info without building anything (what ``pip download`` and the
    resolver need)."""
    from .wheel import _entry_points_file, _metadata, _wheel_file

    try:
        settings = load_settings(config=config_settings)
        recipe = _load_recipe(settings)
        spec = _wheel_spec(recipe, host_toolchain(settings))
    except EdgeforgeError as err:
        _fail(err, "reading the project's metadata")
    out = Path(metadata_directory) / spec.dist_info
    out.mkdir(parents=True, exist_ok=True)
    (out / "METADATA").write_text(_metadata(spec, []), encoding="utf-8")
    (out / "WHEEL").write_text(_wheel_file(spec), encoding="utf-8")
    if spec.entry_points:
        (out / "entry_points.txt").write_text(_entry_points_file(spec.entry_points),
                                              encoding="utf-8")
    return spec.dist_info


def build_wheel(wheel_directory: str, config_settings: ConfigSettings = None,
                metadata_directory: str | None = None) -> str:
    """Run the pipeline for the host (no QEMU) and put the wheel into ``wheel_directory``."""
    from .lock import read_lock
    from .log import Logger
    from .pipeline import BuildOptions, build

    try:
        settings = load_settings(config=config_settings)
        recipe = _load_recipe(settings)
        toolchain = host_toolchain(settings)
        preflight(toolchain)
        logger = Logger(verbose=True)
        logger.info(f"edgeforge {__version__}: self-build of {recipe.wheel.distribution} "
                    f"{recipe.version} for {toolchain.name} ({toolchain.backend}, "
                    f"{toolchain.platform_tag}); cache {settings.cache_dir}")
        if not settings.smoke:
            logger.info("smoke test skipped (pass -C smoke=1 or EDGEFORGE_SMOKE=1 to run it)")
        options = BuildOptions(cache_dir=settings.cache_dir,
                               dist_dir=Path(wheel_directory).resolve(),
                               offline=settings.offline, jobs=settings.jobs,
                               smoke=settings.smoke, reference=False, locked=read_lock(recipe))
        with logger.step(f"{recipe.name} {recipe.version} for {toolchain.name}"):
            report = build(recipe, toolchain, options, logger, host=toolchain)
    except EdgeforgeError as err:
        _fail(err, "the self-build")
    return report.wheel.name


def sdist_files(settings: Settings, recipe) -> dict[str, Path]:
    """Archive path (relative to the sdist root) -> file, for everything the self-build reads.
    """
    root = settings.sdist_root
    found: dict[str, Path] = {}

    def add(path: Path) -> None:
        path = path.resolve()
        if path.is_dir():
            for sub in sorted(path.rglob("*")):
                if sub.is_file() and not _junk(sub.relative_to(path)):
                    add(sub)
            return
        if not path.is_file():
            raise ConfigError(f"the sdist needs {path}, which does not exist",
                              path=settings.recipe)
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            raise ConfigError(f"{path} lies outside {root}; the sdist keeps the files' "
                              "relative layout, so keep them under one directory",
                              path=settings.recipe) from None
        found[rel] = path

    from .lock import lock_path

    add(recipe.path)
    if lock_path(recipe).is_file():
        add(lock_path(recipe))
    for source in recipe.sources:
        for patch in source.patches:
            add(patch)
        for location in source.locations:  # local sources (file://{recipe_dir}/...)
            if location.url and location.url.startswith("file://"):
                local = Path(location.url[len("file://"):])
                if local.resolve().is_relative_to(recipe.directory):
                    add(local)
    for rel in recipe.wheel.python_sources:
        add(recipe.directory / rel)
    for rel in (recipe.smoke.script, recipe.smoke.c_driver):
        if rel:
            add(recipe.directory / rel)
    for rel in recipe.smoke.python_path:
        if (recipe.directory / rel).is_dir():
            add(recipe.directory / rel)
    for toolchain in sorted(settings.toolchains.glob("*.toml")):
        add(toolchain)
    if settings.readme is not None:
        add(settings.readme)
    return found


def _junk(rel: Path) -> bool:
    return any(p.startswith(".") or p == "__pycache__" for p in rel.parts) or \
        rel.suffix in (".pyc", ".pyo", ".so", ".o")


def sdist_pyproject(settings: Settings, root: Path) -> str:
    """The sdist's own pyproject.toml: the same project, paths relative to the sdist root,
    and this exact edgeforge as the build requirement."""
    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    lines = [
        "# Generated by edgeforge's build backend: the self-build of this binary distribution.",
        "[build-system]",
        f'requires = ["edgeforge=={__version__}"]',
        'build-backend = "edgeforge.backend"',
        "",
        "[project]",
        f'name = "{settings.name}"',
        f'version = "{settings.version}"',
    ]
    if settings.readme is not None:
        lines.append(f'readme = "{rel(settings.readme)}"')
    if settings.requires_python:
        lines.append(f'requires-python = "{settings.requires_python}"')
    lines += [
        'dynamic = ["description", "license", "dependencies", "scripts", "entry-points"]',
        "",
        "[tool.edgeforge]",
        f'recipe = "{rel(settings.recipe)}"',
        f'toolchains = "{rel(settings.toolchains)}"',
        "",
    ]
    return "\n".join(lines)


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mode: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def build_sdist(sdist_directory: str, config_settings: ConfigSettings = None) -> str:
    """A reproducible ``{name}-{version}.tar.gz`` (sorted, fixed mtimes and owners)."""
    from .wheel import _metadata

    try:
        settings = load_settings(config=config_settings)
        recipe = _load_recipe(settings)
        files = sdist_files(settings, recipe)
        spec = _wheel_spec(recipe, native_toolchain())
    except EdgeforgeError as err:
        _fail(err, "making the sdist")
    root = settings.sdist_root
    base = f"{spec.name}-{spec.normalized_version}"
    epoch = resolve_source_date_epoch()
    generated = {
        "pyproject.toml": sdist_pyproject(settings, root).encode(),
        "PKG-INFO": _metadata(spec, []).encode(),
    }
    out_dir = Path(sdist_directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{base}.tar.gz"
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{base}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=epoch) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(set(files) | set(generated)):
                if name in generated:
                    data, mode = generated[name], 0o644
                else:
                    data = files[name].read_bytes()
                    mode = 0o755 if os.access(files[name], os.X_OK) else 0o644
                _tar_add(tar, f"{base}/{name}", data, mode, epoch)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final.name
