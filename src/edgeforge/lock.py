"""Lock files: sha256s that ``edgeforge lock`` recorded for a recipe's unpinned URLs.

``recipes/NAME.lock.toml`` sits beside ``recipes/NAME.toml``. A maintainer (or the release
job) with network access runs ``edgeforge lock NAME``; builds then use the recorded hashes.

``edgeforge lock --tree NAME`` computes every source's tree hash from each location it can
fetch, says where locations disagree, and prints the ``tree = ...`` lines to put in the
recipe (a tree is a pin the maintainer reviews, so it is not written behind their back).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import fetch, tomlfile
from .errors import ConfigError
from .fsutil import atomic_write_text
from .log import Logger
from .recipe import Recipe, Source


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
    atomic_write_text(path, "\n".join(lines) + "\n")
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


@dataclass(frozen=True)
class TreeReport:
    source: str
    trees: dict[str, str]  # location display -> its tree hash
    failures: dict[str, str]  # location display -> why it could not be fetched

    @property
    def agreed(self) -> str | None:
        values = set(self.trees.values())
        return values.pop() if len(values) == 1 else None


def source_trees(source: Source, opts: fetch.FetchOptions, logger: Logger) -> TreeReport:
    """The tree hash each location of ``source`` extracts to (before patches)."""
    trees: dict[str, str] = {}
    failures: dict[str, str] = {}
    unpinned = dataclasses.replace(source, tree=None)  # fetch without the pin
    for location in source.locations:
        try:
            archive = fetch.fetch_location(unpinned, location, opts, logger)
        except Exception as err:  # reported, as `edgeforge lock` reports unfetchable URLs
            failures[location.display] = str(err)
            continue
        scratch = Path(tempfile.mkdtemp(prefix=f"edgeforge-tree-{source.name}."))
        try:
            trees[location.display] = fetch.extracted_tree_hash(source, archive, location,
                                                                scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return TreeReport(source.name, trees, failures)


def lock_trees(recipe: Recipe, cache_dir: Path, logger: Logger) -> list[TreeReport]:
    opts = fetch.FetchOptions(cache_dir=cache_dir, allow_unpinned=True,
                              locked=read_lock(recipe))
    return [source_trees(s, opts, logger) for s in recipe.sources if s.extract]


def format_tree_reports(reports: list[TreeReport]) -> str:
    lines = []
    for r in reports:
        agreed = r.agreed
        if agreed is not None:
            lines.append(f"[{r.source}] tree = \"{agreed}\"")
        elif not r.trees:
            lines.append(f"[{r.source}] no location could be fetched")
        else:
            lines.append(f"[{r.source}] locations DISAGREE:")
        if agreed is None:
            lines += [f"    {tree}  {url}" for url, tree in r.trees.items()]
        lines += [f"    unreachable: {url}: {why.splitlines()[0]}"
                  for url, why in r.failures.items()]
    return "\n".join(lines)
