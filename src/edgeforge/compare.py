"""Compare a smoke run's JSON output on the target with the host's, within a tolerance."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def differences(target: Any, host: Any, tolerance: float, path: str = "",
                ignore: Iterable[str] = ()) -> list[str]:
    """Every place where ``target`` differs from ``host``: numbers within ``tolerance``
    (absolute, and relative to the host's magnitude), everything else exactly."""
    ignored = set(ignore)
    out: list[str] = []
    where = path or "<root>"
    if isinstance(host, bool) or isinstance(target, bool):
        if host is not target:
            out.append(f"{where}: target {target!r} != host {host!r}")
    elif isinstance(host, (int, float)) and isinstance(target, (int, float)):
        if math.isnan(host) and math.isnan(target):
            return out
        if abs(target - host) > tolerance * max(1.0, abs(host)):
            out.append(f"{where}: target {target!r} != host {host!r} (tolerance {tolerance})")
    elif isinstance(host, dict) and isinstance(target, dict):
        for key in sorted(set(host) | set(target)):
            if key in ignored:
                continue
            if key not in target:
                out.append(f"{path}.{key}: missing on the target")
            elif key not in host:
                out.append(f"{path}.{key}: missing on the host")
            else:
                out += differences(target[key], host[key], tolerance, f"{path}.{key}", ignored)
    elif isinstance(host, list) and isinstance(target, list):
        if len(host) != len(target):
            out.append(f"{where}: target has {len(target)} items, host {len(host)}")
        else:
            for i, (t, h) in enumerate(zip(target, host, strict=True)):
                out += differences(t, h, tolerance, f"{path}[{i}]", ignored)
    elif target != host:
        out.append(f"{where}: target {target!r} != host {host!r}")
    return out
