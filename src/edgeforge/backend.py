"""PEP 517 build backend: the sdist self-build of an edgeforge binary distribution.

A binary distribution such as ``tflite-edge-lib`` ships one ``py3-none-<platform>`` wheel per
target. On a machine nobody ships a wheel for, pip falls back to its sdist, and this backend
builds the wheel for the host by running edgeforge's pipeline (fetch -> build -> stage ->
wheel -> audit; no QEMU), the way esbuild falls back to building from source.

The project's ``pyproject.toml`` names the recipe; everything else is settings::

    [build-system]
    requires = ["edgeforge==0.2.0"]   # exactly the edgeforge whose recipe this is
    build-backend = "edgeforge.backend"

    [project]
    name = "tflite-edge-lib"          # must match the recipe's [wheel] distribution
    version = "2.14.1"                # must match the recipe's [package] version
    dynamic = ["description", ...]    # the recipe's [wheel] table supplies the rest

    [tool.edgeforge]
    recipe = "tflite"                 # a recipe edgeforge ships, or a path to a .toml
    library-env = "TFLITE_EDGE_LIBRARY"   # what a user can set instead (said in errors)
    # toolchains = "toolchains"       # optional: a directory of the project's own targets

A recipe given by name is the one the pinned edgeforge ships as package data
(``edgeforge.resources``, after ``EDGEFORGE_RECIPE_PATH``): the sdist is then only its
``pyproject.toml``, ``PKG-INFO`` and readme, and pins ``edgeforge==<this version>``, so the
build uses exactly the recipe, sources and sha256s of the release it came from. A recipe given
by path travels in the sdist with its directory and every file it references, keeping their
relative layout (the sdist's root is the deepest directory holding them all).

Settings (``--config-settings KEY=VALUE`` / ``-C KEY=VALUE``, else the environment), resolved
once (``edgeforge.settings`` for the ones the CLI shares) into ``Settings``:

==================  ============================  ===========================================
key                 environment                   meaning
==================  ============================  ===========================================
cache-dir           ``EDGEFORGE_CACHE``           downloads, sources, compiler cache, work dirs
jobs                ``EDGEFORGE_JOBS``            parallel compile jobs (default: all cores)
offline             ``EDGEFORGE_OFFLINE``         1: use only the download cache
recipe-path         ``EDGEFORGE_RECIPE_PATH``     recipe directories searched before the shipped
toolchain-path      ``EDGEFORGE_TOOLCHAIN_PATH``  toolchain directories (e.g. your board's)
compiler            ``EDGEFORGE_COMPILER``        auto | native | zig | gcc (default: auto)
target              ``EDGEFORGE_TARGET``          a target name instead of the host's
smoke               ``EDGEFORGE_SMOKE``           1: run the recipe's smoke test (default: 0)
==================  ============================  ===========================================

The host target: ``edgeforge.toolchain.host_target_name()`` (``linux-aarch64``,
``musllinux-x86_64``, ...), looked up on the toolchain search path. ``compiler=auto`` uses
that toolchain as it is (its default compiler and its manylinux/musllinux tags, checked by the
audit). When no toolchain matches the machine (``linux-ppc64le``, ``linux-s390x``, ...), or
``compiler=native`` is asked for, the backend synthesizes a ``native`` toolchain: the host's
own ``cc``/``c++`` (``$CC``/``$CXX``), CMake's processor = the machine name, and the honest
``linux_<machine>`` platform tag (a native build promises no manylinux floor).

A build that cannot proceed (no C/C++ compiler, no cmake or ninja, a target nobody
describes) stops before any download with one message: what is missing, how to install it,
and which ``library-env`` variable points the package at a library the user already has.
"""

from __future__ import annotations

import gzip
import io
import os
import platform
import shutil
import sys
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__, tomlfile
from .errors import ConfigError, EdgeforgeError, MissingToolError
from .fsutil import atomic_path
from .resources import TOOLCHAIN_PATH_ENV
from .settings import BuildSettings, as_flag, lookup, resolve_settings
from .wheel import resolve_source_date_epoch

if TYPE_CHECKING:
    from .recipe import Recipe
    from .toolchain import Toolchain
    from .wheel import WheelSpec

__all__ = [
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]

COMPILERS = ("auto", "native", "zig", "gcc")
# config-settings key -> environment variable, beyond edgeforge.settings.ENV
BACKEND_ENV = {"compiler": "EDGEFORGE_COMPILER", "target": "EDGEFORGE_TARGET",
               "smoke": "EDGEFORGE_SMOKE"}
ConfigSettings = Mapping[str, "str | list[str]"] | None


@dataclass(frozen=True)
class Project:
    """What the project's ``pyproject.toml`` says."""

    directory: Path
    name: str
    version: str
    readme: Path | None
    requires_python: str | None
    recipe_ref: str  # as written: a recipe name ("tflite") or a path relative to directory
    toolchains: Path | None  # the project's own toolchain directory, if it names one
    library_env: str | None  # the variable that points the package at a user's library

    @property
    def recipe_is_path(self) -> bool:
        return is_recipe_path(self.recipe_ref)


@dataclass(frozen=True)
class Settings:
    """Everything the backend needs, resolved once from pyproject, config-settings and env."""

    project: Project
    recipe: Recipe
    build: BuildSettings
    compiler: str = "auto"
    target: str | None = None
    smoke: bool = False

    @property
    def sdist_root(self) -> Path:
        """The directory the sdist's paths are relative to (the repository root in a checkout,
        the sdist's own root once unpacked)."""
        dirs = [self.project.directory]
        if self.project.recipe_is_path:
            dirs += [self.recipe.directory, *_outside_references(self.recipe)]
        if self.project.toolchains is not None:
            dirs.append(self.project.toolchains)
        return Path(os.path.commonpath([d if d.is_dir() else d.parent for d in dirs]))


def is_recipe_path(ref: str) -> bool:
    return ref.endswith(".toml") or "/" in ref or os.sep in ref


def load_project(directory: Path) -> Project:
    path = directory / "pyproject.toml"
    if not path.is_file():
        raise ConfigError("no pyproject.toml here: run the backend from the project directory",
                          path=directory)
    doc = tomlfile.Table(tomlfile.load(path), path)
    project = doc.table("project", required=True)
    readme = project.str("readme")
    tool = doc.table("tool").table("edgeforge", required=True)
    toolchains = tool.str("toolchains")
    toolchain_dir = (directory / toolchains).resolve() if toolchains else None
    if toolchain_dir is not None and not toolchain_dir.is_dir():
        raise tool.error("toolchains", f"toolchains directory not found: {toolchain_dir}")
    _check_pin(doc.table("build-system").str_list("requires"), path)
    result = Project(
        directory=directory, name=project.str("name", required=True),
        version=project.str("version", required=True),
        readme=(directory / readme).resolve() if readme else None,
        requires_python=project.str("requires-python"),
        recipe_ref=tool.str("recipe", required=True), toolchains=toolchain_dir,
        library_env=tool.str("library-env"))
    tool.reject_unknown()
    return result


def _check_pin(requires: list[str], path: Path) -> None:
    """A project that pins another edgeforge names another recipe: refuse to build it with
    this one (pip's build isolation installs the pinned one; --no-build-isolation does not)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == "edgeforge" and req.specifier and \
                not req.specifier.contains(__version__, prereleases=True):
            raise ConfigError(f"this project needs {text} but edgeforge {__version__} is "
                              f"running: let pip install the pinned one (build isolation, no "
                              f"--no-build-isolation) or pip install '{text}'", path=path,
                              key="build-system")


def _recipe(project: Project, build: BuildSettings) -> Recipe:
    from packaging.utils import canonicalize_name

    from .recipe import load_recipe, resolve_recipe

    if project.recipe_is_path:
        path = (project.directory / project.recipe_ref).resolve()
        if not path.is_file():
            raise ConfigError(f"[tool.edgeforge] recipe: recipe file not found: {path}",
                              path=project.directory / "pyproject.toml")
        recipe = load_recipe(path)
    else:
        recipe = resolve_recipe(project.recipe_ref, build.search.recipes)
    if canonicalize_name(recipe.wheel.distribution) != canonicalize_name(project.name):
        raise ConfigError(f"[project] name is {project.name!r} but the recipe {recipe.path} "
                          f"builds {recipe.wheel.distribution!r}", path=project.directory)
    if recipe.version != project.version:
        raise ConfigError(f"[project] version is {project.version!r} but the recipe "
                          f"{recipe.path} builds {recipe.version!r}", path=project.directory)
    return recipe


def load_settings(project_dir: Path | None = None, config: ConfigSettings = None,
                  environ: Mapping[str, str] | None = None,
                  project: Project | None = None) -> Settings:
    """Read ``pyproject.toml`` in ``project_dir`` (default: the current directory, as PEP 517
    runs hooks there; or take ``project``, already read), the config-settings and the
    environment; fail with a message naming the key."""
    from .settings import ENV

    env = os.environ if environ is None else environ
    given = dict(config or {})
    unknown = sorted(set(given) - set(ENV) - set(BACKEND_ENV))
    if unknown:
        known = ", ".join(sorted([*ENV, *BACKEND_ENV]))
        raise ConfigError(f"unknown config setting {', '.join(map(repr, unknown))}; "
                          f"edgeforge's are: {known}")
    if project is None:
        project = load_project((project_dir or Path.cwd()).resolve())
    build = resolve_settings(given, env, toolchain_dirs=[project.toolchains]
                             if project.toolchains else [])
    compiler = str(lookup(given, "compiler", BACKEND_ENV["compiler"], env) or "auto")
    if compiler not in COMPILERS:
        raise ConfigError(f"compiler={compiler!r}: use one of {', '.join(COMPILERS)}")
    target = lookup(given, "target", BACKEND_ENV["target"], env)
    return Settings(
        project=project, recipe=_recipe(project, build), build=build, compiler=compiler,
        target=str(target) if target is not None else None,
        smoke=as_flag(lookup(given, "smoke", BACKEND_ENV["smoke"], env), "smoke"),
    )


# --- the host toolchain and what the build needs -------------------------------------------


def native_toolchain(machine: str | None = None, libc: str | None = None) -> Toolchain:
    """A toolchain for a machine no toolchain file describes: the host's own compilers and
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


def host_toolchain(settings: Settings) -> Toolchain:
    """The target this self-build is for (see the module docstring for the rules)."""
    from .toolchain import available_targets, host_target_name, resolve_target

    dirs = settings.build.search.toolchains
    if settings.target is not None:
        toolchain = resolve_target(settings.target, directories=dirs)
    else:
        name = host_target_name()
        if name not in available_targets(dirs):
            return native_toolchain()
        toolchain = resolve_target(name, directories=dirs)
    if settings.compiler == "native":  # the host's compilers: the host's libc is the floor
        native = native_toolchain(toolchain.arch, toolchain.libc)
        return replace(toolchain, backend="native", zig=None, gcc=None,
                       wheel_tags=native.wheel_tags, libc_version=native.libc_version)
    if settings.compiler in ("zig", "gcc"):
        return toolchain.with_backend(settings.compiler)
    return toolchain


def preflight(toolchain: Toolchain) -> None:
    """Fail before any download when a build tool is missing, saying what to install."""
    missing = []
    for tool, hint in (("cmake", "apt-get install cmake (or pip install cmake)"),
                       ("ninja", "apt-get install ninja-build (or pip install ninja)")):
        if shutil.which(tool) is None:
            missing.append(f"{tool}: {hint}")
    if toolchain.backend == "native":
        compilers = [os.environ.get(env) or tool for tool, env in (("cc", "CC"), ("c++", "CXX"))]
        absent = [c for c in compilers if shutil.which(c) is None]
        if absent:
            missing.append(f"a C/C++ compiler ({', '.join(absent)}): apt-get install "
                           "build-essential (apk add build-base on Alpine), or set $CC and $CXX")
    if not missing:
        return
    if toolchain.backend == "native" and toolchain.name.startswith("native-"):
        what = (f"edgeforge ships no toolchain for this machine ({toolchain.arch}, "
                f"{toolchain.libc}), so it builds with the machine's own compilers (or put "
                f"a toolchain file for it on ${TOOLCHAIN_PATH_ENV} and pass -C target=NAME)")
    else:
        what = f"building for {toolchain.name} with {toolchain.backend}"
    raise MissingToolError(f"{what}, and these are missing: " + "; ".join(missing))


# --- PEP 517 hooks ----------------------------------------------------------------------


def _machine() -> str:
    libc, version = platform.libc_ver()
    return f"{platform.machine()}, {libc or 'musl'} {version}".rstrip()


def _fail(err: EdgeforgeError, what: str, project: Project | None = None) -> NoReturn:
    """One clear message and edgeforge's exit code instead of a traceback (pip shows the
    backend's output and the code)."""
    name = f"{project.name} {project.version}" if project else "this package"
    lines = [f"edgeforge: {what} of {name} failed (no wheel for this machine: {_machine()}): "
             f"{err}"]
    if isinstance(err, MissingToolError):
        lines.append("Install what is missing and run pip again.")
    if project is not None and project.library_env:
        lines.append(f"Or use a build of the library you already have: install the packages "
                     f"that need {project.name} with `pip install --no-deps`, and set "
                     f"{project.library_env}=/path/to/the/library.")
    print("\n".join(lines), file=sys.stderr)
    raise SystemExit(err.exit_code)


def _settings_or_fail(config: ConfigSettings, what: str) -> Settings:
    project = None
    try:
        project = load_project(Path.cwd().resolve())
        return load_settings(config=config, project=project)
    except EdgeforgeError as err:
        _fail(err, what, project)


def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> list[str]:
    """cmake and ninja from the package index when the machine has none on PATH."""
    return [tool for tool in ("cmake", "ninja") if shutil.which(tool) is None]


def get_requires_for_build_sdist(config_settings: ConfigSettings = None) -> list[str]:
    return []


def _wheel_spec(settings: Settings, toolchain: Toolchain) -> WheelSpec:
    from .pipeline import wheel_spec

    return wheel_spec(settings.recipe, toolchain)


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: ConfigSettings = None) -> str:
    """The wheel's .dist-info without building anything (what ``pip download`` and the
    resolver need)."""
    from .wheel import _entry_points_file, _metadata, _wheel_file

    settings = _settings_or_fail(config_settings, "reading the metadata")
    try:
        spec = _wheel_spec(settings, host_toolchain(settings))
    except EdgeforgeError as err:
        _fail(err, "reading the metadata", settings.project)
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
    from .log import Logger
    from .pipeline import build

    settings = _settings_or_fail(config_settings, "the self-build")
    recipe = settings.recipe
    try:
        toolchain = host_toolchain(settings)
        preflight(toolchain)
        logger = Logger(verbose=True)
        logger.info(f"edgeforge {__version__}: self-build of {recipe.wheel.distribution} "
                    f"{recipe.version} for {toolchain.name} ({toolchain.backend}, "
                    f"{toolchain.platform_tag}) from {recipe.path}; cache "
                    f"{settings.build.cache_dir}")
        if not settings.smoke:
            logger.info("smoke test skipped (pass -C smoke=1 or EDGEFORGE_SMOKE=1 to run it)")
        options = settings.build.build_options(recipe, Path(wheel_directory).resolve(),
                                               smoke=settings.smoke, reference=False)
        with logger.step(f"{recipe.name} {recipe.version} for {toolchain.name}"):
            report = build(recipe, toolchain, options, logger, host=toolchain)
    except EdgeforgeError as err:
        _fail(err, "the self-build", settings.project)
    return report.wheel.name


# --- the sdist ----------------------------------------------------------------------------


def _local_files(recipe: Recipe) -> list[Path]:
    """Files and directories a recipe refers to (some may lie outside its directory)."""
    refs: list[Path] = []
    for source in recipe.sources:
        refs += source.patches
        for location in source.locations:  # local sources (file://{recipe_dir}/...)
            if location.url and location.url.startswith("file://"):
                refs.append(Path(location.url[len("file://"):]))
    refs += [recipe.directory / rel for rel in recipe.wheel.python_sources]
    refs += [recipe.directory / rel for rel in (recipe.smoke.script, recipe.smoke.c_driver) if rel]
    refs += [recipe.directory / rel for rel in recipe.smoke.python_path]
    if recipe.cmake is not None and recipe.cmake.project:
        refs.append(recipe.directory / recipe.cmake.project)
    return [p.resolve() for p in refs]


def _outside_references(recipe: Recipe) -> list[Path]:
    return [p for p in _local_files(recipe) if not p.is_relative_to(recipe.directory)]


def sdist_files(settings: Settings) -> dict[str, Path]:
    """Archive path (relative to the sdist root) -> file, for everything the self-build reads
    that the pinned edgeforge does not ship."""
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
                              path=settings.recipe.path)
        found[path.relative_to(root).as_posix()] = path

    if settings.project.recipe_is_path:  # the recipe's directory and what it refers to
        add(settings.recipe.directory)
        for ref in _outside_references(settings.recipe):
            if ref.exists():
                add(ref)
    if settings.project.toolchains is not None:
        for toolchain in sorted(settings.project.toolchains.glob("*.toml")):
            add(toolchain)
    if settings.project.readme is not None:
        add(settings.project.readme)
    return found


def _junk(rel: Path) -> bool:
    return any(p.startswith(".") or p == "__pycache__" for p in rel.parts) or \
        rel.suffix in (".pyc", ".pyo", ".so", ".o")


def sdist_pyproject(settings: Settings, root: Path) -> str:
    """The sdist's own pyproject.toml: the same project, paths relative to the sdist root,
    and this exact edgeforge as the build requirement."""
    project = settings.project

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    recipe = rel(settings.recipe.path) if project.recipe_is_path else project.recipe_ref
    lines = [
        "# Generated by edgeforge's build backend: the self-build of this binary distribution.",
        f"# Built from edgeforge {__version__}'s recipe {recipe!r} (pinned sources, sha256s).",
        "[build-system]",
        f'requires = ["edgeforge=={__version__}"]',
        'build-backend = "edgeforge.backend"',
        "",
        "[project]",
        f'name = "{project.name}"',
        f'version = "{project.version}"',
    ]
    if project.readme is not None:
        lines.append(f'readme = "{rel(project.readme)}"')
    if project.requires_python:
        lines.append(f'requires-python = "{project.requires_python}"')
    lines += [
        'dynamic = ["description", "license", "dependencies", "scripts", "entry-points"]',
        "",
        "[tool.edgeforge]",
        f'recipe = "{recipe}"',
    ]
    if project.toolchains is not None:
        lines.append(f'toolchains = "{rel(project.toolchains)}"')
    if project.library_env:
        lines.append(f'library-env = "{project.library_env}"')
    return "\n".join(lines) + "\n"


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mode: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def build_sdist(sdist_directory: str, config_settings: ConfigSettings = None) -> str:
    """A reproducible ``{name}-{version}.tar.gz`` (sorted, fixed mtimes and owners)."""
    from .wheel import _metadata

    settings = _settings_or_fail(config_settings, "making the sdist")
    try:
        files = sdist_files(settings)
        spec = replace(_wheel_spec(settings, native_toolchain()),
                       description=settings.project.readme.read_text(encoding="utf-8")
                       if settings.project.readme else None)
    except EdgeforgeError as err:
        _fail(err, "making the sdist", settings.project)
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
    with atomic_path(final) as tmp, tmp.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=epoch) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(set(files) | set(generated)):
            if name in generated:
                data, mode = generated[name], 0o644
            else:
                data = files[name].read_bytes()
                mode = 0o755 if os.access(files[name], os.X_OK) else 0o644
            _tar_add(tar, f"{base}/{name}", data, mode, epoch)
    return final.name
