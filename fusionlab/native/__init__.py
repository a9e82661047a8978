"""Optional native CPU kernels: small C files compiled on first use, loaded with ctypes.

Some hot loops have no fused implementation in torch at the sizes fusionlab runs them
(the student's 8x8-window attention with 16-channel heads, the float64 local statistics of
the metrics): torch runs them as many small ops that each sweep memory. The C files next to
this module do the same arithmetic in one pass per window or row band. They are

* compiled once per machine with the system C compiler (``$CC``, else ``cc``/``gcc``/``clang``)
  at ``-O3 -march=native`` into ``<cache_dir>/native/`` (:func:`fusionlab.dirs.cache_dir`),
  under a name hashing the source (with the shared ``*.h``), flags, compiler and CPU, so a
  changed file or another CPU
  never loads a stale binary (about a second per file; no torch headers, no ninja);
* called through ``ctypes`` with raw tensor pointers; a ctypes call releases the GIL, so
  :func:`run_threads` runs a kernel in a few Python threads at once, each taking its
  share of the work taken from a counter (no static split and no OpenMP barrier per op, both
  of which stall on a shared machine);
* optional: without a compiler, on a build error, on a non-float32 / non-CPU tensor, or with
  ``FUSIONLAB_NATIVE=0``, callers run their torch code instead (:func:`load` returns None and
  warns once why). Tests check each kernel against its torch path.

No ``-ffast-math``: results must match the torch code (the kernels' own tolerances are in
their docstrings), so only FMA contraction is allowed; ``-fno-strict-aliasing`` lets the C
build floats from their bits (the softmax's exponential) through a pointer cast.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable

from ..switch import EnvSwitch

SOURCE_DIR = Path(__file__).resolve().parent
CFLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-fPIC", "-shared", "-std=c99", "-fno-math-errno",
          "-fno-strict-aliasing")

_lock = threading.Lock()
_warned: set[str] = set()


_SWITCH = EnvSwitch("FUSIONLAB_NATIVE")


def enabled() -> bool:
    """Whether callers should use the C kernels: the :func:`use_native` setting if one is
    active, else False when ``FUSIONLAB_NATIVE`` is ``0``/``false``/``no``/``off`` (read at
    every call)."""
    return _SWITCH.on()


def use_native(enabled: bool = True):
    """Use the C kernels (True) or the torch code (False), process-wide, over the environment
    variable; as a context manager the previous setting comes back on exit (benchmarks time
    both in one process this way)."""
    return _SWITCH.use(enabled)


def _compiler() -> str | None:
    cc = os.environ.get("CC", "").strip()
    if cc:
        return cc if shutil.which(cc.split()[0]) else None
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return name
    return None


@functools.lru_cache(maxsize=None)
def _compiler_id(cc: str) -> str:
    try:
        out = subprocess.run([*cc.split(), "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0] if out.stdout else cc
    except (OSError, subprocess.SubprocessError):
        return cc


@functools.lru_cache(maxsize=None)
def _cpu_id() -> str:
    """What ``-march=native`` depends on: the CPU's feature flags (Linux) or its name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def _flags() -> tuple[str, ...]:
    return CFLAGS + tuple(f"-D{d}" for d in _defines)


def library_path(name: str, cc: str) -> Path:
    """Where the compiled ``name`` lives: ``<cache_dir>/native/<name>-<hash>.so`` (the hash
    covers the sources, flags - with any :func:`measurement_defines` -, compiler and CPU)."""
    from ..dirs import cache_dir

    h = hashlib.sha256()
    headers = [p.read_bytes() for p in sorted(SOURCE_DIR.glob("*.h"))]  # included by the .c files
    for part in ((SOURCE_DIR / f"{name}.c").read_bytes(), *headers, " ".join(_flags()).encode(),
                 _compiler_id(cc).encode(), _cpu_id().encode(), sys.platform.encode()):
        h.update(part)
        h.update(b"\0")
    return cache_dir() / "native" / f"{name}-{h.hexdigest()[:16]}.so"


def _warn_once(name: str, why: str) -> None:
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"fusionlab native kernel {name!r} unavailable ({why}); using the torch code, "
                      "which gives the same results more slowly", RuntimeWarning, stacklevel=3)


def build(name: str, cc: str | None = None) -> Path:
    """Compile ``<name>.c`` for this machine (if not cached) and return the library's path.

    Raises:
        RuntimeError: no compiler, or the compiler failed (its first error line is quoted).
    """
    cc = cc or _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC or install cc/gcc/clang)")
    out = library_path(name, cc)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    cmd = [*cc.split(), *_flags(), str(SOURCE_DIR / f"{name}.c"), "-o", str(tmp), "-lm"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError(f"{cc} could not run: {e}") from None
    if res.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        first = next((ln for ln in res.stderr.splitlines() if "error" in ln), res.stderr.strip()[:200])
        raise RuntimeError(f"{cc} failed on {name}.c: {first}")
    os.replace(tmp, out)  # atomic: a concurrent process sees no library or a whole one
    return out


_libraries: dict[str, ctypes.CDLL | None] = {}
_defines: tuple[str, ...] = ()
_variants: dict[tuple[str, ...], tuple[dict, dict]] = {}

#: the kernels' measurement switches (``rows.h``): each skips arithmetic the architecture needs
#: beside its multiply-adds, so outputs are wrong and FLOPs unchanged
MEASUREMENT_DEFINES = ("FUSIONLAB_SKIP_LAYERNORM_STATS", "FUSIONLAB_SKIP_GELU_ERF", "FUSIONLAB_SKIP_SOFTMAX_EXP")


@contextlib.contextmanager
def measurement_defines(*defines: str):
    """Within the block, kernels come from libraries compiled with these preprocessor switches
    (a subset of :data:`MEASUREMENT_DEFINES`), built and cached under their own names; the
    libraries loaded before come back on exit. For ``benchmarks/nonfma_share.py``: the
    outputs inside are wrong by design. Not thread-safe against kernels running meanwhile."""
    global _defines
    unknown = set(defines) - set(MEASUREMENT_DEFINES)
    if unknown:
        raise ValueError(f"unknown measurement switch(es) {sorted(unknown)}; known: {list(MEASUREMENT_DEFINES)}")
    key = tuple(sorted(set(defines)))
    with _lock:
        saved = _defines, dict(_libraries), dict(_functions)
        _defines = key
        libs, fns = _variants.get(key, ({}, {}))  # loaded on an earlier visit: no rebuild, no re-hash
        _libraries.clear()
        _libraries.update(libs)
        _functions.clear()
        _functions.update(fns)
    try:
        yield
    finally:
        with _lock:
            _variants[key] = dict(_libraries), dict(_functions)
            _defines = saved[0]
            _libraries.clear()
            _libraries.update(saved[1])
            _functions.clear()
            _functions.update(saved[2])


def load(name: str) -> ctypes.CDLL | None:
    """The compiled library ``name`` (built on first use), or None (disabled or cannot build;
    a RuntimeWarning says why, once per process)."""
    if not enabled():
        return None
    with _lock:
        if name not in _libraries:
            try:
                lib = ctypes.CDLL(str(build(name)))
                # kernels written for 16-float vectors report whether the target keeps them in
                # registers (AVX-512); on AVX2 or NEON they spill and run 15-40x slower than
                # with AVX-512 (measured: FFN 480x640, gcc -mno-avx512f), slower than torch
                usable = getattr(lib, "fusionlab_native_usable", None)
                if usable is not None and not usable():
                    raise RuntimeError("this CPU has no AVX-512: the kernel's 16-float vectors would spill "
                                       "to memory and run slower than torch")
                _libraries[name] = lib
            except (RuntimeError, OSError) as e:
                _warn_once(name, str(e))
                _libraries[name] = None
        return _libraries[name]


_functions: dict[tuple[str, str], Callable] = {}


def function(name: str, symbol: str, argtypes: list, restype=None) -> Callable | None:
    """``symbol`` of library ``name`` with its ctypes signature set, or None (see :func:`load`).
    Looked up once per process: callers may ask on every call."""
    lib = load(name)
    if lib is None:
        return None
    fn = _functions.get((name, symbol))
    if fn is None:
        fn = getattr(lib, symbol)
        fn.argtypes, fn.restype = argtypes, restype
        _functions[(name, symbol)] = fn
    return fn


@functools.lru_cache(maxsize=None)
def _pool(threads: int, pid: int) -> concurrent.futures.ThreadPoolExecutor:
    """Worker threads, per process: a forked child (e.g. a DataLoader worker) inherits the
    parent's executor object without its threads, so it must not reuse it."""
    return concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="fusionlab-native")


def run_threads(fn: Callable[[], None], threads: int) -> None:
    """Call ``fn()`` in ``threads`` threads at once (the calling thread is one of them) and wait.

    ``fn`` must release the GIL (a ctypes call does) and share its work through a counter
    (the kernels take the next few tasks until none are left), so a thread that loses its
    core to another process delays nobody.
    """
    threads = max(1, int(threads))
    futures = [_pool(threads - 1, os.getpid()).submit(fn) for _ in range(threads - 1)] if threads > 1 else []
    fn()
    for f in futures:
        f.result()


def run_shared(fn: Callable, *args, threads: int) -> bool:
    """Run a kernel that takes its tasks from a counter: ``fn(*args, counter)`` in ``threads``
    threads (:func:`run_threads`) with one fresh counter array: ``[0, threads, 0, ...]``, the
    task (or arrival) counter, the thread count and one claim word per thread for the kernels
    that share rows by bands (``rows.h`` ``sched_row``). False if a call returned non-zero (the
    kernels' "could not allocate / does not apply" answer: callers then run their torch code)."""
    threads = max(1, int(threads))
    counter, failed = (ctypes.c_int64 * (2 + threads))(0, threads), []

    def call() -> None:
        if fn(*args, counter):
            failed.append(True)

    run_threads(call, threads)
    return not failed


def ptr(t) -> ctypes.c_void_p:
    """Raw data pointer of a tensor for a ctypes call (the tensor must stay alive)."""
    return ctypes.c_void_p(t.data_ptr())


__all__ = ["enabled", "use_native", "build", "load", "function", "run_threads", "run_shared", "ptr", "library_path", "CFLAGS",
           "MEASUREMENT_DEFINES", "measurement_defines"]
