"""Binary formats (ELF, PE, Mach-O): ``formats.toml`` (package data) -> typed ``BinaryFormat``.

What staging, stripping, the audit and the smoke test need to know about a target's binaries
that depends on the format and not on the CPU: how a shared library is named (``.so``,
``.dll``, ``.dylib``), how a file of the format starts, which strip tool reads it and with
which arguments, what its architectures are called in the wheel tag and the file header. A
toolchain's ``[cmake] system-name`` picks its format; a new platform is a table in the data
file, not a switch in the code.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from pathlib import Path

from . import resources, tomlfile
from .archs import arch_info
from .errors import ConfigError

FORMATS_FILE = resources.shipped("formats.toml")

# How each format's files start (PE: the DOS header; Mach-O: thin 32/64-bit in either byte
# order and universal "fat" files). A property of the format, not a setting: kept here.
_MAGICS = {
    "elf": (b"\x7fELF",),
    "pe": (b"MZ",),
    "macho": (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce",
              b"\xca\xfe\xba\xbe"),
}
_TITLES = {"elf": "ELF", "pe": "PE", "macho": "Mach-O"}


@dataclass(frozen=True)
class FormatArch:
    machine: str  # the header's name for it (LIEF's enum member name for PE and Mach-O)
    tag: str  # the machine part of wheel tags: amd64 (win_amd64), arm64 (macosx_11_0_arm64)
    dlltool: str | None = None  # llvm-dlltool's -m name, for import libraries


@dataclass(frozen=True)
class BinaryFormat:
    key: str  # "elf", "pe", "macho"
    cmake_system_names: tuple[str, ...]
    shared_library_pattern: str  # "lib{name}.so"
    strip_library: tuple[str, ...] | None  # strip's arguments; None: never stripped
    strip_executable: tuple[str, ...] | None
    strip_tools: tuple[str, ...]
    system_libraries: tuple[str, ...] = ()
    runtime_exports: tuple[str, ...] = ()
    archs: dict[str, FormatArch] = field(default_factory=dict)
    executable_suffix: str = ""
    link_flags: tuple[str, ...] = ()  # for every link of the format (CMake's *_LINKER_FLAGS)
    rpath: bool = False  # a program can record where its libraries are (-Wl,-rpath)
    import_libraries: bool = False  # programs link against import libraries, not the DLL
    # set by every CMake toolchain file of the format, under the toolchain's own variables
    cmake_variables: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return _TITLES[self.key]

    @property
    def shared_suffix(self) -> str:
        return self.shared_library_pattern.rsplit("}", 1)[1]  # ".so", ".dll", ".dylib"

    def shared_library(self, name: str) -> str:
        """The file name of shared library ``name``: libedgemath.so / .dll / .dylib."""
        return self.shared_library_pattern.replace("{name}", name)

    @property
    def library_glob(self) -> str:
        """A glob for the shared libraries in a directory (ELF: versioned names too)."""
        glob = self.shared_library("*")
        return glob + "*" if self.key == "elf" else glob

    def library_name(self, filename: str) -> str:
        """The link name of a shared library file: libedgemath.so.1 / .dll / .dylib -> edgemath."""
        prefix, suffix = self.shared_library_pattern.split("{name}")
        stem = filename[len(prefix):] if filename.startswith(prefix) else filename
        return stem.split(suffix, 1)[0]

    def is_shared_library(self, name: str) -> bool:
        return fnmatch.fnmatchcase(Path(name).name, self.library_glob)

    def matches(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` (its first 4 bytes or more) is of this format."""
        return any(head.startswith(m) for m in _MAGICS[self.key])

    def is_binary(self, path: Path) -> bool:
        with path.open("rb") as f:
            return self.matches(f.read(4))

    def strip_argv(self, strip: Path, path: Path) -> list[str] | None:
        """The strip command for ``path``, or None when the format's binaries stay as linked."""
        args = self.strip_library if self.is_shared_library(path.name) else self.strip_executable
        return None if args is None else [str(strip), *args, str(path)]

    def strip_candidates(self, arch: str, is_host: bool) -> list[str]:
        triplet = arch_info(arch).binutils
        out = []
        for tool in self.strip_tools:
            if "{binutils}" in tool:
                if triplet:
                    out.append(tool.replace("{binutils}", triplet))
            elif tool != "strip" or is_host:
                out.append(tool)
        return out

    def arch(self, arch: str) -> FormatArch:
        if arch not in self.archs:
            raise ConfigError(f"edgeforge knows no {self.title} name for architecture {arch!r}; "
                              f"add a [{self.key}.archs.{arch}] table to {FORMATS_FILE}",
                              path=FORMATS_FILE, key=f"{self.key}.archs")
        return self.archs[arch]

    def tag_machine(self, arch: str) -> str:
        """What wheel tags call ``arch`` on this platform (ELF: the arch's own name)."""
        return self.archs[arch].tag if arch in self.archs else arch

    def allows_system_library(self, name: str) -> bool:
        if self.key == "pe":  # Windows file names are case-insensitive
            return any(fnmatch.fnmatch(name.lower(), p.lower()) for p in self.system_libraries)
        return any(fnmatch.fnmatchcase(name, p) for p in self.system_libraries)

    def is_runtime_export(self, symbol: str) -> bool:
        return any(fnmatch.fnmatchcase(symbol, p) for p in self.runtime_exports)


def _format(key: str, t: tomlfile.Table) -> BinaryFormat:
    if key not in _MAGICS:
        raise t.error(key, f"unknown binary format {key!r} (edgeforge reads "
                      f"{', '.join(_MAGICS)})")
    archs = {}
    table = t.table("archs")
    for name in list(table.data):
        at = table.table(name)
        archs[name] = FormatArch(machine=at.str("machine", required=True),
                                 tag=at.str("tag", name), dlltool=at.str("dlltool"))
        at.reject_unknown()
    strip_library = t.str_list("strip-library") if "strip-library" in t.data else None
    strip_executable = t.str_list("strip-executable") if "strip-executable" in t.data else None
    fmt = BinaryFormat(
        key=key,
        cmake_system_names=tuple(t.str_list("cmake-system-names", required=True)),
        shared_library_pattern=t.str("shared-library", required=True),
        strip_library=None if strip_library is None else tuple(strip_library),
        strip_executable=None if strip_executable is None else tuple(strip_executable),
        strip_tools=tuple(t.str_list("strip-tools")),
        system_libraries=tuple(t.str_list("system-libraries")),
        runtime_exports=tuple(t.str_list("runtime-exports")),
        archs=archs,
        executable_suffix=t.str("executable-suffix", ""),
        link_flags=tuple(t.str_list("link-flags")),
        rpath=t.bool("rpath"),
        import_libraries=t.bool("import-libraries"),
        cmake_variables=t.str_map("cmake-variables"),
    )
    if "{name}" not in fmt.shared_library_pattern:
        raise t.error("shared-library", "must contain {name}")
    t.reject_unknown()
    return fmt


@functools.cache
def load_formats(path: Path = FORMATS_FILE) -> dict[str, BinaryFormat]:
    root = tomlfile.Table(tomlfile.load(path), path)
    return {key: _format(key, root.table(key)) for key in list(root.data)}


def format_for_system(cmake_system_name: str, path: Path = FORMATS_FILE) -> BinaryFormat:
    """The format of the binaries a CMake system (a toolchain's ``system-name``) produces."""
    for fmt in load_formats(path).values():
        if cmake_system_name in fmt.cmake_system_names:
            return fmt
    known = sorted(n for f in load_formats(path).values() for n in f.cmake_system_names)
    raise ConfigError(f"edgeforge knows no binary format for CMake system "
                      f"{cmake_system_name!r} (known: {', '.join(known)}); describe it in "
                      f"{path}", path=path)


def detect(head: bytes) -> BinaryFormat | None:
    """The format of a file starting with ``head``, by its magic; None for anything else."""
    for fmt in load_formats().values():
        if fmt.matches(head):
            return fmt
    return None
