"""``edgeforge sources check``: does every URL of every source still answer?

Each location is asked without downloading it: a HEAD request, or a ranged GET of one byte
where HEAD is refused (405/501/403). A PyPI location is asked through pip, the only client
edgeforge uses for PyPI: ``pip index versions NAME --platform ... --python-version ...`` reads
the project's index page (about 120 KB for mediapipe) and says whether the pinned version has
a file for that platform. (``pip download`` or ``pip install --dry-run`` would fetch the whole
35.7 MB wheel; measured.) Its size and sha256 are not checked here: the fetch checks the sha256.
Debian pool files are asked on the archive the machine's apt sources name (edgeforge.debian).

The report is one row per URL: source, URL (the recipe's display form), status, size, and
whether it is the *last* reachable URL of its source (if it goes, the source is gone). A source
with no reachable URL makes the command fail.
"""

from __future__ import annotations

import concurrent.futures
import email.message
import http.client
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import FetchError
from .recipe import Location, Recipe

TIMEOUT = 20.0
_HEAD_REFUSED = {403, 405, 501}


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: str  # "200", "206 (ranged GET)", "HTTP 404", "unreachable: ...", "pip: ..."
    size: int | None = None


@dataclass(frozen=True)
class Row:
    recipe: str
    source: str
    url: str
    answer: Answer
    last: bool  # the only reachable URL of its source


def _request(url: str, method: str, headers: dict[str, str], timeout: float
             ) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, method=method,
                                     headers={"User-Agent": "edgeforge", **headers})
    response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=timeout)
    return response


def _size_of(headers: email.message.Message, status: int) -> int | None:
    if status == 206:
        total = headers.get("Content-Range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def ask_url(url: str, timeout: float = TIMEOUT) -> Answer:
    """HEAD ``url``; where HEAD is refused, a ranged GET of its first byte."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        if path.is_file():
            return Answer(True, "exists", path.stat().st_size)
        return Answer(False, "missing file")
    try:
        with _request(url, "HEAD", {}, timeout) as response:
            return Answer(True, str(response.status), _size_of(response.headers,
                                                               response.status))
    except urllib.error.HTTPError as err:
        if err.code not in _HEAD_REFUSED:
            return Answer(False, f"HTTP {err.code}")
    except (urllib.error.URLError, OSError, ValueError) as err:
        return Answer(False, f"unreachable: {getattr(err, 'reason', err)}")
    try:  # HEAD refused: one byte by a ranged GET (the body is not read further)
        with _request(url, "GET", {"Range": "bytes=0-0"}, timeout) as response:
            return Answer(True, f"{response.status} (ranged GET)",
                          _size_of(response.headers, response.status))
    except urllib.error.HTTPError as err:
        return Answer(False, f"HTTP {err.code}")
    except (urllib.error.URLError, OSError, ValueError) as err:
        return Answer(False, f"unreachable: {getattr(err, 'reason', err)}")


def ask_pypi(location: Location, timeout: float = 120.0) -> Answer:
    """Ask pip's index whether the pinned version has a file for the location's platform and
    Python (``pip index versions``: the project's index page only, no file downloaded)."""
    name, _, version = (location.pypi or "").partition("==")
    argv = [sys.executable, "-m", "pip", "index", "versions", name,
            "--disable-pip-version-check"]
    if location.pypi_platform:
        argv += ["--only-binary=:all:", "--platform", location.pypi_platform]
    if location.pypi_python:
        argv += ["--python-version", location.pypi_python]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                check=False)
    except subprocess.TimeoutExpired:
        return Answer(False, f"pip: no answer in {timeout:.0f}s")
    listed = [line.partition(":")[2].replace(",", " ").split()
              for line in result.stdout.splitlines() if line.startswith("Available versions:")]
    if result.returncode != 0 or not listed:
        tail = (result.stderr.strip().splitlines() or ["no versions"])[-1]
        return Answer(False, f"pip: {tail[:120]}")
    if version and version not in listed[0]:
        return Answer(False, f"pip: {version} is not listed for this platform")
    return Answer(True, f"pip: {version or name} listed")


def ask(location: Location) -> Answer:
    if location.pypi:
        return ask_pypi(location)
    from .fetch import resolve_url  # fetch imports recipe; keep this module light to import
    try:
        url = resolve_url(location)
    except FetchError as err:
        return Answer(False, str(err))
    return ask_url(url)


def check_recipes(recipes: Sequence[Recipe], workers: int = 8) -> list[Row]:
    jobs = [(r, s, loc) for r in recipes for s in r.sources for loc in s.locations]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        answers = list(pool.map(lambda job: ask(job[2]), jobs))
    rows = []
    for (recipe, source, location), answer in zip(jobs, answers, strict=True):
        reachable = [a for (r, s, _), a in zip(jobs, answers, strict=True)
                     if r is recipe and s is source and a.ok]
        rows.append(Row(recipe.name, source.name, location.display, answer,
                        last=answer.ok and len(reachable) == 1))
    return rows


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def format_table(rows: Sequence[Row]) -> str:
    header = ("recipe", "source", "url", "status", "size", "last")
    table = [header] + [(r.recipe, r.source, r.url, r.answer.status, _size(r.answer.size),
                         "LAST" if r.last else "") for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in table)


def unreachable_sources(rows: Sequence[Row]) -> list[str]:
    seen: dict[tuple[str, str], bool] = {}
    for r in rows:
        seen[(r.recipe, r.source)] = seen.get((r.recipe, r.source), False) or r.answer.ok
    return [f"{recipe}:{source}" for (recipe, source), ok in seen.items() if not ok]


def check_command(recipes: Sequence[Recipe]) -> int:
    """Print the table; fail (FetchError) when a source has no reachable URL."""
    rows = check_recipes(recipes)
    print(format_table(rows))
    dead = unreachable_sources(rows)
    if dead:
        raise FetchError(f"no reachable URL for {len(dead)} source(s): {', '.join(dead)}; add "
                         "a mirror (a Debian stable pool file if one carries the same tree)")
    print(f"every source of {len(recipes)} recipe(s) has a reachable URL")
    return 0

