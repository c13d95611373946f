"""The release config (``release.toml``): which recipes for which targets, and which packages.

::

    [release]
    smoke = true                  # run each cell's smoke test (default: true)

    [[matrix]]                    # every recipe for every target; repeat the table for
    recipes = ["tflite"]          # recipes with other targets (a cell listed twice is an error)
    targets = ["linux-x86_64", "linux-aarch64"]   # "host": the machine the release runs on

    [packages]                    # project directories (relative to this file):
    projects = ["wheels/tflite-edge", "wheels/tflite-edge-lib"]

A project built by ``edgeforge.backend`` is a binary distribution: the release writes its sdist
(its wheels are the matrix's cells). Any other project is a pure package: wheel and sdist.
Recipes are shipped recipe names or ``.toml`` paths relative to this file. Every mistake is
one error naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import tomlfile
from .errors import ConfigError
from .recipe import Recipe, resolve_recipe
from .toolchain import available_targets, host_target_name

DEFAULT_CONFIG = Path("release.toml")
EDGEFORGE_BACKEND = "edgeforge.backend"


@dataclass(frozen=True)
class Cell:
    """One recipe for one target: one binary wheel."""

    recipe: Recipe
    spelled: str  # the recipe as the config names it
    target: str  # a concrete target name ("host" resolved)

    @property
    def id(self) -> str:
        """``RECIPE:TARGET``, what ``--cell`` takes."""
        return f"{self.spelled}:{self.target}"

    @property
    def slug(self) -> str:
        """A name fit for a file or a CI artifact: ``tflite-linux-aarch64``."""
        return f"{self.recipe.name}-{self.target}"


@dataclass(frozen=True)
class Package:
    """A project directory whose sdist (and, for a pure package, wheel) the release holds."""

    directory: Path
    name: str  # [project] name
    backend: str

    @property
    def binary(self) -> bool:
        """Built by edgeforge's backend: its wheels come from the matrix, only its sdist here."""
        return self.backend == EDGEFORGE_BACKEND


@dataclass(frozen=True)
class ReleaseConfig:
    path: Path
    cells: tuple[Cell, ...]
    packages: tuple[Package, ...]
    smoke: bool = True

    def cell(self, cell_id: str) -> Cell:
        """The cell ``--cell RECIPE:TARGET`` names; "host" stands for this machine's target."""
        recipe, sep, target = cell_id.rpartition(":")
        if not sep or not recipe or not target:
            raise ConfigError(f"--cell {cell_id!r}: write RECIPE:TARGET, e.g. tflite:linux-aarch64")
        if target == "host":
            target = host_target_name()
        for cell in self.cells:
            if target == cell.target and recipe in (cell.spelled, cell.recipe.name):
                return cell
        raise ConfigError(f"--cell {cell_id!r} is not in the matrix; its cells: "
                          f"{', '.join(c.id for c in self.cells)}", path=self.path)


def _recipe(t: tomlfile.Table, key: str, spelled: str, base: Path,
            directories: Sequence[Path]) -> Recipe:
    name = str(base / spelled) if spelled.endswith(".toml") else spelled
    try:
        return resolve_recipe(name, directories)
    except ConfigError as err:
        raise t.error(key, f"recipe {spelled!r}: {err}") from None


def _project(t: tomlfile.Table, key: str, spelled: str, base: Path) -> Package:
    directory = (base / spelled).resolve()
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        raise t.error(key, f"{directory} has no pyproject.toml")
    doc = tomlfile.Table(tomlfile.load(pyproject), pyproject)
    name = doc.table("project", required=True).str("name", required=True)
    backend = doc.table("build-system").str("build-backend", "setuptools.build_meta:__legacy__")
    return Package(directory=directory, name=name, backend=backend)


def load_release_config(path: Path, recipe_dirs: Sequence[Path],
                        toolchain_dirs: Sequence[Path]) -> ReleaseConfig:
    path = path.resolve()
    doc = tomlfile.Table(tomlfile.load(path), path)
    base = path.parent
    settings = doc.table("release")
    smoke = settings.bool("smoke", True)
    settings.reject_unknown()

    known_targets = available_targets(toolchain_dirs)
    cells: list[Cell] = []
    seen: dict[tuple[str, str], str] = {}
    for m in doc.tables("matrix"):
        recipes = m.str_list("recipes", required=True)
        targets = m.str_list("targets", required=True)
        m.reject_unknown()
        for key, values in (("recipes", recipes), ("targets", targets)):
            if not values:
                raise m.error(key, "needs at least one entry")
        resolved = [_recipe(m, f"recipes[{i}]", r, base, recipe_dirs)
                    for i, r in enumerate(recipes)]
        for i, target in enumerate(targets):
            name = host_target_name() if target == "host" else target
            if name not in known_targets:
                raise m.error(f"targets[{i}]", f"unknown target {target!r}; known: "
                              f"{', '.join(known_targets)} (or \"host\")")
            for spelled, recipe in zip(recipes, resolved, strict=True):
                where = f"{m.prefix}: {spelled} x {target}"
                if (recipe.name, name) in seen:
                    raise m.error(f"targets[{i}]", f"{recipe.name} for {name} is listed twice "
                                  f"({seen[recipe.name, name]} and {where})")
                seen[recipe.name, name] = where
                cells.append(Cell(recipe=recipe, spelled=spelled, target=name))

    pk = doc.table("packages")
    projects = pk.str_list("projects")
    pk.reject_unknown()
    packages = [_project(pk, f"projects[{i}]", p, base) for i, p in enumerate(projects)]
    dirs = [p.directory for p in packages]
    for i, d in enumerate(dirs):
        if dirs.index(d) != i:
            raise pk.error(f"projects[{i}]", f"{d} is listed twice")
    doc.reject_unknown()
    if not cells and not packages:
        raise ConfigError("the release is empty: add a [[matrix]] table or [packages] projects",
                          path=path)
    return ReleaseConfig(path=path, cells=tuple(cells), packages=tuple(packages), smoke=smoke)
