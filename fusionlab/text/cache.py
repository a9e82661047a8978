"""On-disk cache of text embeddings, keyed by (encoder id, text).

Layout: ``<cache_dir>/<encoder id, sanitised>/<h[:2]>/<h>.npz`` with ``h`` = SHA-256 of
``encoder_id + "\\0" + text``. Each entry stores the embedding AND the text (verified on
read, so a hash collision or a stray file can never return a wrong vector).

Why one small file per text: writes are atomic (temp file + rename, fusionlab.io), so any
number of processes (parallel ablation runs, DataLoader workers) can read and write the
same cache without locks - a reader sees a whole entry or none, and two writers of the same
entry write the same bytes. A corrupt entry (e.g. a disk filled up) is treated as missing
and rewritten.

Default location: ``<cache_dir>/text`` (:func:`fusionlab.dirs.cache_dir`: ``$FUSIONLAB_CACHE``,
else the user cache folder, ``~/.cache/fusionlab`` on Linux).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..dirs import cache_dir
from ..errors import OutputError
from ..io import atomic_write_bytes


def default_text_cache_dir() -> Path:
    """``<cache_dir>/text`` (``$FUSIONLAB_CACHE``, see :mod:`fusionlab.dirs`)."""
    return cache_dir() / "text"


class EmbeddingCache:
    """Disk cache of float32 vectors for one encoder.

    Args:
        encoder_id: identifies the encoder AND its weights (different weights must use a
            different id).
        root: cache folder (default :func:`default_text_cache_dir`).
    """

    def __init__(self, encoder_id: str, root: str | os.PathLike | None = None):
        self.encoder_id = encoder_id
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id)[:80]
        digest = hashlib.sha256(encoder_id.encode()).hexdigest()[:10]
        self.dir = Path(root) if root is not None else default_text_cache_dir()
        self.dir = self.dir / f"{safe}-{digest}"
        self._warned = False

    def _path(self, text: str) -> Path:
        h = hashlib.sha256((self.encoder_id + "\0" + text).encode()).hexdigest()
        return self.dir / h[:2] / f"{h}.npz"

    def get(self, text: str) -> np.ndarray | None:
        p = self._path(text)
        try:
            with np.load(p, allow_pickle=False) as z:
                if str(z["text"]) != text:
                    return None
                return np.asarray(z["emb"], dtype=np.float32)
        except FileNotFoundError:
            return None
        except Exception:  # corrupt / truncated entry: recompute and overwrite
            return None

    def put(self, text: str, emb: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, emb=np.asarray(emb, dtype=np.float32), text=np.array(text))
        try:
            atomic_write_bytes(self._path(text), buf.getvalue())
        except (OutputError, OSError) as e:
            # A read-only or full cache must not stop training: warn once, keep going.
            if not self._warned:
                warnings.warn(f"text embedding cache {self.dir} is not writable ({e}); continuing without it",
                              RuntimeWarning, stacklevel=2)
                self._warned = True

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*/*.npz")) if self.dir.is_dir() else 0
