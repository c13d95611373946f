"""Support for the fetch tests: small tarballs, and a real HTTP server on 127.0.0.1 that serves
a directory, honours single byte ranges (``Range: bytes=a-b``, ``a-``, ``-n``) unless told to
ignore them, answers HEAD, and records every request with the bytes of body it sent."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import re
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def tarball(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None,
            modes: dict[str, int] | None = None) -> str:
    """A .tar.gz of ``members`` (mode 644 unless ``modes`` says) and symlinks; its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = (modes or {}).get(name, 0o644)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return hashlib.sha256(path.read_bytes()).hexdigest()


_RECIPE_REST = """
[build]
system = "cmake"
[build.cmake]
source = "{first}"

[[stage]]
from = "{{build}}/libdemo.so"
to = "lib/"

[wheel]
distribution = "demo-lib"
package = "demo_lib"
"""


def recipe_text(sources: str) -> str:
    """A minimal recipe around ``sources`` (its ``[[sources]]`` tables, TOML text)."""
    first = re.search(r'name = "([^"]+)"', sources)
    assert first is not None
    return ('[package]\nname = "demo"\nversion = "1.0"\n\n' + sources +
            _RECIPE_REST.format(first=first.group(1)))


@dataclass
class Served:
    root: Path
    ignore_range: bool = False
    refuse_head: bool = False
    throttle: float = 0.0  # seconds to spread each body over (a slow mirror)
    requests: list[tuple[str, str, str | None, int]] = field(default_factory=list)
    url: str = ""

    @property
    def body_bytes(self) -> int:
        return sum(r[3] for r in self.requests)


def _span(spec: str, size: int) -> tuple[int, int] | None:
    unit, _, ranges = spec.partition("=")
    if unit.strip() != "bytes" or "," in ranges:
        return None
    first, _, last = ranges.strip().partition("-")
    if not first:
        n = int(last)
        return max(0, size - n), size - 1
    end = int(last) if last else size - 1
    return int(first), min(end, size - 1)


def _handler(served: Served) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _serve(self, body: bool) -> None:
            path = served.root / self.path.lstrip("/").split("?")[0]
            if path.is_dir():  # a PEP 503 project page
                path = path / "index.html"
            spec = self.headers.get("Range")
            if not path.is_file():
                served.requests.append((self.command, self.path, spec, 0))
                self.send_error(404)
                return
            data = path.read_bytes()
            span = None if served.ignore_range or not spec else _span(spec, len(data))
            if span is None:
                self.send_response(200)
                part = data
            else:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {span[0]}-{span[1]}/{len(data)}")
                part = data[span[0]:span[1] + 1]
            self.send_header("Content-Length", str(len(part)))
            if path.suffix == ".html":
                self.send_header("Content-Type", "text/html")
            if not served.ignore_range:
                self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            sent = 0
            if body:
                try:
                    step = max(1, len(part) // 20)
                    for i in range(0, len(part), step):
                        self.wfile.write(part[i:i + step])
                        sent += len(part[i:i + step])
                        if served.throttle:
                            time.sleep(served.throttle / 20)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            served.requests.append((self.command, self.path, spec, sent))

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            if served.refuse_head:
                served.requests.append((self.command, self.path, None, 0))
                self.send_error(405)
                return
            self._serve(body=False)

    return Handler


@contextlib.contextmanager
def serve(root: Path, *, ignore_range: bool = False, refuse_head: bool = False,
          throttle: float = 0.0) -> Iterator[Served]:
    served = Served(root, ignore_range=ignore_range, refuse_head=refuse_head,
                    throttle=throttle)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
