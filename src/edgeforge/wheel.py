"""Wheel writer: ``py3-none-<platform>`` wheels with a hashed RECORD, byte-reproducible.

The same spec and the same file contents give the same bytes: every entry has the date of
SOURCE_DATE_EPOCH (argument, else environment, else 1980-01-01), fixed permissions, a fixed
compression level, and the entries are sorted with the ``.dist-info`` directory last and its
RECORD last of all. The file is written to a process-unique temporary name in ``out_dir``,
synced, and renamed into place (``fsutil.atomic_path``): a failure leaves nothing behind.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import itertools
import os
import re
import stat
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import Parser
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from . import __version__
from .errors import ConfigError
from .fsutil import atomic_path

DEFAULT_SOURCE_DATE_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest date a zip can hold
_MAX_ZIP_EPOCH = 4354819199  # 2107-12-31T23:59:59Z, the latest
COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESS_LEVEL = 9
_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$", re.ASCII)  # PEP 508
_TAG_RE = re.compile(r"^[a-z0-9_]+$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_ENTRY_NAME_RE = re.compile(r"^[^=\[\]\s][^=\[\]\n]*$")
_ENTRY_VALUE_RE = re.compile(r"^[\w.]+(\s*:\s*[\w.]+)?(\s*\[[\w.,\s-]*\])?$")


def _no_entry_points() -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType({})


def _no_urls() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class WheelSpec:
    """What a wheel is: its name, version, tags and core metadata."""

    distribution: str  # e.g. "tflite-edge-lib"; the file name uses "tflite_edge_lib"
    version: str
    # ("manylinux_2_17_aarch64", "manylinux2014_aarch64"), or ("any",)
    platform_tags: tuple[str, ...]
    python_tag: str = "py3"
    abi_tag: str = "none"
    summary: str = ""
    license: str | None = None  # an SPDX license expression, e.g. "Apache-2.0"
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    entry_points: Mapping[str, Mapping[str, str]] = field(default_factory=_no_entry_points)
    description: str | None = None  # Markdown
    project_urls: Mapping[str, str] = field(default_factory=_no_urls)

    def __post_init__(self) -> None:
        _validate_spec(self)
        # Freeze the mappings so a spec cannot change after validation.
        frozen_eps = MappingProxyType(
            {group: MappingProxyType(dict(eps)) for group, eps in self.entry_points.items()}
        )
        object.__setattr__(self, "entry_points", frozen_eps)
        object.__setattr__(self, "project_urls", MappingProxyType(dict(self.project_urls)))
        object.__setattr__(self, "platform_tags", tuple(self.platform_tags))
        object.__setattr__(self, "requires_dist", tuple(self.requires_dist))

    @property
    def name(self) -> str:
        """The distribution name as file names spell it: ``tflite_edge_lib``."""
        return canonicalize_name(self.distribution).replace("-", "_")

    @property
    def normalized_version(self) -> str:
        return str(Version(self.version))

    @property
    def is_pure(self) -> bool:
        return self.platform_tags == ("any",)

    @property
    def tags(self) -> list[str]:
        """Every ``py-abi-platform`` tag the wheel carries (one WHEEL ``Tag:`` line each)."""
        return [
            f"{py}-{abi}-{plat}"
            for py, abi, plat in itertools.product(
                self.python_tag.split("."), self.abi_tag.split("."), self.platform_tags
            )
        ]

    @property
    def filename(self) -> str:
        version = self.normalized_version.replace("-", "_")
        plat = ".".join(self.platform_tags)
        return f"{self.name}-{version}-{self.python_tag}-{self.abi_tag}-{plat}.whl"

    @property
    def dist_info(self) -> str:
        return f"{self.name}-{self.normalized_version}.dist-info"


def _validate_spec(spec: WheelSpec) -> None:
    if not _NAME_RE.match(spec.distribution):
        raise ConfigError(
            f"invalid distribution name {spec.distribution!r}: use letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit",
            key="distribution",
        )
    try:
        Version(spec.version)
    except InvalidVersion:
        raise ConfigError(
            f"invalid version {spec.version!r} for {spec.distribution}: not a PEP 440 version",
            key="version",
        ) from None
    if isinstance(spec.platform_tags, str) or not spec.platform_tags:
        raise ConfigError("platform_tags needs at least one platform tag", key="platform_tags")
    for what, value in (("python_tag", spec.python_tag), ("abi_tag", spec.abi_tag)):
        if not all(_TAG_RE.match(part) for part in value.split(".")):
            raise ConfigError(f"invalid {what} {value!r}", key=what)
    for tag in spec.platform_tags:
        if not _TAG_RE.match(tag):
            raise ConfigError(
                f"invalid platform tag {tag!r}: lower-case letters, digits and '_' only "
                "(pass dual tags as separate items, not joined by '.')",
                key="platform_tags",
            )
    if len(set(spec.platform_tags)) != len(spec.platform_tags):
        raise ConfigError(f"duplicate platform tags in {spec.platform_tags}", key="platform_tags")
    if "any" in spec.platform_tags and len(spec.platform_tags) > 1:
        raise ConfigError("platform tag 'any' cannot be combined with others", key="platform_tags")
    if "\n" in spec.summary or "\r" in spec.summary:
        raise ConfigError("summary must be one line", key="summary")
    if spec.license is not None:
        _validate_license(spec.license)
    if spec.requires_python is not None:
        try:
            SpecifierSet(spec.requires_python)
        except InvalidSpecifier:
            raise ConfigError(
                f"invalid requires_python {spec.requires_python!r}", key="requires_python"
            ) from None
    if isinstance(spec.requires_dist, str):
        raise ConfigError("requires_dist must be a sequence of requirements, not one string",
                          key="requires_dist")
    for req in spec.requires_dist:
        try:
            Requirement(req)
        except InvalidRequirement as err:
            raise ConfigError(f"invalid requirement {req!r}: {err}", key="requires_dist") from None
    for group, entries in spec.entry_points.items():
        if not _GROUP_RE.match(group):
            raise ConfigError(f"invalid entry point group {group!r}", key="entry_points")
        for name, value in entries.items():
            if not _ENTRY_NAME_RE.match(name) or name != name.strip():
                raise ConfigError(f"invalid entry point name {name!r} in [{group}]",
                                  key="entry_points")
            if not _ENTRY_VALUE_RE.match(value):
                raise ConfigError(
                    f"invalid entry point {name} = {value!r} in [{group}]: use 'module:attr'",
                    key="entry_points",
                )
    for label, url in spec.project_urls.items():
        if not label or "," in label or "\n" in label or "\n" in url or not url:
            raise ConfigError(f"invalid project URL {label!r}: {url!r}", key="project_urls")


def _validate_license(expression: str) -> None:
    try:
        from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
    except ImportError:  # packaging < 24.2: no SPDX parser; accept it as written
        if "\n" in expression:
            raise ConfigError("license must be one line", key="license") from None
        return
    try:
        canonicalize_license_expression(expression)
    except InvalidLicenseExpression as err:
        raise ConfigError(f"license is not an SPDX expression: {err}", key="license") from None


def resolve_source_date_epoch(source_date_epoch: int | None = None) -> int:
    """The argument, else ``$SOURCE_DATE_EPOCH``, else 1980-01-01; clamped to what zip holds."""
    if source_date_epoch is None:
        raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        if raw:
            try:
                source_date_epoch = int(raw)
            except ValueError:
                raise ConfigError(
                    f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds"
                ) from None
        else:
            source_date_epoch = DEFAULT_SOURCE_DATE_EPOCH
    return min(max(source_date_epoch, DEFAULT_SOURCE_DATE_EPOCH), _MAX_ZIP_EPOCH)


def _check_archive_path(path: str, what: str) -> str:
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or pure.is_absolute()
        or pure.as_posix() != path
        or any(part in ("", ".", "..") for part in pure.parts)
        or any(ch in path for ch in "\n\r\0")
    ):
        raise ConfigError(
            f"invalid {what} {path!r}: use a relative POSIX path without '.', '..' or '\\'"
        )
    return path


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_elf_executable(data: bytes) -> bool:
    """An ELF executable: ET_EXEC, or ET_DYN with an interpreter (a PIE), not a plain .so."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        return False
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.header.e_type == "ET_EXEC":
            return True
        return elf.header.e_type == "ET_DYN" and any(
            seg.header.p_type == "PT_INTERP" for seg in elf.iter_segments()
        )
    except (ELFError, ValueError, OSError):
        return False


@dataclass(frozen=True)
class _Entry:
    arcname: str
    data: bytes
    mode: int


def _metadata(spec: WheelSpec, license_names: list[str]) -> str:
    # License-Expression and License-File arrived with Metadata-Version 2.4 (PEP 639).
    modern = spec.license is not None or bool(license_names)
    fields: list[tuple[str, str]] = [
        ("Metadata-Version", "2.4" if modern else "2.1"),
        ("Name", spec.distribution),
        ("Version", spec.normalized_version),
    ]
    if spec.summary:
        fields.append(("Summary", spec.summary))
    if spec.license is not None:
        fields.append(("License-Expression", spec.license))
    fields.extend(("License-File", name) for name in license_names)
    if spec.requires_python is not None:
        fields.append(("Requires-Python", spec.requires_python))
    fields.extend(("Requires-Dist", req) for req in spec.requires_dist)
    fields.extend(("Project-URL", f"{label}, {url}") for label, url in spec.project_urls.items())
    # A long description always (twine check and the index page want one): the summary when
    # the spec has none.
    description, content_type = spec.description, "text/markdown"
    if not description and spec.summary:
        description, content_type = spec.summary, "text/plain"
    if description:
        fields.append(("Description-Content-Type", content_type))
    text = "".join(f"{key}: {value}\n" for key, value in fields)
    if description:
        text += "\n" + description + ("" if description.endswith("\n") else "\n")
    return text


def _wheel_file(spec: WheelSpec) -> str:
    lines = [
        "Wheel-Version: 1.0",
        f"Generator: edgeforge ({__version__})",
        f"Root-Is-Purelib: {'true' if spec.is_pure else 'false'}",
        *(f"Tag: {tag}" for tag in spec.tags),
    ]
    return "\n".join(lines) + "\n"


def _entry_points_file(entry_points: Mapping[str, Mapping[str, str]]) -> str:
    blocks = []
    for group in sorted(entry_points):
        entries = entry_points[group]
        lines = [f"[{group}]", *(f"{name} = {entries[name]}" for name in sorted(entries))]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _read_input(arcname: str, path: Path) -> _Entry:
    try:
        data = path.read_bytes()
        mode_on_disk = path.stat().st_mode
    except IsADirectoryError:
        raise ConfigError(f"{arcname}: {path} is a directory; list its files one by one") from None
    except FileNotFoundError:
        raise ConfigError(f"{arcname}: {path} does not exist") from None
    except OSError as err:
        raise ConfigError(f"{arcname}: cannot read {path}: {err.strerror}") from None
    executable = bool(mode_on_disk & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    mode = 0o755 if executable or _is_elf_executable(data) else 0o644
    return _Entry(arcname, data, mode)


def _zipinfo(arcname: str, mode: int, date_time: tuple[int, ...]) -> zipfile.ZipInfo:
    year, month, day, hour, minute, second = date_time[:6]  # ZipInfo takes exactly six
    info = zipfile.ZipInfo(arcname, date_time=(year, month, day, hour, minute, second))
    info.create_system = 3  # Unix: external_attr carries the permission bits
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = COMPRESSION
    return info


def _plan(spec: WheelSpec, files: Mapping[str, Path],
          license_files: Mapping[str, Path]) -> list[_Entry]:
    """Every entry but RECORD, in archive order: payload sorted, then the .dist-info files."""
    dist_info = spec.dist_info
    payload: dict[str, Path] = {}
    for arcname, path in files.items():
        _check_archive_path(arcname, "archive path")
        if arcname.split("/")[0] == dist_info:
            raise ConfigError(
                f"{arcname}: files cannot go into {dist_info}/ (edgeforge writes it; "
                "pass licenses as license_files)"
            )
        payload[arcname] = Path(path)
    licenses: dict[str, Path] = {}
    for name, path in license_files.items():
        _check_archive_path(name, "license file name")
        licenses[f"{dist_info}/licenses/{name}"] = Path(path)

    entries = [_read_input(a, payload[a]) for a in sorted(payload)]
    meta: list[_Entry] = [
        _Entry(f"{dist_info}/METADATA", _metadata(spec, sorted(license_files)).encode(), 0o644),
        _Entry(f"{dist_info}/WHEEL", _wheel_file(spec).encode(), 0o644),
    ]
    if spec.entry_points:
        text = _entry_points_file(spec.entry_points)
        meta.append(_Entry(f"{dist_info}/entry_points.txt", text.encode(), 0o644))
    meta.extend(_read_input(a, licenses[a]) for a in sorted(licenses))
    meta.sort(key=lambda e: e.arcname)
    return entries + meta


def _record(entries: list[_Entry], record_name: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for entry in entries:
        writer.writerow([entry.arcname, _record_hash(entry.data), len(entry.data)])
    writer.writerow([record_name, "", ""])
    return out.getvalue().encode()


def write_wheel(
    spec: WheelSpec,
    files: Mapping[str, Path],
    out_dir: Path,
    *,
    license_files: Mapping[str, Path] | None = None,
    source_date_epoch: int | None = None,
) -> Path:
    """Write ``spec``'s wheel with ``files`` (archive path -> file on disk) into ``out_dir``.

    ``license_files`` maps names under ``.dist-info/licenses/`` (e.g. ``"LICENSE"``,
    ``"third_party/eigen/COPYING.MPL2"``) to files; each is listed as a ``License-File``.
    Returns the path of the wheel. An existing wheel of the same name is replaced atomically.
    """
    license_files = license_files or {}
    epoch = resolve_source_date_epoch(source_date_epoch)
    date_time = time.gmtime(epoch)[:6]
    entries = _plan(spec, files, license_files)
    record_name = f"{spec.dist_info}/RECORD"
    record = _Entry(record_name, _record(entries, record_name), 0o644)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / spec.filename
    with (atomic_path(final, durable=True) as tmp, tmp.open("wb") as raw,
          zipfile.ZipFile(raw, "w", compression=COMPRESSION, compresslevel=COMPRESS_LEVEL) as zf):
        for entry in [*entries, record]:
            zf.writestr(_zipinfo(entry.arcname, entry.mode, date_time), entry.data,
                        compress_type=COMPRESSION, compresslevel=COMPRESS_LEVEL)
    return final


def _wheel_metadata_file(path: Path, name: str) -> Message:
    with zipfile.ZipFile(path) as zf:
        candidates = [n for n in zf.namelist()
                      if n.count("/") == 1 and n.split("/")[0].endswith(".dist-info")
                      and n.endswith("/" + name)]
        if len(candidates) != 1:
            raise ConfigError(f"{path}: expected one .dist-info/{name}, found {len(candidates)}")
        return Parser().parsestr(zf.read(candidates[0]).decode("utf-8"))


def read_wheel_tags(path: Path) -> list[str]:
    """The ``Tag:`` lines of a wheel's WHEEL file, in order."""
    return list(_wheel_metadata_file(Path(path), "WHEEL").get_all("Tag") or [])


def read_wheel_metadata(path: Path) -> Message:
    """A wheel's METADATA, parsed as the email-style headers it is."""
    return _wheel_metadata_file(Path(path), "METADATA")
