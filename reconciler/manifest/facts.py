"""What a server rule sees of one document: its configuration, the values as written, and
where each field is. A rule answers with findings: (field path, what is wrong, what to write
instead)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from reconciler.model import Location
from reconciler.units import format_duration

#: (the field path it is reported at, the message, the hint)
Finding = tuple[str, str, str | None]


class Facts(NamedTuple):
    config: Mapping[str, Any]
    raw: Mapping[str, str]
    """each scalar as the manifest wrote it, by field path"""
    where: Callable[[str], Location]
    """where a field path is written"""

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def on(self, flag: str) -> bool:
        return self.config.get(flag) is True

    def off(self, flag: str) -> bool:
        return self.config.get(flag) is False

    def positive(self, key: str) -> bool:
        value = self.config.get(key)
        return isinstance(value, int) and value > 0

    def written(self, path: str) -> str:
        """A duration as the manifest wrote it."""
        return self.raw.get(path) or format_duration(self.config[path])

    def line(self, path: str) -> int:
        return self.where(path).line
