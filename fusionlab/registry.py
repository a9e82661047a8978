"""A tiny name -> builder registry, one instance per kind (BasicSR style, no option machinery).

Example::

    FUSION_MODULES = Registry("fusion module")

    @FUSION_MODULES.register("concat_conv1x1")
    class ConcatConv1x1(nn.Module): ...

    FUSION_MODULES.build({"type": "concat_conv1x1", "dim": 32})
"""
from __future__ import annotations

import inspect
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
        """Build from ``{"type": name, **kwargs}`` (or just a name), ``overrides`` win.

        Raises:
            ConfigError: unknown name, or an argument the entry does not take (a misspelt
                option fails here instead of being ignored).
        """
        if isinstance(cfg, str):
            cfg = {"type": cfg}
        cfg = dict(cfg)
        if "type" not in cfg:
            raise ConfigError(f"{self.kind} config needs a 'type' key, got {sorted(cfg)}")
        name = cfg.pop("type")
        cfg.update(overrides)
        obj = self.get(name)
        params = _parameters(obj)
        unknown = sorted(set(cfg) - params) if params is not None else []
        if unknown:
            raise ConfigError(f"{self.kind} '{name}' got unknown argument(s) {', '.join(unknown)} "
                              f"(it takes: {', '.join(sorted(params)) or 'none'})")
        return obj(**cfg)

    def accepted(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """The items of ``settings`` that entry ``name`` takes as arguments.

        For settings shared by every entry of a kind (e.g. a network's attention settings,
        offered to every fusion module): each entry takes the ones its constructor names.
        """
        params = _parameters(self.get(name))
        return dict(settings) if params is None else {k: v for k, v in settings.items() if k in params}

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def registered(self) -> list[str]:
        """Registered names in registration order (e.g. the order losses are logged in)."""
        return list(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def _parameters(obj: Callable[..., Any]) -> set[str] | None:
    """Keyword argument names a class's constructor or a function takes; None if it takes any.

    A fusionlab constructor with ``**kwargs`` passes them on to its base class
    (``super().__init__(..., **kw)``), so the bases' arguments count too.
    """
    if not inspect.isclass(obj):
        return _names(obj)
    names: set[str] = set()
    for klass in obj.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        own = _names(vars(klass)["__init__"])
        if own is not None:
            return names | (own - {"self"})
        if not klass.__module__.startswith("fusionlab"):  # **kwargs of foreign code: anything may be valid
            return None
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
    return names


def _names(fn: Callable[..., Any]) -> set[str] | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
