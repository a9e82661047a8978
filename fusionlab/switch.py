"""Process-wide on/off settings backed by an environment variable.

fusionlab has two: ``FUSIONLAB_FAST_KERNELS`` (:func:`fusionlab.models.kernels.use_fast_kernels`)
and ``FUSIONLAB_NATIVE`` (:func:`fusionlab.native.use_native`)::

    FAST = EnvSwitch("FUSIONLAB_FAST_KERNELS")
    FAST.on()                  # the variable, read at every call (on unless 0/false/no/off)
    FAST.use(False)            # off from now on, whatever the variable says
    with FAST.use(True): ...   # on inside the block, the previous setting back on exit
"""
from __future__ import annotations

import os

#: values of the variable that switch it off (case-insensitive)
OFF = ("0", "false", "no", "off")


class EnvSwitch:
    """An on/off setting: the environment variable ``env`` unless set in code with :meth:`use`."""

    def __init__(self, env: str):
        self.env = env
        self._override: bool | None = None

    def on(self) -> bool:
        if self._override is not None:
            return self._override
        return os.environ.get(self.env, "1").strip().lower() not in OFF

    def use(self, enabled: bool = True) -> "_Setting":
        """Set the switch now; as a context manager the previous setting comes back on exit."""
        return _Setting(self, bool(enabled))


class _Setting:
    def __init__(self, switch: EnvSwitch, enabled: bool):
        self._switch, self._previous = switch, switch._override
        switch._override = enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._switch._override = self._previous
        return False
