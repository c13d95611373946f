"""Run a Windows x86_64 program under Debian's wine64, in a wine prefix kept in the cache.

The prefix (``<cache>/wine/prefix``, made by wine on first use in a few seconds) is used by
one program at a time (a lock): wine's first start fills it in, and a half-made prefix must
not be seen by a second run.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import MissingToolError
from ..fsutil import file_lock
from ..log import Logger

# Debian's wine64 package installs its loader here, and /usr/bin/wine64 only with `wine`.
_DEBIAN_WINE64 = Path("/usr/lib/wine/wine64")


def wine_command() -> list[str]:
    found = shutil.which("wine64") or (str(_DEBIAN_WINE64) if _DEBIAN_WINE64.is_file()
                                       else None)
    if found is None:
        raise MissingToolError("wine64 is missing: the windows-x86_64 smoke runs its C driver "
                               "under wine. Install it with: apt-get install wine64")
    return [found]


def wine_version() -> str:
    proc = subprocess.run([*wine_command(), "--version"], capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip() or "wine (version unknown)"


def run_under_wine(argv: Sequence[str], cache_dir: Path, logger: Logger, *,
                   env: Mapping[str, str] | None = None, cwd: Path | None = None,
                   timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    """``argv[0]`` (a .exe; its DLLs beside it) under wine64, with a clean environment plus
    ``env``; wine's own chatter off (WINEDEBUG=-all), no Mono/Gecko installers."""
    home = cache_dir / "wine"
    home.mkdir(parents=True, exist_ok=True)
    full_env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "WINEPREFIX": str(home / "prefix"),
                "WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml=", **(env or {})}
    with file_lock(home / "prefix.lock", "the wine prefix", logger.info):
        return subprocess.run([*wine_command(), *argv], capture_output=True, text=True,
                              env=full_env, cwd=cwd, timeout=timeout, check=False)
