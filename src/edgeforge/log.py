"""Readable progress for long steps: step headers with timings, and progress bars.

No global state: a ``Logger`` is created by the CLI and passed down.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Logger:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    verbose: bool = False
    _depth: int = 0

    @property
    def interactive(self) -> bool:
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    def info(self, message: str) -> None:
        print(f"{'  ' * self._depth}{message}", file=self.stream, flush=True)

    def debug(self, message: str) -> None:
        if self.verbose:
            self.info(message)

    def warning(self, message: str) -> None:
        self.info(f"warning: {message}")

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        """A titled step: prints ``==> title`` and, when done, how long it took."""
        self.info(f"==> {title}")
        start = time.monotonic()
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            self.info(f"<== {title}: failed after {time.monotonic() - start:.1f}s")
            raise
        self._depth -= 1
        self.info(f"<== {title}: done in {time.monotonic() - start:.1f}s")

    def progress(self, label: str, total: int | None) -> Progress:
        return Progress(self, label, total)


@dataclass
class Progress:
    """A progress bar on a terminal; a few plain lines otherwise (CI logs stay short)."""

    logger: Logger
    label: str
    total: int | None
    done: int = 0
    _last_print: float = 0.0
    _last_fraction_logged: float = -1.0

    def advance(self, amount: int) -> None:
        self.done += amount
        now = time.monotonic()
        if self.logger.interactive:
            if now - self._last_print > 0.1:
                self._last_print = now
                self.logger.stream.write("\r" + self._render())
                self.logger.stream.flush()
        elif self.total:
            fraction = self.done / self.total
            if fraction - self._last_fraction_logged >= 0.25:
                self._last_fraction_logged = fraction
                self.logger.info(self._render())

    def finish(self) -> None:
        if self.logger.interactive:
            self.logger.stream.write("\r" + self._render() + "\n")
            self.logger.stream.flush()

    def _render(self) -> str:
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * 30)
            bar = "#" * filled + "-" * (30 - filled)
            return f"{self.label} [{bar}] {_size(self.done)}/{_size(self.total)}"
        return f"{self.label} {_size(self.done)}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
