"""Build settings, resolved once through one chain: an explicit value (a command-line flag, a
PEP 517 ``--config-settings`` key) wins over the environment, which wins over the default.

The CLI and the PEP 517 backend both call ``resolve_settings`` and both get the pipeline's
``BuildOptions`` from ``BuildSettings.build_options``, so a setting means the same thing, with
the same environment variable and the same error, wherever it is given.

==================  ==============================  ===========================================
key                 environment                     meaning
==================  ==============================  ===========================================
``cache-dir``       ``EDGEFORGE_CACHE``             downloads, sources, compiler cache, work dirs
                                                    (default: ``~/.cache/edgeforge``)
``jobs``            ``EDGEFORGE_JOBS``              parallel compile jobs (default: all cores)
``offline``         ``EDGEFORGE_OFFLINE``           1: use only the download cache
``recipe-path``     ``EDGEFORGE_RECIPE_PATH``       recipe directories, before the shipped ones
``toolchain-path``  ``EDGEFORGE_TOOLCHAIN_PATH``    toolchain directories, before the shipped
==================  ==============================  ===========================================

The backend adds ``compiler``, ``target`` and ``smoke`` (``edgeforge.backend``); the CLI has
its own flags for those.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .resources import RECIPE_PATH_ENV, TOOLCHAIN_PATH_ENV, SearchPath

if TYPE_CHECKING:
    from .pipeline import BuildOptions
    from .recipe import Recipe

# An explicit value: None means "not given" (the environment decides). Config settings are
# strings (or lists of strings, when a key is repeated); CLI values keep their own types.
Explicit = Mapping[str, object]

ENV = {
    "cache-dir": "EDGEFORGE_CACHE",
    "jobs": "EDGEFORGE_JOBS",
    "offline": "EDGEFORGE_OFFLINE",
    "recipe-path": RECIPE_PATH_ENV,
    "toolchain-path": TOOLCHAIN_PATH_ENV,
}


def lookup(explicit: Explicit, key: str, env_name: str, environ: Mapping[str, str]) -> object:
    """The explicit value of ``key`` if given, else ``$env_name`` (an empty variable counts as
    unset), else None. A repeated string setting counts by its last value."""
    value = explicit.get(key)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = value[-1]
    if value is not None and value != []:
        return value
    return environ.get(env_name) or None


def as_flag(value: object, key: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{key}={value!r}: use 1/0, true/false, yes/no or on/off")


def as_jobs(value: object, key: str = "jobs") -> int | None:
    if value is None:
        return None
    try:
        jobs = int(str(value))
    except ValueError:
        raise ConfigError(f"{key}={value!r}: give a whole number of compile jobs") from None
    if jobs < 1:
        raise ConfigError(f"{key}={jobs}: give at least 1")
    return jobs


def _dirs(value: object) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        value = [value]
    assert isinstance(value, Sequence)
    return [Path(p).expanduser() for v in value for p in str(v).split(os.pathsep) if p]


@dataclass(frozen=True)
class BuildSettings:
    """What every build needs to know, whoever started it."""

    cache_dir: Path
    search: SearchPath
    jobs: int | None = None
    offline: bool = False

    def build_options(self, recipe: Recipe, dist_dir: Path, *, smoke: bool,
                      reference: bool = True, work_dir: Path | None = None) -> BuildOptions:
        from .lock import read_lock
        from .pipeline import BuildOptions

        return BuildOptions(cache_dir=self.cache_dir, dist_dir=dist_dir, work_dir=work_dir,
                            offline=self.offline, jobs=self.jobs, smoke=smoke,
                            reference=reference, locked=read_lock(recipe))


def resolve_settings(explicit: Explicit | None = None, environ: Mapping[str, str] | None = None,
                     toolchain_dirs: Sequence[Path] = ()) -> BuildSettings:
    """Resolve the settings in ``ENV`` from explicit values and the environment.

    ``toolchain_dirs`` go first on the toolchain search path (a project's own directory);
    explicit ``recipe-path``/``toolchain-path`` directories come before the environment's,
    which come before the shipped ones."""
    from .fetch import default_cache_dir

    given = dict(explicit or {})
    env = os.environ if environ is None else environ
    cache = lookup(given, "cache-dir", ENV["cache-dir"], env)
    cache_dir = Path(str(cache)).expanduser() if cache is not None else default_cache_dir(env)
    search = SearchPath.build(_dirs(given.get("recipe-path")),
                              [*toolchain_dirs, *_dirs(given.get("toolchain-path"))],
                              environ=env)
    return BuildSettings(
        cache_dir=cache_dir.resolve(), search=search,
        jobs=as_jobs(lookup(given, "jobs", ENV["jobs"], env)),
        offline=as_flag(lookup(given, "offline", ENV["offline"], env), "offline"),
    )
