"""What a release directory says about its files: ``manifest.json`` and ``SHA256SUMS``.

``manifest.json`` holds one entry per distribution file (wheel or sdist)::

    {"format": 1, "generator": "edgeforge 0.2.0", "files": {
      "tflite_edge_lib-2.14.1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": {
        "sha256": "...", "size": 4012345, "kind": "binary-wheel",
        "distribution": "tflite-edge-lib", "version": "2.14.1",
        "tags": ["py3-none-manylinux_2_17_x86_64", "py3-none-manylinux2014_x86_64"],
        "requires_python": ">=3.8",
        "build": {"recipe": "tflite", "target": "linux-x86_64",
                  "audit": {"policy": "manylinux_2_17_x86_64", "libc": "glibc",
                            "libc_floor": "2.17", "glibc_symbols": "2.17"},
                  "smoke": {"result": "passed", "runner": "...", "compared_with_host": true}}}}}

``kind`` is ``binary-wheel``, ``pure-wheel`` or ``sdist``; ``build`` is there for binary
wheels only (what the audit found and how the smoke test went). ``SHA256SUMS`` lists every
other file of the directory in ``sha256sum -c`` format and is written last.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import Parser
from pathlib import Path
from types import MappingProxyType
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from . import __version__
from .audit import AuditReport
from .errors import ReleaseError
from .fsutil import sha256_file
from .smoke.check import SmokeResult
from .wheel import read_wheel_metadata, read_wheel_tags

MANIFEST = "manifest.json"
SHA256SUMS = "SHA256SUMS"
FORMAT = 1
KINDS = ("binary-wheel", "pure-wheel", "sdist")
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (\S.*)$")
_POLICY = re.compile(r"^(many|musl)linux_(\d+)_(\d+)_")


def _no_build() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Artifact:
    """One distribution file of a release and what the manifest says about it."""

    filename: str
    sha256: str
    size: int
    kind: str
    distribution: str  # the canonical (PEP 503) name
    version: str
    tags: tuple[str, ...]  # a wheel's py-abi-platform tags; () for an sdist
    requires_python: str | None
    build: Mapping[str, Any] = field(default_factory=_no_build)  # binary wheels only

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sha256": self.sha256, "size": self.size, "kind": self.kind,
            "distribution": self.distribution, "version": self.version,
            "tags": list(self.tags), "requires_python": self.requires_python,
        }
        if self.build:
            out["build"] = json.loads(json.dumps(dict(self.build)))
        return out


def _sdist_metadata(path: Path) -> Message:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")]
            if len(members) != 1:
                raise ReleaseError(f"{path}: an sdist needs one top-level PKG-INFO, "
                                   f"found {len(members)}")
            data = tar.extractfile(members[0]).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ReleaseError(f"{path}: not a readable .tar.gz ({err})") from None
    return Parser().parsestr(data.decode("utf-8"))


def _version(text: str | None) -> Version | None:
    try:
        return Version(text or "")
    except InvalidVersion:
        return None


def describe(path: Path, build: Mapping[str, Any] | None = None) -> Artifact:
    """Read a wheel's or sdist's name, version, tags and Requires-Python from the file."""
    name = path.name
    try:
        if name.endswith(".whl"):
            dist, version, _, _ = parse_wheel_filename(name)
            tags = tuple(read_wheel_tags(path))
            meta = read_wheel_metadata(path)
            kind = "pure-wheel" if all(t.endswith("-any") for t in tags) else "binary-wheel"
        elif name.endswith(".tar.gz"):
            dist, version = parse_sdist_filename(name)
            tags, meta, kind = (), _sdist_metadata(path), "sdist"
        else:
            raise ReleaseError(f"{path}: not a wheel or an sdist (.whl, .tar.gz)")
    except (InvalidWheelFilename, InvalidSdistFilename) as err:
        raise ReleaseError(f"{path}: {err}") from None
    if canonicalize_name(meta.get("Name", "")) != dist or _version(meta.get("Version")) != version:
        raise ReleaseError(f"{path}: its metadata says {meta.get('Name')} {meta.get('Version')}"
                           f", its file name {dist} {version}")
    if kind == "binary-wheel" and not build:
        raise ReleaseError(f"{path}: a binary wheel needs its build record (audit and smoke); "
                           "only edgeforge's pipeline makes one")
    return Artifact(filename=name, sha256=sha256_file(path), size=path.stat().st_size,
                    kind=kind, distribution=str(dist), version=str(version), tags=tags,
                    requires_python=meta.get("Requires-Python"),
                    build=MappingProxyType(dict(build or {})))


def libc_floor(report: AuditReport) -> str | None:
    """The libc version the wheel needs, as its audited policy says (``manylinux_2_17`` ->
    2.17, ``musllinux_1_2`` -> 1.2); for a ``linux_*`` tag, the newest GLIBC_x.y it imports."""
    m = _POLICY.match(report.best_policy)
    if m:
        return f"{m.group(2)}.{m.group(3)}"
    return report.glibc_floor


def build_record(recipe: str, target: str, audit: AuditReport,
                 smoke: SmokeResult | None) -> dict[str, Any]:
    return {
        "recipe": recipe,
        "target": target,
        "audit": {"policy": audit.best_policy,
                  "libc": audit.libc or ("musl" if audit.musl else "glibc"),
                  "libc_floor": audit.libc_version or libc_floor(audit),
                  "glibc_symbols": audit.glibc_floor},
        "smoke": {"result": "skipped"} if smoke is None else {
            "result": "passed" if smoke.passed else "failed", "runner": smoke.runner,
            "compared_with_host": smoke.reference is not None},
    }


def manifest_text(artifacts: Iterable[Artifact]) -> str:
    files = {a.filename: a.entry() for a in sorted(artifacts, key=lambda a: a.filename)}
    doc = {"format": FORMAT, "generator": f"edgeforge {__version__}", "files": files}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _field(entry: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str
           ) -> Any:
    if key not in entry:
        raise ReleaseError(f"{where}: missing key {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ReleaseError(f"{where}: key {key!r} has the wrong type ({value!r})")
    return value


def read_manifest(path: Path) -> list[Artifact]:
    """The entries of a ``manifest.json``; a malformed one is refused, naming file and key."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError(f"{path} is missing: not a finished edgeforge release") from None
    except (OSError, ValueError) as err:
        raise ReleaseError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ReleaseError(f"{path}: not an edgeforge release manifest of format {FORMAT}")
    files = _field(doc, "files", dict, str(path))
    out = []
    for name, entry in sorted(files.items()):
        where = f"{path}: files.{name}"
        if not isinstance(entry, dict):
            raise ReleaseError(f"{where}: expected an object")
        kind = _field(entry, "kind", str, where)
        if kind not in KINDS:
            raise ReleaseError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        tags = _field(entry, "tags", list, where)
        requires_python = entry.get("requires_python")
        if requires_python is not None and not isinstance(requires_python, str):
            raise ReleaseError(f"{where}: key 'requires_python' has the wrong type")
        build = entry.get("build", {})
        if kind == "binary-wheel" and not (isinstance(build, dict) and build):
            raise ReleaseError(f"{where}: a binary wheel needs its 'build' record")
        out.append(Artifact(
            filename=name, sha256=_field(entry, "sha256", str, where),
            size=_field(entry, "size", int, where), kind=kind,
            distribution=_field(entry, "distribution", str, where),
            version=_field(entry, "version", str, where), tags=tuple(map(str, tags)),
            requires_python=requires_python, build=MappingProxyType(dict(build))))
    return out


def sums_text(root: Path) -> str:
    """``sha256sum -c`` lines for every file under ``root`` but SHA256SUMS, sorted by path."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != SHA256SUMS:
            lines.append(f"{sha256_file(path)}  {rel}\n")
    return "".join(lines)


def read_sums(path: Path) -> dict[str, str]:
    """relative path -> sha256 from a SHA256SUMS file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReleaseError(f"{path} is missing: the release was never finished, or was copied "
                           "in part") from None
    sums: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _SUM_LINE.match(line)
        if not m or m.group(2) in sums:
            raise ReleaseError(f"{path}:{n}: not a `sha256sum` line (or a repeated file): "
                               f"{line[:100]!r}")
        sums[m.group(2)] = m.group(1)
    return sums
