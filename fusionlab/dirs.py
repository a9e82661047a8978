"""Where fusionlab keeps files outside a run folder, and how processes share them.

Folders (each overridable by an environment variable; defaults from ``platformdirs``, so
they follow the platform's conventions: ``~/.cache/fusionlab`` on Linux,
``~/Library/Caches/fusionlab`` on macOS, ``%LOCALAPPDATA%\\fusionlab\\Cache`` on Windows):

=====================  =====================  ==============================================
function               variable               holds
=====================  =====================  ==============================================
:func:`cache_dir`      ``FUSIONLAB_CACHE``    text embeddings (``text/``), cached teachers
                                              (``teachers/``) and projectors (``projectors/``),
                                              memory models (``memory/``), compiled C kernels
                                              (``native/``)
:func:`models_dir`     ``FUSIONLAB_MODELS``   local model weights (default ``<cache>/models``)
:func:`data_dir`       ``FUSIONLAB_DATA``     datasets named by grid files (``$FUSIONLAB_DATA/MSRS``)
:func:`shared_dir`     ``FUSIONLAB_SHARED``   the read-only reference folder beside a checkout
                                              (``data/*/test``, ``data/train``, peer weights)
=====================  =====================  ==============================================

:func:`file_lock` is the one inter-process lock (``filelock``: ``flock`` on POSIX,
``msvcrt`` on Windows): parallel runs of a grid train a shared teacher once, and two
``fusionlab ablate`` processes never run the same grid at once.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from .errors import OutputError

APP_NAME = "fusionlab"


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Root of fusionlab's caches: ``$FUSIONLAB_CACHE``, else the platform's user cache folder."""
    import platformdirs

    return _env_path("FUSIONLAB_CACHE") or Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """Local model weights (open_clip, MLLMs): ``$FUSIONLAB_MODELS``, else ``<cache_dir>/models``."""
    return _env_path("FUSIONLAB_MODELS") or cache_dir() / "models"


def data_dir() -> Path:
    """Datasets: ``$FUSIONLAB_DATA``, else the platform's user data folder."""
    import platformdirs

    return _env_path("FUSIONLAB_DATA") or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def shared_dir() -> Path:
    """The shared reference folder: ``$FUSIONLAB_SHARED``, else ``shared/`` beside the checkout
    this package runs from (it may not exist: callers check)."""
    return _env_path("FUSIONLAB_SHARED") or Path(__file__).resolve().parents[2] / "shared"


#: the variables a grid file or a training config may use without setting them (they have the defaults above)
DEFAULT_VARIABLES = {"FUSIONLAB_CACHE": cache_dir, "FUSIONLAB_MODELS": models_dir, "FUSIONLAB_DATA": data_dir,
                     "FUSIONLAB_SHARED": shared_dir}


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, blocking: bool = True) -> Iterator[int]:
    """Hold an exclusive inter-process lock on ``path`` (created if needed); yields its file
    descriptor.

    Args:
        blocking: wait for the lock; ``False`` raises :class:`BlockingIOError` at once when
            another process holds it.

    The OS releases the lock when its holder dies. A child process started with the
    descriptor in ``pass_fds`` shares the lock: if this process is killed while the child
    runs, the child keeps it (leaving the block normally unlocks it for both, so leave it
    only after the child ended). The lock file is kept, so waiters and children always lock
    the same file.
    """
    import filelock

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file in the way, read-only disk: one line naming the folder
        raise OutputError(f"{path.parent}: cannot write here ({e.strerror or e})") from None
    fds: list[int] = []
    lock = filelock.FileLock(path, blocking=blocking, thread_local=False, preserve_lock_file=True,
                             on_acquired=fds.append)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise BlockingIOError(f"{path} is locked by another process") from None
    try:
        yield fds[-1]
    finally:
        lock.release()
