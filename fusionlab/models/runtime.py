"""CPU runtime tuning for inference on large images.

At 480x640 a forward pass allocates and frees hundreds of feature maps of 10-300 MB.
glibc's ``malloc`` serves blocks above its mmap threshold (at most 32 MB) with fresh
``mmap`` calls and returns them to the OS on ``free``, so every pass page-faults through
all of its activations again: measured on the 16-dim student at 480x640 (1 thread),
6.2 s of computation came with 4.6 s of kernel time for 2.6 M page faults.
:func:`tune_cpu_allocator` makes glibc keep freed memory for reuse (the setting PyTorch's
CPU performance guide recommends via ``MALLOC_*`` variables or jemalloc/tcmalloc), which
removes that kernel time. The price: the process keeps its peak memory reserved.

It is process-wide, so the library never calls it on import; ``fusionlab fuse``,
``fusionlab profile``, :func:`fusionlab.models.profile.profile_models` and
``benchmarks/model_efficiency.py`` do. Set ``FUSIONLAB_MALLOC_TUNING=0`` to disable.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_done: bool | None = None


def _libc_function(name: str):
    """A function of glibc by name (``mallopt``, ``malloc_trim``), or None where unavailable."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def tune_cpu_allocator(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 36) -> bool:
    """Keep freed tensor memory in the heap for reuse (glibc only; idempotent).

    Args:
        mmap_threshold: blocks at least this large still come from ``mmap`` (default 1 GiB).
        trim_threshold: free heap memory above this is returned to the OS (default 64 GiB,
            i.e. practically never).

    Returns:
        True if glibc accepted the settings, False elsewhere (macOS, Windows, musl) or
        when disabled with ``FUSIONLAB_MALLOC_TUNING=0``.
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("FUSIONLAB_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    limit = 2 ** 31 - 1  # mallopt takes an int
    ok = (mallopt(_M_MMAP_THRESHOLD, min(mmap_threshold, limit)) == 1
          and mallopt(_M_TRIM_THRESHOLD, min(trim_threshold, limit)) == 1
          and mallopt(_M_TOP_PAD, 64 << 20) == 1)
    _done = bool(ok)
    return _done


def release_free_memory() -> bool:
    """Give freed heap memory back to the operating system (glibc ``malloc_trim``).

    :func:`tune_cpu_allocator` keeps freed memory for reuse; after a one-off large
    computation (e.g. measuring a model's memory) this returns it, so the process's resident
    size again reflects what it holds. Returns False where unavailable.
    """
    trim = _libc_function("malloc_trim") if sys.platform.startswith("linux") else None
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(trim(0))

