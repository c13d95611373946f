"""Audit of PE (Windows) and Mach-O (macOS) wheels: auditwheel's counterpart for those formats.

Every binary of the wheel is read with LIEF (it reads both formats on Linux) and checked
against the target's toolchain and the format's facts (formats.toml):

- the machine (PE's COFF machine, Mach-O's CPU type) is the target's;
- the libraries it needs are the platform's own (PE: KERNEL32, the Universal CRT, ...;
  Mach-O: /usr/lib and /System, delocate's rule), ones shipped in the same wheel, or ones the
  recipe declares in ``[wheel] system-libraries``;
- a shared library exports the recipe's C API (``[wheel] exports`` patterns) and nothing else
  but the format's known runtime exports (Mach-O: what zig's static libc++ and ld add);
- Mach-O: ``LC_BUILD_VERSION`` (or ``LC_VERSION_MIN_MACOSX``) says the platform is macOS and
  its minos is no newer than the deployment target the macosx_* tag promises; the best tag
  the wheel could carry is the one of the newest minos found.

Facts this module relies on (LIEF 1.0): ``lief.parse(list_of_bytes)`` picks the format;
PE ``Binary.imports``/``get_export().entries``, ``header.machine``; Mach-O
``Binary.libraries`` (LC_ID_DYLIB first for a dylib), ``dyld_info.exports`` or
``dyld_exports_trie.exports`` (each ``.symbol.name``, with C's leading underscore),
``build_version.minos``/``version_min.version`` as [major, minor, patch].
"""

from __future__ import annotations

import fnmatch
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audit import AuditReport
from .binfmt import BinaryFormat
from .errors import AuditError, MissingToolError
from .toolchain import Toolchain


@dataclass(frozen=True)
class NativeBinary:
    """What edgeforge reads from one PE or Mach-O file of a wheel."""

    path: str  # the archive path
    format: str  # "pe" or "macho"
    machine: str  # LIEF's enum name: AMD64, ARM64 (PE); X86_64, ARM64 (Mach-O)
    is_library: bool
    needed: tuple[str, ...]  # PE: imported DLL names; Mach-O: LC_LOAD_*DYLIB install names
    exports: tuple[str, ...]  # C names (Mach-O's leading underscore removed), sorted
    minos: tuple[int, ...] | None = None  # Mach-O: the deployment target it was linked for
    platform: str | None = None  # Mach-O: LC_BUILD_VERSION's platform (MACOS)
    install_name: str | None = None  # Mach-O dylib: LC_ID_DYLIB, what linking it records


def _lief() -> Any:
    try:
        import lief
    except ImportError:  # pragma: no cover - a dependency of edgeforge
        raise MissingToolError("LIEF is not installed: pip install 'lief>=1.0'") from None
    lief.logging.disable()  # it logs unreadable optional parts to stderr; errors still raise
    return lief


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", value)).rsplit(".", 1)[-1]


def read_binary(data: bytes, path: str, fmt: BinaryFormat) -> NativeBinary:
    """Read one PE or Mach-O file (``data``) that sits at ``path`` in a wheel."""
    lief = _lief()
    parsed = lief.parse(list(data))
    if parsed is None:
        raise AuditError(f"{path}: LIEF cannot read it as {fmt.title}")
    if isinstance(parsed, lief.MachO.FatBinary):
        raise AuditError(f"{path}: a universal (fat) Mach-O file; edgeforge builds one "
                         "architecture per wheel")
    if fmt.key == "pe":
        if not isinstance(parsed, lief.PE.Binary):
            raise AuditError(f"{path}: not a PE file")
        exports = (tuple(sorted(e.name for e in parsed.get_export().entries if e.name))
                   if parsed.has_exports else ())
        return NativeBinary(
            path=path, format="pe", machine=_enum_name(parsed.header.machine),
            is_library=parsed.header.has_characteristic(
                lief.PE.Header.CHARACTERISTICS.DLL),
            needed=tuple(i.name for i in parsed.imports), exports=exports)
    if not isinstance(parsed, lief.MachO.Binary):
        raise AuditError(f"{path}: not a Mach-O file")
    is_library = _enum_name(parsed.header.file_type) == "DYLIB"
    libraries = [lib.name for lib in parsed.libraries]
    install_name = None
    if is_library and libraries:
        install_name, libraries = libraries[0], libraries[1:]  # LC_ID_DYLIB comes first
    if parsed.has_dyld_exports_trie:
        entries = parsed.dyld_exports_trie.exports
    elif parsed.has_dyld_info:
        entries = parsed.dyld_info.exports
    else:
        entries = []
    exports = tuple(sorted({e.symbol.name[1:] if e.symbol.name.startswith("_") else
                            e.symbol.name for e in entries}))
    minos: tuple[int, ...] | None = None
    platform = None
    if parsed.has_build_version:
        minos = tuple(parsed.build_version.minos)
        platform = _enum_name(parsed.build_version.platform)
    elif parsed.has_version_min:
        minos = tuple(parsed.version_min.version)
        platform = "MACOS"
    return NativeBinary(path=path, format="macho", machine=_enum_name(parsed.header.cpu_type),
                        is_library=is_library, needed=tuple(libraries), exports=exports,
                        minos=minos, platform=platform, install_name=install_name)


def read_wheel_binaries(wheel: Path, fmt: BinaryFormat) -> list[NativeBinary]:
    """Every file of ``fmt`` in the wheel (sorted by archive path)."""
    found = []
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                data = zf.read(info)
                # "MZ" starts text files too: PE files are taken by their extension as well
                if fmt.matches(data[:4]) and (fmt.key != "pe" or info.filename.lower()
                                              .endswith((".dll", ".exe", ".pyd"))):
                    found.append(read_binary(data, info.filename, fmt))
    except zipfile.BadZipFile as err:
        raise AuditError(f"{wheel}: not a wheel (zip): {err}") from None
    return found


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(v) for v in version[:2])


def _macos_tag(version: tuple[int, ...], tag_machine: str) -> str:
    major, minor = version[0], version[1] if len(version) > 1 else 0
    if major >= 11:
        minor = 0  # pip's macosx tags from 11 on are macosx_<major>_0
    return f"macosx_{major}_{minor}_{tag_machine}"


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _is_shipped(name: str, shipped: set[str]) -> bool:
    """A library of the same wheel: Mach-O names it @rpath/ or @loader_path/<file>, PE by its
    file name (case-insensitive)."""
    if "/" in name:
        return name.startswith(("@rpath/", "@loader_path/")) and name.rsplit("/", 1)[1] in shipped
    return name.lower() in {s.lower() for s in shipped}


def analyze_wheel(wheel: Path, toolchain: Toolchain, system_libraries: Collection[str] = (),
                  api: Collection[str] = ()) -> AuditReport:
    """Analyse a PE or Mach-O wheel for ``toolchain``; the report says whether it keeps the
    promise of ``toolchain.wheel_tags[0]``. ``api``: the recipe's export patterns."""
    wheel = Path(wheel)
    if not wheel.is_file():
        raise AuditError(f"{wheel}: no such wheel")
    fmt = toolchain.binary_format
    binaries = read_wheel_binaries(wheel, fmt)
    if not binaries:
        raise AuditError(f"{wheel.name}: no {fmt.title} file in the wheel: nothing to audit")
    expected = fmt.arch(toolchain.arch).machine
    shipped = {b.path.rsplit("/", 1)[-1] for b in binaries}
    problems: list[str] = []
    external: set[str] = set()
    outside_api: list[str] = []
    notes: list[str] = []
    for b in binaries:
        if b.machine != expected:
            problems.append(f"{b.path} is {fmt.title} {b.machine}, not {toolchain.arch} "
                            f"({expected})")
        for name in b.needed:
            if not (fmt.allows_system_library(name) or _is_shipped(name, shipped)
                    or name in system_libraries):
                external.add(name)
        notes.append(f"{b.path} needs: {', '.join(b.needed) or '(nothing)'}")
        if b.is_library:
            problems += _export_problems(b, fmt, api, outside_api, notes)
        if b.install_name is not None and not b.install_name.startswith(("@rpath/",
                                                                          "@loader_path/")):
            problems.append(f"{b.path} is named {b.install_name} (LC_ID_DYLIB): what links it "
                            "looks there; a wheel's dylib needs @rpath/ or @loader_path/")
    if external:
        problems.append(f"libraries that are not the system's nor in the wheel: "
                        f"{', '.join(sorted(external))} (a recipe may declare the ones users "
                        "install themselves in [wheel] system-libraries)")
    best, floor = toolchain.wheel_tags[0], toolchain.libc_version
    if fmt.key == "macho":
        best, floor, more = _check_minos(binaries, toolchain, fmt, notes)
        problems += more
    return AuditReport(
        wheel=wheel, target=toolchain.name, promised=toolchain.wheel_tags[0],
        best_policy=best if not problems else f"(none: {toolchain.wheel_tags[0]} not met)",
        glibc_floor=None, musl=False, elf_files=tuple(b.path for b in binaries),
        external_libs=tuple(sorted(external)), offending_symbols=tuple(outside_api),
        problems=tuple(problems), binary_format=fmt.title,
        libc=toolchain.libc, libc_version=floor, notes=tuple(notes),
    )


def _export_problems(b: NativeBinary, fmt: BinaryFormat, api: Collection[str],
                     outside_api: list[str], notes: list[str]) -> list[str]:
    def in_api(symbol: str) -> bool:
        return any(fnmatch.fnmatchcase(symbol, p) for p in api)

    if not api:
        return [f"{b.path}: the recipe declares no [wheel] exports, so its C API cannot be "
                "checked; list the API's symbol patterns there (e.g. \"TfLite*\")"]
    ours = [s for s in b.exports if in_api(s)]
    runtime = [s for s in b.exports if not in_api(s) and fmt.is_runtime_export(s)]
    other = [s for s in b.exports if not in_api(s) and not fmt.is_runtime_export(s)]
    notes.append(f"{b.path} exports {len(ours)} API symbols"
                 + (f" and {len(runtime)} of the C++ runtime ({', '.join(runtime)})"
                    if runtime else ""))
    outside_api += [f"{b.path}: {s}" for s in other]
    problems = []
    if not ours:
        problems.append(f"{b.path} exports none of the C API ({', '.join(api)})")
    if other:
        shown = ", ".join(other[:12]) + (f" and {len(other) - 12} more" if len(other) > 12
                                         else "")
        problems.append(f"{b.path} exports symbols outside the C API: {shown}")
    return problems


def _check_minos(binaries: list[NativeBinary], toolchain: Toolchain, fmt: BinaryFormat,
                 notes: list[str]) -> tuple[str, str, list[str]]:
    """The best macosx tag the binaries allow, the newest minos, and why the promised tag is
    not met."""
    tag_machine = fmt.tag_machine(toolchain.arch)
    promised = _parse_version(toolchain.libc_version)
    promised_tag = _macos_tag(promised, tag_machine)
    problems = []
    if promised_tag != toolchain.wheel_tags[0]:
        problems.append(f"target {toolchain.name}: libc-version {toolchain.libc_version} "
                        f"makes the tag {promised_tag}, but wheel-tags[0] is "
                        f"{toolchain.wheel_tags[0]}")
    newest: tuple[int, ...] = (0,)
    for b in binaries:
        if b.minos is None:
            problems.append(f"{b.path} has no LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX: "
                            "its macOS floor is unknown")
            continue
        if b.platform != "MACOS":
            problems.append(f"{b.path} is built for platform {b.platform}, not macOS")
        notes.append(f"{b.path}: minos {version_text(b.minos)}")
        newest = max(newest, b.minos)
        if b.minos[:2] > promised[:2]:
            problems.append(f"{b.path} needs macOS {version_text(b.minos)} (minos), newer than "
                            f"the {toolchain.libc_version} that {toolchain.wheel_tags[0]} "
                            "promises")
    if newest == (0,):
        return promised_tag, toolchain.libc_version, problems
    return _macos_tag(newest, tag_machine), version_text(newest), problems
