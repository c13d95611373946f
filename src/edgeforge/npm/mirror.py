"""The npm dependencies of the generated packages (koffi and its prebuilt Linux binaries), as
tarballs in a directory: what ``registry.serve`` needs next to the generated packages to
install them with no other registry. ``ci/setup.sh`` fills it once (``npm pack``, through npm's
own registry configuration); the tests read it.

``python -m edgeforge.npm.mirror [DIR]`` (default ``<cache>/npm/deps``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import MissingToolError, ReleaseError
from ..fetch import default_cache_dir
from .generate import load_specs

READY = "READY"


def mirror_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "npm" / "deps"


def wanted() -> list[str]:
    """``name@version`` of every dependency packages.toml names."""
    return sorted({f"{n}@{v}" for s in load_specs().values() for n, v in s.dependencies.items()})


def is_ready(dest: Path) -> bool:
    marker = dest / READY
    return marker.is_file() and marker.read_text().split() == wanted()


def _pack(npm: str, specs: list[str], out: Path, cache: Path) -> list[Path]:
    proc = subprocess.run([npm, "pack", "--json", "--cache", str(cache), "--pack-destination",
                           str(out), *specs], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ReleaseError(f"npm pack {' '.join(specs)} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return [out / item["filename"] for item in json.loads(proc.stdout)]


def linux_platform_packages(tarball: Path) -> list[str]:
    """A package's optional dependencies for Linux (its prebuilt binaries, esbuild-style)."""
    with tarfile.open(tarball, "r:gz") as tar:
        member = tar.extractfile("package/package.json")
        assert member is not None
        manifest = json.load(member)
    return sorted(f"{n}@{v}" for n, v in manifest.get("optionalDependencies", {}).items()
                  if "-linux-" in n)


def fill(dest: Path) -> list[Path]:
    """``npm pack`` every dependency and its Linux binaries into ``dest`` (once)."""
    if is_ready(dest):
        return sorted(dest.glob("*.tgz"))
    npm = shutil.which("npm")
    if npm is None:
        raise MissingToolError("npm is not on PATH: install Node.js (with npm) first")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        out, cache = Path(tmp) / "out", Path(tmp) / "cache"
        out.mkdir()
        mains = _pack(npm, wanted(), out, cache)
        extra = [s for m in mains for s in linux_platform_packages(m)]
        files = [*mains, *(_pack(npm, extra, out, cache) if extra else [])]
        for f in files:
            f.replace(dest / f.name)
    (dest / READY).write_text("\n".join(wanted()) + "\n")
    return sorted(dest.glob("*.tgz"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else mirror_dir()
    for path in fill(target):
        print(path)
