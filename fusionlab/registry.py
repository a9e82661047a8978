"""A tiny name -> builder registry, one instance per kind (BasicSR style, no option machinery).

Example::

    FUSION_MODULES = Registry("fusion module")

    @FUSION_MODULES.register("concat_conv1x1")
    class ConcatConv1x1(nn.Module): ...

    FUSION_MODULES.build({"type": "concat_conv1x1", "dim": 32})
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

from .errors import ConfigError


class Registry:
    """Maps names to classes or factory functions of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None, obj: Callable[..., Any] | None = None):
        """Register ``obj`` under ``name``; usable as ``@reg.register()`` or ``@reg.register("x")``."""

        def _add(o: Callable[..., Any]) -> Callable[..., Any]:
            key = name or o.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._items[key] = o
            return o

        if obj is not None:
            return _add(obj)
        if callable(name):  # used as bare @reg.register
            o, name = name, None
            return _add(o)
        return _add

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ConfigError(f"unknown {self.kind} '{name}' (known: {known})") from None

    def build(self, cfg: dict | str, **overrides: Any) -> Any:
        """Build from ``{"type": name, **kwargs}`` (or just a name), ``overrides`` win."""
        if isinstance(cfg, str):
            cfg = {"type": cfg}
        cfg = dict(cfg)
        if "type" not in cfg:
            raise ConfigError(f"{self.kind} config needs a 'type' key, got {sorted(cfg)}")
        name = cfg.pop("type")
        cfg.update(overrides)
        return self.get(name)(**cfg)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
