"""Recipes: ``recipes/*.toml`` -> typed ``Recipe``.

A recipe is declarative data in the conda-forge/rattler-build spirit: sources with their URLs
and sha256s, patches, the build system and its options, what to stage into the wheel, and how
to smoke-test it. All logic lives in edgeforge.

Values in ``[build]``, ``[[stage]]`` and ``licenses`` may use placeholders that the pipeline
fills in: ``{source:NAME}`` (a source's extracted directory), ``{build}`` (the build
directory), ``{recipe_dir}``, ``{target}``, ``{arch}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import resources, tomlfile, treehash
from .binfmt import load_formats
from .errors import ConfigError

RECIPES_DIR = resources.SHIPPED_RECIPES  # package data: found from an installed wheel too
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Location:
    """One place a source can be fetched from, with the sha256 that file must have.

    Either ``url`` (any scheme urllib speaks: https, http, file) or ``debian_pool`` (a path
    under ``pool/main/`` of the Debian archive the machine's apt sources name).
    ``sha256`` is None for a location whose archive bytes are not pinned: verified by the
    source's tree hash when it has one, else refused by a normal build until ``edgeforge lock``
    records its hash into the recipe's lock file.
    """

    url: str | None
    debian_pool: str | None
    sha256: str | None
    # How this archive is laid out, where it differs from the source's default (a mirror
    # may be a bigger archive that carries the source in a subdirectory).
    strip_components: int | None = None
    member: str | None = None
    # A file from PyPI, fetched through pip: `pip download <pypi> --platform ... --python-version`
    pypi: str | None = None
    pypi_platform: str | None = None
    pypi_python: str | None = None
    # A tar.xz of independent blocks carrying ``member``: the uncompressed byte range
    # [start, end) of the tar that holds the member's entries. Only the xz blocks covering it
    # are fetched, by ranged GETs (edgeforge.xzrange); the tree hash proves the result.
    member_range: tuple[int, int] | None = None

    @property
    def display(self) -> str:
        if self.pypi:
            return f"pypi:{self.pypi}"
        return self.url if self.url else f"debian-pool:{self.debian_pool}"

    @property
    def filename(self) -> str:
        if self.pypi:  # the wheel's name is pip's to choose; cached under the sha256
            return self.pypi.replace("==", "-") + ".download"
        name = (self.url or self.debian_pool or "").rstrip("/").rsplit("/", 1)[-1]
        return name or "download"

    @property
    def member_filename(self) -> str | None:
        """The cache name of the tar entries a ``member_range`` fetch stores."""
        if self.member_range is None:
            return None
        start, end = self.member_range
        return f"{self.filename}.{start}-{end}.tar"


@dataclass(frozen=True)
class Source:
    name: str
    locations: tuple[Location, ...]
    strip_components: int = 1
    archs: tuple[str, ...] = ()  # only for these target archs (empty: all)
    libcs: tuple[str, ...] = ()  # only for these libcs (empty: all)
    patches: tuple[Path, ...] = ()
    extract: bool = True  # False: keep the downloaded file as it is
    member: str | None = None  # extract only this subdirectory (after strip-components)
    smoke_only: bool = False  # test data for the smoke step (models), not a build input
    # ``sha256:<hex>`` over the extracted tree (edgeforge.treehash): every location must give it
    tree: str | None = None
    exclude: tuple[str, ...] = ()  # globs left out of the tree (e.g. a mirror's Files-Excluded)

    def location_of(self, archive: Path) -> Location:
        """The location a fetched archive came from (matched by its file name)."""
        for location in self.locations:
            if archive.name in (location.filename, location.member_filename):
                return location
        return self.locations[0]

    def layout(self, archive: Path) -> tuple[int, str | None]:
        """(strip-components, member) for the archive, location settings first."""
        return self.layout_for(self.location_of(archive))

    def layout_for(self, loc: Location) -> tuple[int, str | None]:
        strip = loc.strip_components if loc.strip_components is not None \
            else self.strip_components
        return strip, loc.member or self.member

    def applies_to(self, arch: str, libc: str) -> bool:
        return (not self.archs or arch in self.archs) and (not self.libcs or libc in self.libcs)


@dataclass(frozen=True)
class CMakeBuild:
    # The CMake project: in a source's tree (``source`` + ``subdir``), or a directory that
    # ships with the recipe (``project``, relative to the recipe's directory; e.g. a small
    # CMakeLists.txt that builds a few files of a source the project names in its defines).
    source: str | None
    subdir: str = ""  # the CMake project's directory inside that source
    project: str | None = None
    targets: tuple[str, ...] = ()  # ninja targets; empty: the default target
    defines: dict[str, str] = field(default_factory=dict)
    # Defines for one binary format (formats.toml's keys: elf, pe, macho), then for one
    # architecture or target (arch_defines): a later layer's value wins, except for CMake's
    # *_FLAGS variables, whose layers all apply (concatenated). E.g. ELF's --gc-sections.
    format_defines: dict[str, dict[str, str]] = field(default_factory=dict)
    arch_defines: dict[str, dict[str, str]] = field(default_factory=dict)
    c_flags: tuple[str, ...] = ()
    cxx_flags: tuple[str, ...] = ()
    link_flags: tuple[str, ...] = ()
    version_script: str | None = None  # exported-symbol list applied to shared libraries


@dataclass(frozen=True)
class PrebuiltBuild:
    """Files picked from a release archive: the archive path per target arch."""

    source: str
    paths: dict[str, str]  # target arch (or target name) -> directory inside the source


@dataclass(frozen=True)
class StageEntry:
    src: str  # a path or glob with placeholders
    dest: str  # a directory inside the wheel's package (ends with /) or a file path
    executable: bool = False
    optional: bool = False
    base: str | None = None  # keep each file's path relative to this directory under dest


@dataclass(frozen=True)
class WheelInfo:
    distribution: str
    package: str  # the import package the staged files go under
    summary: str = ""
    license: str | None = None
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    python_sources: tuple[str, ...] = ()  # directories of Python packages copied into the wheel
    console_scripts: dict[str, str] = field(default_factory=dict)
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)
    # sonames the binaries take from the system (users install them, e.g. libusb-1.0.so.0):
    # the audit accepts them outside the manylinux whitelist, and says so
    system_libraries: tuple[str, ...] = ()
    # fnmatch patterns of the C API the shared libraries export (e.g. "TfLite*"): the PE and
    # Mach-O audits refuse a library exporting anything else, or none of it
    exports: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmokeTest:
    script: str | None = None  # run by the target's Python with the wheel installed; prints JSON
    c_driver: str | None = None  # for targets with no Debian Python (musl): a C program
    packages: tuple[str, ...] = ("python3", "python3-numpy")
    tolerance: float = 1e-6  # relative+absolute tolerance when comparing with the host
    ignore_keys: tuple[str, ...] = ("machine",)
    timeout: float = 600.0
    python_path: tuple[str, ...] = ()  # pure-Python source dirs put on the smoke's PYTHONPATH


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    path: Path
    sources: tuple[Source, ...]
    build_system: str
    cmake: CMakeBuild | None
    prebuilt: PrebuiltBuild | None
    stage: tuple[StageEntry, ...]
    licenses: tuple[str, ...]
    wheel: WheelInfo
    smoke: SmokeTest

    @property
    def directory(self) -> Path:
        return self.path.parent

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named {name!r}", path=self.path, key="sources")

    def sources_for(self, arch: str, libc: str) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.applies_to(arch, libc))


def _location(t: tomlfile.Table, recipe_dir: Path, has_tree: bool) -> Location:
    url = t.str("url")
    if url is not None and "{recipe_dir}" in url:  # local sources next to the recipe
        url = url.replace("{recipe_dir}", recipe_dir.as_posix())
    pool = t.str("debian-pool")
    pypi = t.str("pypi")
    if sum(x is not None for x in (url, pool, pypi)) != 1:
        raise t.error("url", "give exactly one of `url`, `debian-pool` or `pypi`")
    sha = t.str("sha256")
    if sha is None and not t.bool("unpinned") and not has_tree:
        raise t.error("sha256", "missing; every URL carries its sha256, or its source a `tree` "
                      "hash that verifies it (or `unpinned = true`, which `edgeforge lock` "
                      "resolves)")
    if sha is not None and not _SHA256.match(sha):
        raise t.error("sha256", f"not a lowercase hex sha256: {sha!r}")
    if pool is not None and (pool.startswith("/") or ".." in pool.split("/")):
        raise t.error("debian-pool", f"must be a relative pool path like "
                      f"'t/tensorflow/tensorflow_2.14.1+dfsg.orig.tar.xz', got {pool!r}")
    strip = t.int("strip-components")
    member = t.str("member")
    pypi_platform = t.str("pypi-platform")
    pypi_python = t.str("pypi-python")
    member_range = _member_range(t, member, sha)
    t.reject_unknown()
    return Location(url=url, debian_pool=pool, sha256=sha, strip_components=strip,
                    member=member, pypi=pypi, pypi_platform=pypi_platform,
                    pypi_python=pypi_python, member_range=member_range)


def _member_range(t: tomlfile.Table, member: str | None, sha: str | None
                  ) -> tuple[int, int] | None:
    raw = t._get("member-range", list, None, False)
    if raw is None:
        return None
    if not (isinstance(raw, list) and len(raw) == 2 and all(type(v) is int for v in raw)
            and 0 <= raw[0] < raw[1]):
        raise t.error("member-range", f"give [start, end] byte offsets, start < end: {raw!r}")
    if member is None or sha is None:
        raise t.error("member-range", "needs `member` and the archive's `sha256` (the fetched "
                      "blocks are cached under it)")
    return raw[0], raw[1]


def _tree(t: tomlfile.Table) -> str | None:
    tree: str | None = t.str("tree")
    if tree is not None and not treehash.is_tree_pin(tree):
        raise t.error("tree", f"not a tree hash (sha256:<64 lowercase hex>): {tree!r}; "
                      "`edgeforge lock --tree` records it")
    return tree


def _source(t: tomlfile.Table, recipe_dir: Path) -> Source:
    name = t.str("name", required=True)
    if not _NAME.match(name):
        raise t.error("name", f"not a valid source name: {name!r}")
    tree = _tree(t)
    locations = tuple(_location(u, recipe_dir, tree is not None)
                      for u in t.tables("urls", required=True))
    patches = []
    for rel in t.str_list("patches"):
        p = (recipe_dir / rel).resolve()
        if not p.is_file():
            raise t.error("patches", f"patch file not found: {p}")
        patches.append(p)
    src = Source(
        name=name,
        locations=locations,
        strip_components=t.int("strip-components", 1),
        archs=tuple(t.str_list("archs")),
        libcs=tuple(t.str_list("libcs")),
        patches=tuple(patches),
        extract=t.bool("extract", True),
        member=t.str("member"),
        smoke_only=t.bool("smoke-only"),
        tree=tree,
        exclude=tuple(t.str_list("exclude")),
    )
    t.reject_unknown()
    return src


def _cmake(t: tomlfile.Table) -> CMakeBuild:
    c = t.table("cmake", required=True)
    arch_defines = {}
    archs = c.table("arch-defines")
    for arch in list(archs.data):
        arch_defines[arch] = archs.str_map(arch)
    format_defines = {}
    formats = c.table("format-defines")
    for key in list(formats.data):
        if key not in load_formats():
            raise formats.error(key, f"unknown binary format {key!r} (formats.toml has: "
                                f"{', '.join(load_formats())})")
        format_defines[key] = formats.str_map(key)
    source, project = c.str("source"), c.str("project")
    if (source is None) == (project is None):
        raise c.error("source", "name the CMake project: either `source` (a source's tree, "
                      "with `subdir`) or `project` (a directory next to the recipe)")
    build = CMakeBuild(
        source=source,
        subdir=c.str("subdir", ""),
        project=project,
        targets=tuple(c.str_list("targets")),
        defines=c.str_map("defines"),
        format_defines=format_defines,
        arch_defines=arch_defines,
        c_flags=tuple(c.str_list("c-flags")),
        cxx_flags=tuple(c.str_list("cxx-flags")),
        link_flags=tuple(c.str_list("link-flags")),
        version_script=c.str("version-script"),
    )
    c.reject_unknown()
    return build


def _prebuilt(t: tomlfile.Table) -> PrebuiltBuild:
    p = t.table("prebuilt", required=True)
    paths = p.str_map("paths")
    if not paths:
        raise p.error("paths", "map each target arch or target name to a directory in the archive")
    build = PrebuiltBuild(source=p.str("source", required=True), paths=paths)
    p.reject_unknown()
    return build


def load_recipe(path: Path) -> Recipe:
    path = path.resolve()
    t = tomlfile.Table(tomlfile.load(path), path)
    pkg = t.table("package", required=True)
    name = pkg.str("name", required=True)
    version = pkg.str("version", required=True)
    pkg.reject_unknown()

    sources = tuple(_source(s, path.parent) for s in t.tables("sources", required=True))
    names = [s.name for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise t.error("sources", f"duplicate source names: {', '.join(sorted(dupes))}")

    b = t.table("build", required=True)
    system = b.choice("system", ("cmake", "prebuilt"))
    cmake = _cmake(b) if system == "cmake" else None
    prebuilt = _prebuilt(b) if system == "prebuilt" else None
    b.reject_unknown()
    used = cmake.source if cmake else prebuilt.source  # type: ignore[union-attr]
    if used is not None and used not in names:
        raise b.error(system, f"names source {used!r}, but the recipe's sources are {names}")
    if cmake is not None and cmake.project is not None:
        project_dir = path.parent / cmake.project
        if not (project_dir / "CMakeLists.txt").is_file():
            raise b.error("cmake", f"project {cmake.project!r}: no CMakeLists.txt in "
                          f"{project_dir}")

    stage = []
    for s in t.tables("stage", required=True):
        stage.append(StageEntry(src=s.str("from", required=True), dest=s.str("to", required=True),
                                executable=s.bool("executable"), optional=s.bool("optional"),
                                base=s.str("base")))
        s.reject_unknown()

    w = t.table("wheel", required=True)
    wheel = WheelInfo(
        distribution=w.str("distribution", required=True),
        package=w.str("package", required=True),
        summary=w.str("summary", ""),
        license=w.str("license"),
        requires_python=w.str("requires-python"),
        requires_dist=tuple(w.str_list("requires-dist")),
        python_sources=tuple(w.str_list("python-sources")),
        console_scripts=w.str_map("console-scripts"),
        entry_points={g: w.table("entry-points").str_map(g)
                      for g in w.table("entry-points").data},
        system_libraries=tuple(w.str_list("system-libraries")),
        exports=tuple(w.str_list("exports")),
    )
    w.reject_unknown()

    sm = t.table("smoke")
    smoke = SmokeTest(
        script=sm.str("script"),
        c_driver=sm.str("c-driver"),
        packages=tuple(sm.str_list("packages", ["python3", "python3-numpy"])),
        tolerance=sm.float("tolerance", 1e-6),
        ignore_keys=tuple(sm.str_list("ignore-keys", ["machine"])),
        timeout=sm.float("timeout", 600.0),
        python_path=tuple(sm.str_list("python-path")),
    )
    sm.reject_unknown()
    licenses = tuple(t.str_list("licenses"))
    t.reject_unknown()
    return Recipe(name=name, version=version, path=path, sources=sources, build_system=system,
                  cmake=cmake, prebuilt=prebuilt, stage=tuple(stage), licenses=licenses,
                  wheel=wheel, smoke=smoke)


def resolve_recipe(name_or_path: str, directories: Sequence[Path] | None = None) -> Recipe:
    """A path to a TOML file, or a recipe's name looked up in ``directories`` in order (default:
    the user's search path, ``EDGEFORGE_RECIPE_PATH``, then the recipes shipped with edgeforge).
    """
    if directories is None:
        directories = resources.SearchPath.build().recipes
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists() or "/" in name_or_path:
        if not candidate.is_file():
            raise ConfigError(f"recipe file not found: {candidate}")
        return load_recipe(candidate)
    found = resources.find_toml(directories, name_or_path)
    if found is not None:
        return load_recipe(found)
    known = ", ".join(resources.list_toml(directories))
    searched = ", ".join(str(d) for d in directories)
    raise ConfigError(f"unknown recipe {name_or_path!r}. Known recipes: {known or 'none'} "
                      f"(searched {searched}); pass a path to a recipe .toml file, or add its "
                      f"directory with --recipe-path or ${resources.RECIPE_PATH_ENV}.")
