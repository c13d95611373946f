"""A PEP 503 simple repository over a release directory's distribution files.

``simple/index.html`` links every project; ``simple/<normalized-name>/index.html`` links its
files as ``../../<file>#sha256=<hex>`` with ``data-requires-python`` (PEP 503/345, HTML
escaped). The links are relative, so the same tree works as ``pip install --index-url
file:///.../simple`` and behind any static HTTP server, wherever the directory is moved.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from .fsutil import atomic_write_text
from .release_manifest import Artifact

SIMPLE = "simple"
_HEAD = ('<!DOCTYPE html>\n<html>\n<head>\n<meta name="pypi:repository-version" '
         'content="1.0">\n<title>{title}</title>\n</head>\n<body>\n')
_TAIL = "</body>\n</html>\n"


def _page(title: str, links: Iterable[str]) -> str:
    return _HEAD.format(title=html.escape(title)) + "".join(links) + _TAIL


def index_pages(artifacts: Iterable[Artifact]) -> dict[str, str]:
    """Relative path (under the release directory) -> page text."""
    projects: dict[str, list[Artifact]] = {}
    for a in artifacts:
        projects.setdefault(a.distribution, []).append(a)
    pages = {f"{SIMPLE}/index.html": _page("Simple index", (
        f'<a href="{html.escape(name)}/">{html.escape(name)}</a><br>\n'
        for name in sorted(projects)))}
    for name, files in sorted(projects.items()):
        links = []
        for a in sorted(files, key=lambda a: a.filename):
            attrs = f' href="../../{html.escape(a.filename)}#sha256={a.sha256}"'
            if a.requires_python:
                attrs += f' data-requires-python="{html.escape(a.requires_python)}"'
            links.append(f"<a{attrs}>{html.escape(a.filename)}</a><br>\n")
        pages[f"{SIMPLE}/{name}/index.html"] = _page(f"Links for {name}", links)
    return pages


def write_index(root: Path, artifacts: Iterable[Artifact]) -> list[Path]:
    written = []
    for rel, text in index_pages(artifacts).items():
        atomic_write_text(root / rel, text, 0o644)
        written.append(root / rel)
    return written
