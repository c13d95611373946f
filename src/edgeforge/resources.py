"""Where recipes and toolchains are found: the user's search path first, then the shipped ones.

The shipped recipes and toolchains are package data of ``edgeforge`` (``edgeforge/recipes``,
``edgeforge/toolchains``), so an installed wheel finds them wherever it is run from. A user's
own directories come first, from ``--recipe-path``/``--toolchain-path`` and then from
``EDGEFORGE_RECIPE_PATH``/``EDGEFORGE_TOOLCHAIN_PATH`` (``os.pathsep``-separated, like PATH).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

RECIPE_PATH_ENV = "EDGEFORGE_RECIPE_PATH"
TOOLCHAIN_PATH_ENV = "EDGEFORGE_TOOLCHAIN_PATH"


def shipped(name: str) -> Path:
    """A directory of edgeforge's package data (pip always installs packages unpacked)."""
    return Path(str(files("edgeforge") / name))


SHIPPED_RECIPES = shipped("recipes")
SHIPPED_TOOLCHAINS = shipped("toolchains")


def _env_dirs(value: str | None) -> list[Path]:
    return [Path(p).expanduser() for p in (value or "").split(os.pathsep) if p]


@dataclass(frozen=True)
class SearchPath:
    """Directories searched in order for ``NAME.toml``; the shipped directory is last."""

    recipes: tuple[Path, ...]
    toolchains: tuple[Path, ...]

    @classmethod
    def build(cls, recipe_dirs: Iterable[Path] = (), toolchain_dirs: Iterable[Path] = (),
              environ: Mapping[str, str] | None = None) -> SearchPath:
        env = os.environ if environ is None else environ
        recipes = [*recipe_dirs, *_env_dirs(env.get(RECIPE_PATH_ENV)), SHIPPED_RECIPES]
        toolchains = [*toolchain_dirs, *_env_dirs(env.get(TOOLCHAIN_PATH_ENV)),
                      SHIPPED_TOOLCHAINS]
        return cls(recipes=tuple(p.resolve() for p in recipes),
                   toolchains=tuple(p.resolve() for p in toolchains))


def find_toml(directories: Iterable[Path], name: str) -> Path | None:
    for d in directories:
        candidate = d / f"{name}.toml"
        if candidate.is_file():
            return candidate
    return None


def list_toml(directories: Iterable[Path], skip_suffix: str = ".lock") -> dict[str, Path]:
    """name -> file; an earlier directory's file shadows a later one of the same name."""
    found: dict[str, Path] = {}
    for d in directories:
        for p in sorted(d.glob("*.toml")):
            if p.stem.endswith(skip_suffix):
                continue
            found.setdefault(p.stem, p)
    return dict(sorted(found.items()))
