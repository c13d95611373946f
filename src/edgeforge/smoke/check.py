"""The smoke step: run the recipe's smoke program on the target (under QEMU) and on the host,
and check that their outputs agree.

Targets with a Debian Python run the recipe's Python script in a Debian root of the target's
architecture, with the wheel installed by the host's pip. musl targets (Debian has no musl
Python) compile the recipe's C driver against the wheel's library and run it with Debian's
musl loader; Windows x86_64 runs the same driver against the DLL under Debian's wine64.
Either way the program prints one JSON object, compared with the host's. Targets nothing
here can run (macOS, Windows arm64; toolchain runner ``link-only``) get the link of the
driver against the library as their smoke test, and their report says it did not run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..builders.compilers import Compilers
from ..compare import differences
from ..errors import SmokeError
from ..log import Logger
from ..recipe import Recipe
from ..toolchain import Toolchain
from . import qemu, roots, wine
from .driver import build_driver


@dataclass(frozen=True)
class SmokeResult:
    target: str
    runner: str  # what ran, in words
    command: list[str]
    output: dict[str, Any]
    reference: dict[str, Any] | None
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        lines = [f"smoke {self.target}: {self.runner}",
                 f"  ran: {' '.join(self.command)}",
                 f"  output: {json.dumps(self.output, sort_keys=True)[:400]}"]
        if self.reference is None:
            lines.append("  not compared with the host (no reference)")
        else:
            lines.append("  outputs match the host's" if self.passed else
                         "  outputs differ from the host's:")
            lines += [f"    {m}" for m in self.mismatches]
        return "\n".join(lines)


def parse_json_output(stdout: str, what: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data: dict[str, Any] = json.loads(line)  # a line starting with {: an object
                return data
            except json.JSONDecodeError as err:
                raise SmokeError(f"{what} printed malformed JSON: {err}: {line[:200]}") from None
    raise SmokeError(f"{what} printed no JSON object; its output was:\n{stdout[-2000:]}")


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        raise SmokeError(f"{what} failed (exit {proc.returncode}):\n"
                         f"{(proc.stdout or '')[-2000:]}\n{(proc.stderr or '')[-4000:]}")


def _pythonpath(site: Path, extra: dict[str, str]) -> str:
    paths = [str(site)]
    if extra.get("EDGEFORGE_SMOKE_PYTHONPATH"):
        paths.append(extra["EDGEFORGE_SMOKE_PYTHONPATH"])
    return os.pathsep.join(paths)


def _data_env(extra: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in extra.items() if k.startswith("EDGEFORGE_SOURCE_")}


def host_output(recipe: Recipe, reference_wheel: Path, work: Path,
                extra: dict[str, str]) -> dict[str, Any]:
    """Run the recipe's smoke script with the host's Python and the host's wheel."""
    assert recipe.smoke.script is not None
    site = work / "smoke" / "host-site"
    if site.exists():
        shutil.rmtree(site)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--disable-pip-version-check", "--target", str(site),
                          str(reference_wheel)], capture_output=True, text=True, check=False)
    _check(pip, f"pip install of the host reference {reference_wheel.name}")
    script = recipe.directory / recipe.smoke.script
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env={"PYTHONPATH": _pythonpath(site, extra), "PATH": "/usr/bin:/bin",
                               **_data_env(extra)},
                          timeout=recipe.smoke.timeout, check=False)
    _check(proc, f"the host run of {script.name}")
    return parse_json_output(proc.stdout, f"the host run of {script.name}")


def _python_smoke(recipe: Recipe, toolchain: Toolchain, wheel: Path, work: Path,
                  cache_dir: Path, logger: Logger,
                  extra: dict[str, str]) -> tuple[str, list[str], dict[str, Any]]:
    assert recipe.smoke.script is not None
    spec = toolchain.smoke
    root = qemu.ensure_smoke_root(toolchain, cache_dir, logger, packages=recipe.smoke.packages)
    site = qemu.install_wheels(root, [wheel], toolchain.wheel_tags, work / "smoke" / "site")
    script = recipe.directory / recipe.smoke.script
    argv = [str(root.python), str(script)]
    proc = qemu.run_in_root(root, toolchain, argv,
                            env={"PYTHONPATH": _pythonpath(site, extra), **_data_env(extra)},
                            timeout=recipe.smoke.timeout)
    _check(proc, f"{script.name} on {toolchain.name}")
    how = "under " + spec.qemu if spec.qemu else "natively, through the root's own loader"
    runner = (f"Debian {spec.debian_suite}/{spec.debian_arch} Python {root.python_version} "
              f"{how}, {wheel.name} installed by pip")
    command = roots.target_argv(root, qemu.qemu_command(toolchain), argv, [])
    return runner, command, parse_json_output(proc.stdout, script.name)


def _c_driver_smoke(recipe: Recipe, toolchain: Toolchain, wheel: Path, work: Path,
                    compilers: Compilers, cache_dir: Path, logger: Logger,
                    extra: dict[str, str]) -> tuple[str, list[str], dict[str, Any]]:
    spec = toolchain.smoke
    built = build_driver(recipe, toolchain, wheel, work, compilers)
    driver, driver_src = built.program, built.source
    root = qemu.ensure_smoke_root(toolchain, cache_dir, logger)
    loader = roots.musl_loader(root)
    if loader is None:
        raise SmokeError(f"Debian's musl package for {spec.debian_arch} has no loader")
    proc = qemu.run_in_root(root, toolchain, [str(driver)], env=_data_env(extra),
                            timeout=recipe.smoke.timeout)
    run = roots.target_argv(root, qemu.qemu_command(toolchain), [str(driver)], [])
    _check(proc, f"the smoke driver on {toolchain.name}")
    how = f"under {spec.qemu}" if spec.qemu else "natively"
    runner = (f"C driver {driver_src.name} (Debian has no musl Python) with Debian's musl "
              f"loader {loader}, {how}")
    return runner, run, parse_json_output(proc.stdout, driver_src.name)


def _wine_smoke(recipe: Recipe, toolchain: Toolchain, wheel: Path, work: Path,
                compilers: Compilers, cache_dir: Path, logger: Logger,
                extra: dict[str, str]) -> tuple[str, list[str], dict[str, Any]]:
    built = build_driver(recipe, toolchain, wheel, work, compilers)
    for lib in built.libraries:  # Windows' loader looks beside the program first
        shutil.copyfile(lib, built.program.parent / lib.name)
    argv = [str(built.program)]
    proc = wine.run_under_wine(argv, cache_dir, logger, env=_data_env(extra),
                               cwd=built.program.parent, timeout=recipe.smoke.timeout)
    _check(proc, f"the smoke driver on {toolchain.name} under wine")
    runner = (f"C driver {built.source.name} under Debian's {wine.wine_version()} (wine64), "
              f"linked against {', '.join(lib.name for lib in built.libraries)} through "
              "import libraries made from their export tables")
    return runner, [*wine.wine_command(), *argv], parse_json_output(proc.stdout,
                                                                     built.source.name)


def _link_only_smoke(recipe: Recipe, toolchain: Toolchain, wheel: Path, work: Path,
                     compilers: Compilers) -> tuple[str, list[str], dict[str, Any]]:
    from ..audit_native import read_binary

    fmt = toolchain.binary_format
    built = build_driver(recipe, toolchain, wheel, work, compilers)
    program = read_binary(built.program.read_bytes(), built.program.name, fmt)
    expected = fmt.arch(toolchain.arch).machine
    names = {lib.name for lib in built.libraries}
    linked = sorted(n for n in program.needed if n.rsplit("/", 1)[-1] in names)
    if program.machine != expected or program.is_library or not linked:
        raise SmokeError(f"the smoke driver linked for {toolchain.name} is {fmt.title} "
                         f"{program.machine} (expected {expected}) and needs "
                         f"{', '.join(program.needed)}, not the wheel's "
                         f"{', '.join(sorted(names))}")
    runner = (f"link test only, not run (nothing here runs {toolchain.name} programs): C driver "
              f"{built.source.name} compiled and linked against "
              f"{', '.join(lib.name for lib in built.libraries)}")
    output = {"linked": built.program.name, "machine": program.machine,
              "needs": list(program.needed)}
    return runner, [], output


def require_runner(toolchain: Toolchain) -> None:
    """Fail now, not after a long build, when the smoke's emulator (QEMU, wine) is missing."""
    if toolchain.smoke.runner == "wine":
        wine.wine_command()
    else:
        qemu.qemu_command(toolchain)


def run_smoke(recipe: Recipe, toolchain: Toolchain, wheel: Path, reference_wheel: Path | None,
              compilers: Compilers, cache_dir: Path, work: Path, logger: Logger,
              extra: dict[str, str] | None = None) -> SmokeResult:
    extra = extra or {}
    start = time.monotonic()
    runner_kind = toolchain.smoke.runner
    if runner_kind != "python" and recipe.smoke.c_driver is None:
        raise SmokeError(f"{toolchain.name} has no Python to run the smoke script; the recipe "
                         "needs [smoke] c-driver to smoke-test it")
    if runner_kind == "c-driver":
        runner, command, output = _c_driver_smoke(recipe, toolchain, wheel, work, compilers,
                                                  cache_dir, logger, extra)
    elif runner_kind == "wine":
        runner, command, output = _wine_smoke(recipe, toolchain, wheel, work, compilers,
                                              cache_dir, logger, extra)
    elif runner_kind == "link-only":
        runner, command, output = _link_only_smoke(recipe, toolchain, wheel, work, compilers)
        reference_wheel = None  # nothing ran: no output to compare
    else:
        if recipe.smoke.script is None:
            raise SmokeError(f"recipe {recipe.name} has no [smoke] script")
        runner, command, output = _python_smoke(recipe, toolchain, wheel, work, cache_dir,
                                                logger, extra)
    reference = None
    mismatches: list[str] = []
    if reference_wheel is not None and recipe.smoke.script is not None:
        reference = host_output(recipe, reference_wheel, work, extra)
        mismatches = differences(output, reference, recipe.smoke.tolerance,
                                 ignore=recipe.smoke.ignore_keys)
    result = SmokeResult(target=toolchain.name, runner=runner, command=command, output=output,
                         reference=reference, mismatches=mismatches,
                         seconds=time.monotonic() - start)
    if mismatches:
        raise SmokeError(result.summary())
    return result
