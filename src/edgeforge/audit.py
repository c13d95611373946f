"""Audit: which manylinux/musllinux policy a wheel's binaries really meet, for any arch.

The wheel's own tag is never trusted. auditwheel's analysis (its Python API, which reads ELF
files of any architecture) says which policy the ELF files meet; that is compared with the
policy the target's toolchain promises (``toolchain.wheel_tags[0]``). Symbol names come from
edgeforge's own scan of the ELF files (auditwheel reports versions only), and targets no
policy covers (``linux_armv6l``) are checked by that scan alone against the toolchain's
glibc floor.

Facts this module relies on (auditwheel 6.8):
- ``analyze_wheel_abi(libc, architecture, wheel, exclude, *, disable_isa_ext_check,
  allow_graft, ...)``; earlier 6.x releases took a ``WheelPolicies`` first.
- ``get_wheel_elfdata`` is an ``lru_cache`` keyed by the wheel's path: a wheel rewritten at
  the same path is analysed stale unless the cache is cleared (done here).
- Without an explicit libc, a shared library with no interpreter is classified by its
  DT_NEEDED names; zig's musl libraries need ``libc.so`` (not Alpine's
  ``libc.musl-<arch>.so.1``), which auditwheel neither recognises nor whitelists, and
  ``auditwheel show`` on such a wheel even crashes on this host (it opens glibc's
  ``libc.so`` linker script). musl's loader resolves every ``lib{c,pthread,rt,m,dl,util,
  xnet}.*`` name to itself, so for musl targets those names are excluded from the analysis.
- On a glibc host auditwheel cannot read the musl version: it uses the newest musllinux
  policy it knows. musl has no symbol versions, so only libraries and the ISA are checked.
"""

from __future__ import annotations

import inspect
import io
import logging
import re
import zipfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection
from elftools.elf.segments import InterpSegment

from .archs import ARM_CPU_ARCH_NAMES, arch_info
from .errors import AuditError, ConfigError, MissingToolError
from .toolchain import Toolchain

# musl's dynamic linker answers these DT_NEEDED names itself (ldso/dynlink.c, load_library).
MUSL_SELF_NAMES = ("c", "pthread", "rt", "m", "dl", "util", "xnet")
_MUSL_EXCLUDE = frozenset(f"lib{stem}.*" for stem in MUSL_SELF_NAMES)

_EF_ARM_ABI_FLOAT_HARD = 0x400


@dataclass(frozen=True)
class VersionedImport:
    symbol: str
    version: str  # e.g. "GLIBC_2.34"
    library: str  # e.g. "libc.so.6"

    def __str__(self) -> str:
        return f"{self.symbol}@{self.version}"


@dataclass(frozen=True)
class ElfFile:
    """What edgeforge reads from one ELF file of a wheel."""

    path: str  # the archive path
    machine: str
    elfclass: int
    little_endian: bool
    flags: int
    interpreter: str | None
    needed: tuple[str, ...]
    imports: tuple[VersionedImport, ...]
    arm_cpu_arch: int | None


@dataclass(frozen=True)
class AuditReport:
    wheel: Path
    target: str  # the toolchain's name
    promised: str  # the policy (or linux_* tag) the toolchain promises: wheel_tags[0]
    best_policy: str  # the highest-priority (oldest) policy the binaries really meet
    glibc_floor: str | None  # the newest GLIBC_x.y any ELF file needs; None: none (musl)
    musl: bool
    elf_files: tuple[str, ...]
    external_libs: tuple[str, ...]  # needed, outside the promised policy's whitelist
    offending_symbols: tuple[str, ...]  # "name@GLIBC_x.y" above the promise
    blacklisted_symbols: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # why the promise is not met; empty when it is
    versioned_symbols: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    binary_format: str = "ELF"  # ELF, PE or Mach-O (audit_native for the last two)
    libc: str | None = None  # PE/Mach-O: the toolchain's libc (ucrt, macos)
    libc_version: str | None = None  # PE: as promised; Mach-O: the newest minos found
    notes: tuple[str, ...] = ()  # what else the audit read (imports, exports, minos)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "meets" if self.ok else "does NOT meet"
        lines = [
            f"{self.wheel.name}: {verdict} {self.promised} (target {self.target})",
            f"  best policy: {self.best_policy}",
            f"  libc: {self.libc} {self.libc_version}" if self.libc else
            f"  libc: {'musl' if self.musl else 'glibc'}"
            + (f", needs glibc {self.glibc_floor}" if self.glibc_floor else ""),
            f"  {self.binary_format} files: {', '.join(self.elf_files)}",
            *(f"  {note}" for note in self.notes),
        ]
        for lib, versions in sorted(self.versioned_symbols.items()):
            lines.append(f"  {lib}: {', '.join(versions)}")
        if self.external_libs:
            lines.append(f"  external libraries: {', '.join(self.external_libs)}")
        if self.offending_symbols:
            lines.append(f"  symbols above the promise: {', '.join(self.offending_symbols)}")
        if self.blacklisted_symbols:
            lines.append(f"  blacklisted symbols: {', '.join(self.blacklisted_symbols)}")
        lines.extend(f"  problem: {p}" for p in self.problems)
        return "\n".join(lines)


def audit_wheel(wheel: Path, toolchain: Toolchain,
                system_libraries: Collection[str] = (), exports: Collection[str] = ()
                ) -> AuditReport:
    """Analyse ``wheel`` for ``toolchain``'s target; AuditError unless it keeps the promise.

    ``system_libraries`` are sonames the recipe declares the wheel takes from the system
    (libedgetpu's libusb-1.0.so.0): outside the policy's whitelist, but no longer a failure.
    ``exports``: the recipe's C API patterns, which PE and Mach-O libraries must export
    (``audit_native``, the audit of those formats).
    """
    if toolchain.binary_format.key == "elf":
        report = analyze_wheel(wheel, toolchain, system_libraries)
    else:
        from .audit_native import analyze_wheel as analyze_native

        report = analyze_native(wheel, toolchain, system_libraries, exports)
    if not report.ok:
        details = "; ".join(report.problems)
        raise AuditError(
            f"{Path(wheel).name} does not meet {report.promised}, which target "
            f"{toolchain.name} promises: {details}. Its binaries meet {report.best_policy}"
            + (f" and need glibc {report.glibc_floor}." if report.glibc_floor else ".")
        )
    return report


def analyze_wheel(wheel: Path, toolchain: Toolchain,
                  system_libraries: Collection[str] = ()) -> AuditReport:
    """Analyse ``wheel`` for ``toolchain``'s target; the report says whether the promise holds."""
    wheel = Path(wheel)
    if not wheel.is_file():
        raise AuditError(f"{wheel}: no such wheel")
    elves = read_elf_files(wheel)
    if not elves:
        raise AuditError(f"{wheel.name}: no ELF file in the wheel: nothing to audit")
    musl = toolchain.libc == "musl"
    problems = _check_machine(elves, toolchain) + _check_libc(elves, musl)
    imports = [imp for elf in elves for imp in elf.imports]
    glibc_floor = _glibc_floor(imports)
    versioned: dict[str, set[str]] = {}
    for imp in imports:
        versioned.setdefault(imp.library, set()).add(imp.version)
    versioned_symbols = MappingProxyType(
        {lib: tuple(sorted(v, key=_version_key)) for lib, v in sorted(versioned.items())}
    )
    promised = toolchain.wheel_tags[0]
    external: Collection[str]
    offending: Collection[str]
    blacklisted: Collection[str]
    if problems:  # wrong architecture or libc: a policy verdict would mean nothing
        best, external, offending, blacklisted = f"linux_{toolchain.arch}", (), (), ()
    elif toolchain.audit_policy is None:
        best, external, offending, blacklisted, more = _audit_without_policy(
            elves, imports, toolchain, frozenset(system_libraries)
        )
        problems += more
    else:
        best, external, offending, blacklisted, more = _audit_with_auditwheel(
            wheel, imports, toolchain, frozenset(system_libraries)
        )
        problems += more
    return AuditReport(
        wheel=wheel,
        target=toolchain.name,
        promised=promised,
        best_policy=best,
        glibc_floor=glibc_floor,
        musl=musl,
        elf_files=tuple(e.path for e in elves),
        external_libs=tuple(external),
        offending_symbols=tuple(offending),
        blacklisted_symbols=tuple(blacklisted),
        problems=tuple(problems),
        versioned_symbols=versioned_symbols,
    )


# --- edgeforge's own ELF scan -------------------------------------------------------------


def read_elf_files(wheel: Path) -> list[ElfFile]:
    """Every ELF file in the wheel, read with pyelftools (sorted by archive path)."""
    result = []
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                with zf.open(info) as f:
                    if f.read(4) != b"\x7fELF":
                        continue
                data = zf.read(info)
                try:
                    result.append(_read_elf(info.filename, data))
                except (ELFError, ValueError, KeyError) as err:
                    raise AuditError(f"{wheel.name}: {info.filename}: unreadable ELF: {err}")\
                        from None
    except zipfile.BadZipFile as err:
        raise AuditError(f"{wheel}: not a wheel (zip): {err}") from None
    return result


def _read_elf(path: str, data: bytes) -> ElfFile:
    elf = ELFFile(io.BytesIO(data))
    interpreter = None
    for segment in elf.iter_segments():
        if isinstance(segment, InterpSegment):
            interpreter = segment.get_interp_name()
    needed: list[str] = []
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            # pyelftools sets a DT_NEEDED tag's .needed with setattr, which its types miss
            needed.extend(t.needed for t in section.iter_tags()  # type: ignore[attr-defined]
                          if t.entry.d_tag == "DT_NEEDED")
            break
    return ElfFile(
        path=path,
        machine=elf["e_machine"],
        elfclass=elf.elfclass,
        little_endian=elf.little_endian,
        flags=elf["e_flags"],
        interpreter=interpreter,
        needed=tuple(needed),
        imports=tuple(_versioned_imports(elf)),
        arm_cpu_arch=_arm_cpu_arch(elf),
    )


def _versioned_imports(elf: ELFFile) -> list[VersionedImport]:
    """Undefined dynamic symbols with the version each one needs (``pthread_create@GLIBC_2.34``).

    Versions that no symbol names (a library's version need without a binding) are listed
    with the symbol ``*``: the loader checks them all the same.
    """
    verneed = versym = None
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            verneed = section
        elif isinstance(section, GNUVerSymSection):
            versym = section
    if verneed is None:
        return []
    by_index: dict[int, tuple[str, str]] = {}
    for need, auxes in verneed.iter_versions():
        assert need.name is not None  # GNUVerNeedSection names every need (its vn_file)
        for aux in auxes:
            by_index[aux["vna_other"]] = (aux.name, need.name)
    imports: dict[tuple[str, str], VersionedImport] = {}
    named_versions: set[int] = set()
    dynsym = elf.get_section_by_name(".dynsym")
    if versym is not None and isinstance(dynsym, SymbolTableSection):
        for i, sym in enumerate(dynsym.iter_symbols()):
            if sym["st_shndx"] != "SHN_UNDEF" or not sym.name:
                continue
            ndx = versym.get_symbol(i)["ndx"]
            if not isinstance(ndx, int):
                continue
            ndx &= 0x7FFF  # the hidden bit
            if ndx in by_index:
                version, library = by_index[ndx]
                named_versions.add(ndx)
                imports[(sym.name, version)] = VersionedImport(sym.name, version, library)
    for ndx, (version, library) in by_index.items():
        if ndx not in named_versions:
            imports[("*", version)] = VersionedImport("*", version, library)
    return sorted(imports.values(), key=lambda i: (i.library, _version_key(i.version), i.symbol))


def _arm_cpu_arch(elf: ELFFile) -> int | None:
    if elf["e_machine"] != "EM_ARM":
        return None
    section = elf.get_section_by_name(".ARM.attributes")
    if section is None or not hasattr(section, "iter_subsections"):
        return None
    for subsection in section.iter_subsections():
        for subsubsection in subsection.iter_subsubsections():
            for attribute in subsubsection.iter_attributes():
                if attribute.tag == "TAG_CPU_ARCH":
                    return int(attribute.value)
    return None


def _version_key(version: str) -> tuple[str, tuple[int, ...]]:
    prefix, _, number = version.partition("_")
    parts = tuple(int(p) for p in re.findall(r"\d+", number))
    return prefix, parts


def _glibc_floor(imports: Iterable[VersionedImport]) -> str | None:
    versions = [_version_key(i.version)[1] for i in imports if i.version.startswith("GLIBC_")
                and re.fullmatch(r"GLIBC_\d+(\.\d+)*", i.version)]
    if not versions:
        return None
    return ".".join(str(p) for p in max(versions))


def _check_machine(elves: list[ElfFile], toolchain: Toolchain) -> list[str]:
    arch = arch_info(toolchain.arch)
    expected = (arch.elf_machine, arch.elf_class, arch.little_endian)
    problems = []
    for elf in elves:
        if (elf.machine, elf.elfclass, elf.little_endian) != expected:
            endian = "LE" if elf.little_endian else "BE"
            problems.append(
                f"{elf.path} is {elf.machine} ELF{elf.elfclass} {endian}, not {toolchain.arch}"
            )
            continue
        if arch.hard_float and not elf.flags & _EF_ARM_ABI_FLOAT_HARD:
            problems.append(f"{elf.path} is not hard-float, which {toolchain.arch} needs")
        limit = arch.arm_cpu_arch_max
        if limit is not None and elf.arm_cpu_arch is not None and elf.arm_cpu_arch > limit:
            problems.append(
                f"{elf.path} is built for ARM "
                f"{ARM_CPU_ARCH_NAMES.get(elf.arm_cpu_arch, elf.arm_cpu_arch)}, newer than "
                f"{toolchain.arch} ({ARM_CPU_ARCH_NAMES.get(limit, limit)})"
            )
    return problems


def _check_libc(elves: list[ElfFile], musl: bool) -> list[str]:
    problems = []
    for elf in elves:
        glibc_versions = sorted({i.version for i in elf.imports if i.version.startswith("GLIBC")})
        musl_names = [n for n in elf.needed if n.startswith("libc.musl-") or n == "libc.so"]
        if elf.interpreter and "ld-musl" in elf.interpreter:
            musl_names.append(elf.interpreter)
        if musl and (glibc_versions or "libc.so.6" in elf.needed):
            problems.append(
                f"{elf.path} is built against glibc ({', '.join(glibc_versions) or 'libc.so.6'})"
                ", not musl"
            )
        if not musl and musl_names:
            problems.append(f"{elf.path} is built against musl ({', '.join(musl_names)})")
    return problems


# --- auditwheel --------------------------------------------------------------------------


def _auditwheel_arch(arch: str) -> Any:
    from auditwheel.architecture import Architecture

    try:
        return Architecture(arch_info(arch).policy_arch)
    except (ValueError, ConfigError):
        raise AuditError(f"auditwheel has no policies for arch {arch!r}") from None


def _libc(musl: bool) -> Any:
    from auditwheel.libc import Libc

    return Libc.MUSL if musl else Libc.GLIBC


def _analyze(wheel: Path, musl: bool, arch: str) -> Any:
    """auditwheel's ``analyze_wheel_abi`` with the libc and arch given, never guessed."""
    try:
        from auditwheel import wheel_abi
    except ImportError:  # pragma: no cover - a dependency of edgeforge
        raise MissingToolError("auditwheel is not installed: pip install 'auditwheel>=6.3'")\
            from None
    from auditwheel.error import NonPlatformWheelError

    # get_wheel_elfdata is an lru_cache keyed by the path: a rewritten wheel must be re-read.
    cache_clear = getattr(getattr(wheel_abi, "get_wheel_elfdata", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()
    exclude = _MUSL_EXCLUDE if musl else frozenset()
    params = inspect.signature(wheel_abi.analyze_wheel_abi).parameters
    libc, architecture = _libc(musl), _auditwheel_arch(arch)
    options = {"disable_isa_ext_check": False, "allow_graft": False}
    kwargs = {k: v for k, v in options.items() if k in params}
    try:
        if "libc" in params:  # auditwheel >= 6.3
            return wheel_abi.analyze_wheel_abi(libc, architecture, wheel, exclude, **kwargs)
        from auditwheel.policy import WheelPolicies

        policies = WheelPolicies(libc=libc, arch=architecture)
        return wheel_abi.analyze_wheel_abi(policies, str(wheel), exclude, **kwargs)
    except NonPlatformWheelError as err:
        raise AuditError(f"{wheel.name}: auditwheel found no {arch} binary: {err}") from None


def _policy_problems(
    imports: list[VersionedImport], symbol_versions: Mapping[str, Iterable[str]]
) -> list[str]:
    """Imports whose version is not in the policy's table (as auditwheel decides it)."""
    offending = []
    for imp in imports:
        prefix, _, number = imp.version.partition("_")
        allowed = symbol_versions.get(prefix)
        if allowed is not None and number not in allowed:
            offending.append(str(imp))
    return sorted(set(offending), key=lambda s: (_version_key(s.split("@")[1]), s))


def _audit_with_auditwheel(
    wheel: Path, imports: list[VersionedImport], toolchain: Toolchain,
    system_libraries: frozenset[str] = frozenset(),
) -> tuple[str, list[str], list[str], list[str], list[str]]:
    musl = toolchain.libc == "musl"
    # auditwheel logs through `logging`; keep its warnings about this host out of the way.
    logger = logging.getLogger("auditwheel")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        info = _analyze(wheel, musl, toolchain.arch)
    finally:
        logger.setLevel(level)
    policies = info.policies
    promised_name = toolchain.wheel_tags[0]
    try:
        promised = policies.get_policy_by_name(promised_name)
    except LookupError:
        known = ", ".join(p.name for p in policies)
        raise AuditError(
            f"target {toolchain.name} promises {promised_name}, which auditwheel does not know "
            f"(it knows: {known})"
        ) from None
    best = info.overall_policy
    ref = info.external_refs[promised.name]
    external = sorted(ref.libs)
    undeclared = [lib for lib in external if lib not in system_libraries]
    blacklisted = sorted(f"{lib}: {sym}" for lib, syms in ref.blacklist.items() for sym in syms)
    offending = _policy_problems(imports, promised.symbol_versions)
    problems: list[str] = []
    if best < promised:
        if offending:
            problems.append(f"symbols newer than {promised.name}: {', '.join(offending)}")
        if undeclared:
            problems.append(f"libraries outside the {promised.name} whitelist: "
                            f"{', '.join(undeclared)} (a recipe may declare the ones users "
                            "install themselves in [wheel] system-libraries)")
        if blacklisted:
            problems.append(f"blacklisted symbols: {', '.join(blacklisted)}")
        if info.machine_policy == policies.linux:
            problems.append("ISA extensions beyond the baseline of the architecture")
        if not problems and undeclared == external:
            problems.append(f"auditwheel rates the binaries {best.name}")
    return best.name, external, offending, blacklisted, problems


def _audit_without_policy(
    elves: list[ElfFile],
    imports: list[VersionedImport],
    toolchain: Toolchain,
    system_libraries: frozenset[str] = frozenset(),
) -> tuple[str, list[str], list[str], list[str], list[str]]:
    """A ``linux_*`` target: symbol versions against the toolchain's libc floor.

    GLIBC_ versions are compared with ``toolchain.libc_version``; GLIBCXX/CXXABI/GCC versions
    and the libraries with the manylinux policy of that glibc for the nearest arch auditwheel
    knows (armv7l for armv6l), when there is one.
    """
    problems: list[str] = []
    floor = tuple(int(p) for p in toolchain.libc_version.split("."))
    offending = sorted(
        (str(i) for i in imports
         if i.version.startswith("GLIBC_") and _version_key(i.version)[1] > floor),
        key=lambda s: (_version_key(s.split("@")[1]), s),
    )
    external: list[str] = []
    reference = _reference_policy(toolchain)
    if reference is not None:
        table = {k: v for k, v in reference.symbol_versions.items() if k != "GLIBC"}
        offending += [s for s in _policy_problems(imports, table) if s not in offending]
        provided = {Path(e.path).name for e in elves}
        external = sorted({
            n for e in elves for n in e.needed
            if n not in reference.whitelist and n not in provided and "ld-linux" not in n
            and n not in system_libraries
        })
    if offending:
        problems.append(f"symbols newer than glibc {toolchain.libc_version}: "
                        f"{', '.join(offending)}")
    if external:
        problems.append(f"libraries outside the glibc {toolchain.libc_version} whitelist: "
                        f"{', '.join(external)}")
    return f"linux_{toolchain.arch}", external, offending, [], problems


def _reference_policy(toolchain: Toolchain) -> Any | None:
    if toolchain.libc != "glibc":
        return None
    try:
        from auditwheel.policy import WheelPolicies

        policies = WheelPolicies(libc=_libc(False), arch=_auditwheel_arch(toolchain.arch))
        name = f"manylinux_{toolchain.libc_version.replace('.', '_')}_" \
               f"{arch_info(toolchain.arch).policy_arch}"
        return policies.get_policy_by_name(name)
    except (AuditError, LookupError, TypeError):
        return None
