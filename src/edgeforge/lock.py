"""Lock files: sha256s that ``edgeforge lock`` recorded for a recipe's unpinned URLs.

``recipes/NAME.lock.toml`` sits beside ``recipes/NAME.toml``. A maintainer (or the release
job) with network access runs ``edgeforge lock NAME``; builds then use the recorded hashes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import fetch, tomlfile
from .errors import ConfigError
from .log import Logger
from .recipe import Recipe


def lock_path(recipe: Recipe) -> Path:
    return recipe.path.with_suffix(".lock.toml")


def read_lock(recipe: Recipe) -> dict[str, str]:
    path = lock_path(recipe)
    if not path.is_file():
        return {}
    table = tomlfile.Table(tomlfile.load(path), path)
    hashes = table.str_map("sha256")
    table.reject_unknown()
    return hashes


def write_lock(recipe: Recipe, hashes: dict[str, str]) -> Path:
    path = lock_path(recipe)
    lines = [f"# sha256 of the unpinned URLs of {recipe.path.name}, written by `edgeforge lock`",
             "[sha256]"]
    lines += [f"{json.dumps(url)} = {json.dumps(sha)}" for url, sha in sorted(hashes.items())]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def lock_recipe(recipe: Recipe, cache_dir: Path, logger: Logger) -> Path:
    """Download every unpinned location, record its sha256; fails if one cannot be fetched."""
    hashes = read_lock(recipe)
    opts = fetch.FetchOptions(cache_dir=cache_dir, allow_unpinned=True)
    failures = []
    for source in recipe.sources:
        for location in source.locations:
            if location.sha256 is not None:
                continue
            try:
                path = fetch.download(location, None, opts, logger)
            except Exception as err:
                failures.append(f"{location.display}: {err}")
                continue
            hashes[location.display] = path.parent.name
            logger.info(f"locked {location.display} = {path.parent.name}")
    if failures:
        raise ConfigError("could not lock every unpinned URL:\n" +
                          "\n".join(f"  - {f}" for f in failures), path=recipe.path)
    return write_lock(recipe, hashes)
