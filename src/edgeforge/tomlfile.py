"""Reading declarative TOML data with errors that name the file and the key."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError

T = TypeVar("T")


def load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"malformed TOML: {err}", path=path) from None


class Table:
    """A TOML table that knows where it came from, so every error names the file and key."""

    def __init__(self, data: dict[str, Any], path: Path, prefix: str = ""):
        self.data = data
        self.path = path
        self.prefix = prefix
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=self._key(key))

    def _get(self, key: str, kind: type[T] | tuple[type, ...], default: Any, required: bool) -> Any:
        self._seen.add(key)
        if key not in self.data:
            if required:
                raise self.error(key, "missing required key")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            kinds = (kind,) if isinstance(kind, type) else kind
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(key, f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def str(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        return self._get(key, str, default, required)

    # Below here, str, bool, int and float in the class body name these methods, so the
    # annotations spell out the builtin types.
    def bool(self, key: builtins.str, default: builtins.bool = False) -> builtins.bool:
        value: builtins.bool = self._get(key, bool, default, False)
        return value

    def int(self, key: builtins.str, default: builtins.int | None = None, *,
            required: builtins.bool = False) -> Any:
        return self._get(key, int, default, required)

    def float(self, key: builtins.str, default: builtins.float | None = None) -> Any:
        return self._get(key, float, default, False)

    def str_list(self, key: builtins.str, default: list[builtins.str] | None = None, *,
                 required: builtins.bool = False) -> list[builtins.str]:
        value = self._get(key, list, default if default is not None else [], required)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{key}[{i}]", f"expected a string, got {item!r}")
        return list(value)

    def str_map(self, key: builtins.str) -> dict[builtins.str, builtins.str]:
        """A table of string values (numbers and booleans are turned into CMake-style strings)."""
        value = self._get(key, dict, {}, False)
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, bool):
                out[k] = "ON" if v else "OFF"
            elif isinstance(v, (str, int, float)):
                out[k] = str(v)
            else:
                raise self.error(f"{key}.{k}", f"expected a string, number or boolean, got {v!r}")
        return out

    def table(self, key: builtins.str, *, required: builtins.bool = False) -> Table:
        value = self._get(key, dict, {}, required)
        return Table(value, self.path, self._key(key))

    def tables(self, key: builtins.str, *, required: builtins.bool = False) -> list[Table]:
        value = self._get(key, list, [], required)
        if required and not value:
            raise self.error(key, "needs at least one entry")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{i}]", f"expected a table, got {item!r}")
            out.append(Table(item, self.path, f"{self._key(key)}[{i}]"))
        return out

    def choice(self, key: builtins.str, choices: tuple[builtins.str, ...],
               default: builtins.str | None = None) -> Any:
        value = self.str(key, default, required=default is None)
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def reject_unknown(self) -> None:
        """Unknown keys are typos until proven otherwise: fail on them."""
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            raise self.error(unknown[0], f"unknown key (known: {', '.join(sorted(self._seen))})")
