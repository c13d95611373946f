"""Where Debian's archive is: read from the machine's apt sources, the way apt-get source does.

No mirror host is written into edgeforge: the archive URI comes from
``/etc/apt/sources.list.d/*.sources`` (deb822), ``*.list`` and ``/etc/apt/sources.list``,
or from ``EDGEFORGE_DEBIAN_MIRROR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

MIRROR_ENV = "EDGEFORGE_DEBIAN_MIRROR"
_SUITE_SUFFIXES = ("-security", "-updates", "-backports", "-proposed-updates")


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
            continue
        if line.startswith("#") or line[0].isspace() or ":" not in line:
            continue
        key, _, value = line.partition(":")
        current[key.strip().lower()] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _candidates(etc_apt: Path) -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of every enabled ``deb`` entry."""
    found: list[tuple[str, list[str], list[str]]] = []
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        for st in _deb822_stanzas(path.read_text(errors="replace")):
            if "deb" not in st.get("types", "").split() or st.get("enabled", "yes") == "no":
                continue
            for uri in st.get("uris", "").split():
                found.append((uri, st.get("suites", "").split(), st.get("components", "").split()))
    lists = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) < 3 or words[0] != "deb":
                continue
            words = [w for w in words[1:] if not w.startswith("[")]  # drop [options]
            if len(words) >= 2:
                found.append((words[0], [words[1]], words[2:]))
    return found


def archive_uri(etc_apt: Path = Path("/etc/apt"), environ: Mapping[str, str] | None = None) -> str:
    """The URI of the main Debian archive (the one whose suites are plain release names)."""
    env = os.environ if environ is None else environ
    if env.get(MIRROR_ENV):
        return env[MIRROR_ENV].rstrip("/")
    for uri, suites, components in _candidates(etc_apt):
        plain = [s for s in suites if not s.endswith(_SUITE_SUFFIXES) and "/" not in s]
        if plain and "main" in components:
            return uri.rstrip("/")
    raise ConfigError(
        f"no Debian archive found in {etc_apt}/sources.list(.d): add a `deb` entry for Debian's "
        f"archive, or set {MIRROR_ENV} to the archive's URI"
    )


def pool_url(pool_path: str, etc_apt: Path = Path("/etc/apt"),
             environ: Mapping[str, str] | None = None) -> str:
    """``t/tensorflow/tensorflow_2.14.1+dfsg.orig.tar.xz`` -> URL under the archive's pool/main."""
    return f"{archive_uri(etc_apt, environ)}/pool/main/{pool_path}"
