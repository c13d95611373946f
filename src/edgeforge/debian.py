"""Where Debian's archive is: read from the machine's apt sources, the way apt-get source does.

No mirror host is written into edgeforge: the archive URI comes from
``/etc/apt/sources.list.d/*.sources`` (deb822), ``*.list`` and ``/etc/apt/sources.list``,
or from ``EDGEFORGE_DEBIAN_MIRROR``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from .errors import FetchError

MIRROR_ENV = "EDGEFORGE_DEBIAN_MIRROR"
_SUITE_SUFFIXES = ("-security", "-updates", "-backports", "-proposed-updates")


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
            continue
        if line.startswith("#"):
            continue
        if line[0].isspace() and last:  # a continuation line
            current[last] += " " + line.strip()
            continue
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        last = key.strip().lower()
        current[last] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _one_line_entries(path: Path) -> list[tuple[str, list[str], list[str]]]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()  # no [options]
        if len(words) >= 3 and words[0] == "deb":
            found.append((words[1], [words[2]], words[3:]))
    return found


def _deb822_entries(path: Path) -> list[tuple[str, list[str], list[str]]]:
    found = []
    for st in _deb822_stanzas(path.read_text(errors="replace")):
        if "deb" not in st.get("types", "").split() or st.get("enabled", "yes") == "no":
            continue
        for uri in st.get("uris", "").split():
            found.append((uri, st.get("suites", "").split(), st.get("components", "").split()))
    return found


def _candidates(etc_apt: Path) -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of every enabled ``deb`` entry, in apt's reading order."""
    found = []
    if (etc_apt / "sources.list").is_file():
        found += _one_line_entries(etc_apt / "sources.list")
    for path in sorted((etc_apt / "sources.list.d").glob("*")):
        if path.suffix == ".list":
            found += _one_line_entries(path)
        elif path.suffix == ".sources":
            found += _deb822_entries(path)
    return found


def archive_uri(etc_apt: Path = Path("/etc/apt"), environ: Mapping[str, str] | None = None) -> str:
    """The URI of the main Debian archive (the one whose suites are plain release names)."""
    env = os.environ if environ is None else environ
    if env.get(MIRROR_ENV):
        return env[MIRROR_ENV].rstrip("/")
    for uri, suites, components in _candidates(etc_apt):
        if uri.split(":", 1)[0] not in ("http", "https", "file"):
            continue
        plain = [s for s in suites if not s.endswith(_SUITE_SUFFIXES) and "/" not in s]
        if plain and "main" in components:
            return uri.rstrip("/")
    raise FetchError(
        f"no Debian archive found in {etc_apt}/sources.list(.d): add a `deb` entry for Debian's "
        f"archive, or set {MIRROR_ENV} to the archive's URI"
    )


def pool_url(pool_path: str, etc_apt: Path = Path("/etc/apt"),
             environ: Mapping[str, str] | None = None) -> str:
    """``t/tensorflow/tensorflow_2.14.1+dfsg.orig.tar.xz`` -> URL under the archive's pool/main."""
    return f"{archive_uri(etc_apt, environ)}/pool/main/{pool_path}"
