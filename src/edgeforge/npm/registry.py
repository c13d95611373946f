"""A read-only npm registry over a directory of package tarballs, on 127.0.0.1.

``npm install --registry http://127.0.0.1:PORT/`` then resolves every package (and its
optional platform packages, filtered by their ``os``/``cpu``/``libc`` fields) the way it does
against the public registry, from local files only: for tests, for boards on a LAN-less bench,
for trying a release before publishing it. Only what ``npm install`` asks is answered:
``GET /<name>`` (``/@scope%2fname`` for scoped names) gives the packument (every version's
``package.json`` plus ``dist.tarball``, ``dist.integrity`` and ``dist.shasum``), and
``GET /-/<file>.tgz`` the tarball. Anything else is a 404, which npm treats as "no such
package" (an optional dependency for which there is none is skipped).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..errors import ReleaseError


@dataclass(frozen=True)
class Tarball:
    path: Path
    manifest: dict[str, Any]  # its package/package.json
    integrity: str  # "sha512-<base64>"
    shasum: str  # sha1 hex

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def read_tarball(path: Path) -> Tarball:
    data = path.read_bytes()
    with tarfile.open(path, "r:gz") as tar:
        member = tar.extractfile("package/package.json")
        if member is None:
            raise ReleaseError(f"{path} is not an npm package: no package/package.json")
        manifest = json.load(member)
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    return Tarball(path, manifest, f"sha512-{digest}", hashlib.sha1(data).hexdigest())


def packuments(tarballs: Iterable[Tarball], base_url: str) -> dict[str, dict[str, Any]]:
    """Package name -> its packument (the newest version is ``latest``)."""
    by_name: dict[str, list[Tarball]] = {}
    for t in tarballs:
        by_name.setdefault(t.name, []).append(t)
    out: dict[str, dict[str, Any]] = {}
    for name, versions in by_name.items():
        entries = {}
        for t in versions:
            entries[t.version] = {**t.manifest, "_id": f"{name}@{t.version}", "dist": {
                "tarball": f"{base_url}/-/{t.path.name}", "integrity": t.integrity,
                "shasum": t.shasum}}
        latest = max(versions, key=lambda t: tuple(
            int(p) if p.isdigit() else 0 for p in t.version.split("-")[0].split(".")))
        out[name] = {"name": name, "dist-tags": {"latest": latest.version},
                     "versions": entries}
    return out


@dataclass(frozen=True)
class Registry:
    url: str  # "http://127.0.0.1:PORT"
    names: tuple[str, ...]
    requests: list[str]  # the paths asked, in order (what npm fetched)


@contextmanager
def serve(directories: Iterable[Path]) -> Iterator[Registry]:
    """Serve every ``*.tgz`` under ``directories`` until the ``with`` block ends."""
    tarballs = [read_tarball(p) for d in directories for p in sorted(Path(d).glob("*.tgz"))]
    files = {t.path.name: t.path for t in tarballs}
    requests: list[str] = []
    docs: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            path = unquote(self.path.split("?", 1)[0]).lstrip("/")
            if path.startswith("-/") and path[2:] in files:
                body, kind = files[path[2:]].read_bytes(), "application/octet-stream"
            elif path in docs:
                body, kind = docs[path], "application/json"
            else:
                self.send_error(404, f"no package {path!r} here")
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    for name, doc in packuments(tarballs, url).items():
        docs[name] = json.dumps(doc).encode()
    thread = threading.Thread(target=server.serve_forever, name="npm-registry", daemon=True)
    thread.start()
    try:
        yield Registry(url, tuple(sorted(docs)), requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Installed:
    project: Path
    output: str  # npm's stdout and stderr
    requests: tuple[str, ...]  # what npm asked the registry, in order
    seconds: float  # npm install's wall time


def install(project: Path, specs: Sequence[str], directories: Iterable[Path],
            extra: Sequence[str] = (), npm: str = "npm",
            env: Mapping[str, str] | None = None) -> Installed:
    """``npm install SPECS`` into a new project at ``project`` from a registry serving the
    tarballs of ``directories`` only, with npm's cache beside the project (nothing of the
    user's cache or registry configuration is read)."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "package.json").write_text(json.dumps(
        {"name": "edgeforge-npm-install", "version": "1.0.0", "private": True}))
    with serve(directories) as registry:
        started = time.monotonic()
        proc = subprocess.run(
            [npm, "install", "--registry", f"{registry.url}/", "--userconfig",
             str(project.parent / f"{project.name}.npmrc"), "--cache",
             str(project.parent / f"{project.name}-npm-cache"), "--no-audit", "--no-fund",
             "--no-update-notifier", "--foreground-scripts", *extra, *specs],
            cwd=project, env=dict(env) if env is not None else None, capture_output=True,
            text=True, check=False)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise ReleaseError(f"npm install {' '.join(specs)} from {registry.url} failed "
                               f"({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        return Installed(project, proc.stdout + proc.stderr, tuple(registry.requests), seconds)
