"""Download, unpack and verify the datasets of :mod:`fusionlab.datasets.catalog`.

Guarantees (what ``fusionlab data fetch`` relies on):

* **Resumable downloads.** Bytes go to ``$FUSIONLAB_DATA/.downloads/<file>.part``; a dropped
  connection is retried (``retries`` times) with an HTTP ``Range`` request from where it
  stopped, and a later run resumes the same ``.part`` file. ``If-Range`` with the server's
  ETag / Last-Modified makes a server whose file changed send it whole instead.
* **Checksums.** When the archive's sha256 is known it is checked before anything is
  unpacked; a mismatch deletes the download (it is complete but wrong, so resuming it
  cannot help) and installs nothing.
* **Atomic install.** The pairs are unpacked into a temporary folder beside the target,
  checked (layout, pairing, pair counts), given a ``MANIFEST.csv`` (sha256 of every file)
  and only then renamed to ``$FUSIONLAB_DATA/<name>``. Any failure (corrupt archive, wrong
  layout, wrong count, Ctrl-C) removes the temporary folder: there is never a half-written
  dataset folder. A corrupt archive is deleted too.
* **Pairs only.** Only image files directly inside the archive folders named by the catalog
  are installed, and only those whose name stem has a partner in the other modality; files
  without a partner are skipped and listed (in the report and ``fusionlab-dataset.json``).

:func:`verify_dataset` / :func:`verify_folder` check an installed dataset, a shared subset
or any folder: layout, pairing (a file without a partner is an error), expected pair counts
and, where a ``MANIFEST.csv`` lists them, the sha256 of every file.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..errors import DatasetError, EmptyInputError, MissingPairError
from .catalog import DatasetInfo, installed_root, shared_root

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")  # as fusionlab.io
MANIFEST = "MANIFEST.csv"
INFO_FILE = "fusionlab-dataset.json"
CHUNK = 1 << 16


def find_pairs(first: Path, second: Path):
    """:func:`fusionlab.data.paired.find_pairs` (strict), imported on use: it brings torch."""
    from ..data.paired import find_pairs as strict_find_pairs

    return strict_find_pairs(first, second)


def resolve_layout(root: Path) -> tuple[Path, Path]:
    """:func:`fusionlab.data.paired.resolve_layout`, imported on use (see :func:`find_pairs`)."""
    from ..data.paired import resolve_layout as layout

    return layout(root)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- download
class _Retry(Exception):
    """A transient failure: the next attempt resumes from the bytes already on disk."""


def _http_date_or_etag(resp) -> str | None:
    return resp.headers.get("ETag") or resp.headers.get("Last-Modified")


def _download_once(url: str, part: Path, meta: Path, timeout: float, progress: bool, label: str) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "fusionlab-data-fetch", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        with contextlib.suppress(OSError, ValueError):
            validator = json.loads(meta.read_text()).get("validator")
            if validator:
                headers["If-Range"] = validator
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # The range starts at/after the end: the .part is complete, or stale if shorter.
            total = (e.headers.get("Content-Range") or "").rpartition("/")[2]
            if total.isdigit() and int(total) == have:
                return
            part.unlink(missing_ok=True)
            raise _Retry("server refused to resume (HTTP 416); starting over") from None
        if e.code in (408, 425, 429, 500, 502, 503, 504):
            raise _Retry(f"HTTP {e.code} {e.reason}") from None
        raise DatasetError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _Retry(f"cannot connect ({_one_line(e.reason if hasattr(e, 'reason') else e)})") from None
    except (OSError, http.client.HTTPException) as e:
        raise _Retry(_one_line(e)) from None
    with resp:
        if resp.status == 206:
            start = (resp.headers.get("Content-Range") or "").removeprefix("bytes ").split("-")[0]
            if not start.isdigit() or int(start) != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"server resumed at byte {start}, not {have}; starting over")
            mode = "ab"
        else:  # 200: the whole file (a server without Range support, or If-Range failed)
            have, mode = 0, "wb"
            meta.write_text(json.dumps({"url": url, "validator": _http_date_or_etag(resp)}))
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=label, file=sys.stderr, dynamic_ncols=True, leave=False,
                   disable=None if progress else True)  # None: only on a terminal
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (OSError, http.client.HTTPException) as e:  # reset, timeout, TLS, short read
                        raise _Retry(f"connection lost ({_one_line(e)})") from None
                    if not block:
                        break
                    try:
                        f.write(block)
                    except OSError as e:
                        raise DatasetError(f"{part}: cannot write ({_one_line(e)}); free space and run "
                                           "the same command again to resume") from None
                    bar.update(len(block))
        finally:
            bar.close()
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Retry(f"connection closed after {size} of {total} bytes")


def resumable_bytes(url: str, dest: str | os.PathLike) -> int:
    """Bytes of ``url`` already in ``dest.part`` that :func:`download` will resume from."""
    part, meta = Path(f"{dest}.part"), Path(f"{dest}.part.json")
    try:
        same = json.loads(meta.read_text()).get("url") == url
    except (OSError, ValueError):
        return 0
    return part.stat().st_size if same and part.exists() else 0


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, timeout: float = 60.0,
             retries: int = 3, backoff: float = 1.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` (via ``dest.part``, resumable) and check its sha256.

    Args:
        sha256: expected hex digest, or None to skip the check.
        timeout: seconds without data before a read/connect is abandoned (then retried).
        retries: extra attempts after a transient failure (each resumes with ``Range``).
        backoff: seconds before the first retry, doubled after each (at most 30).
        progress: tqdm bar on stderr (shown on terminals only).

    Raises:
        DatasetError: HTTP error, still failing after the retries (the ``.part`` is KEPT so
            the next call resumes), or a checksum mismatch (the download is DELETED).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")
    with contextlib.suppress(OSError, ValueError):  # a .part of another URL cannot be resumed
        if part.exists() and json.loads(meta.read_text()).get("url") != url:
            part.unlink()
    if part.exists() and not meta.exists():
        part.unlink()
    attempt = 0
    while True:
        try:
            _download_once(url, part, meta, timeout, progress, dest.name)
            break
        except _Retry as e:
            attempt += 1
            got = part.stat().st_size if part.exists() else 0
            if attempt > retries:
                if got:
                    raise DatasetError(
                        f"{url}: download interrupted after {got} bytes ({e}); {part} is kept: run the "
                        "same command again to resume") from None
                raise DatasetError(f"{url}: download failed ({e})") from None
            time.sleep(min(backoff * 2 ** (attempt - 1), 30.0))
    if sha256:
        digest = sha256_file(part)
        if digest.lower() != sha256.lower():
            part.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            raise DatasetError(f"{url}: sha256 mismatch (got {digest}, expected {sha256.lower()}); "
                               "the download was deleted and nothing was installed")
    os.replace(part, dest)
    meta.unlink(missing_ok=True)
    return dest


# ----------------------------------------------------------------------------- unpack
@dataclass
class InstallReport:
    name: str
    root: Path
    pairs: dict[str, int]
    skipped: list[str] = field(default_factory=list)  # files without a partner, "split/mod/file"
    files: int = 0


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def _members(archive: Path):
    """Yield ``(posix_path, is_file, open_member)`` for every member, in one pass.

    Zip and tar (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) are recognised by their content; a
    tar is read as a stream (one pass through gzip), so a member must be read before the
    next one is yielded."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for zi in zf.infolist():
                yield zi.filename, not zi.is_dir(), (lambda zi=zi: zf.open(zi))
        return
    try:
        is_tar = tarfile.is_tarfile(archive)
    except (OSError, tarfile.TarError, EOFError, zlib.error):
        is_tar = False
    if is_tar:
        with tarfile.open(archive, "r|*") as tf:
            for ti in tf:
                yield ti.name, ti.isfile(), (lambda ti=ti: tf.extractfile(ti))
        return
    with open(archive, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    hint = (" (it is an HTML page: Google Drive / Baidu links need a browser; download the file "
            "by hand and pass it with --archive)") if head.startswith((b"<!doctype html", b"<html")) else ""
    raise DatasetError(f"{archive}: not a zip or tar archive (corrupt or incomplete){hint}; "
                       "nothing was installed")


def _canonical_folder(member_dir: str, wanted: dict[str, str]) -> str | None:
    """Catalog folder for a member's directory: matched as is, or below one top-level folder
    (``MSRS-<commit>/test/ir`` -> ``test/ir``), case-insensitively."""
    d = member_dir.strip("/").lower()
    if d in wanted:
        return wanted[d]
    _, _, below_top = d.partition("/")
    return wanted.get(below_top) if below_top else None


def _extract(archive: Path, wanted: dict[str, str], tmp: Path) -> dict[str, int]:
    """Copy the image files of the wanted archive folders to ``tmp/<split>/<modality>/``."""
    counts: dict[str, int] = {}
    for name, is_file, open_member in _members(archive):
        folder, _, fname = name.replace("\\", "/").rstrip("/").rpartition("/")
        canon = _canonical_folder(folder, wanted)
        if not (is_file and canon and _is_image_name(fname)):
            continue
        out = tmp / canon / fname  # only the base name is used: no member can escape tmp
        out.parent.mkdir(parents=True, exist_ok=True)
        src = open_member()
        if src is None:
            continue
        with src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        counts[canon] = counts.get(canon, 0) + 1
    return counts


def install_archive(info: DatasetInfo, archive: str | os.PathLike, *, force: bool = False,
                    source: str | None = None) -> InstallReport:
    """Unpack the pairs of ``archive`` into ``$FUSIONLAB_DATA/<name>`` atomically.

    Raises:
        DatasetError: not an archive / corrupt, a catalog folder missing in it, a pair count
            different from the catalog's, or the target exists (without ``force``).
    """
    archive = Path(archive)
    root = installed_root(info)
    if root.exists() and not force:
        raise DatasetError(f"{root}: already exists; pass --force to replace it")
    root.parent.mkdir(parents=True, exist_ok=True)
    # folder inside the archive (lower case) -> canonical "<split>/<modality>"
    wanted = {v.strip("/").lower(): k for k, v in info.archive.folders.items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{info.name}.unpacking-", dir=root.parent))
    try:
        try:
            counts = _extract(archive, wanted, tmp)
        except DatasetError:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError) as e:
            raise DatasetError(f"{archive}: corrupt archive ({_one_line(e)}); nothing was installed") from None
        except (OSError, ValueError) as e:
            raise DatasetError(f"{archive}: cannot unpack ({_one_line(e)}); nothing was installed") from None
        missing = sorted(f"{info.archive.folders[c]}/" for c in info.archive.folders if not counts.get(c))
        if missing:
            raise DatasetError(f"{archive}: no images in {', '.join(missing)} (is this the {info.name} "
                               f"archive? see 'fusionlab data info {info.name}'); nothing was installed")
        report = InstallReport(info.name, root, {})
        a, b = info.modalities
        for split in info.splits:
            da, db = tmp / split.name / a, tmp / split.name / b
            sa, sb = _stems(da), _stems(db)
            for stem in sorted(set(sa) ^ set(sb)):
                f = (sa.get(stem) or sb.get(stem))
                report.skipped.append(f"{split.name}/{f.parent.name}/{f.name}")
                f.unlink()
            try:  # the same strict reader as every other command (ambiguous stems fail here)
                n = len(find_pairs(da, db))
            except (MissingPairError, EmptyInputError) as e:
                raise DatasetError(f"{archive}: {split.name}: {e}; nothing was installed") from None
            if split.pairs is not None and n != split.pairs:
                raise DatasetError(f"{archive}: {n} {split.name} pairs, expected {split.pairs} "
                                   f"(wrong or incomplete archive); nothing was installed")
            report.pairs[split.name] = n
        report.files = _write_manifest(tmp)
        (tmp / INFO_FILE).write_text(json.dumps({
            "name": info.name, "title": info.title, "source": source or str(archive),
            "archive_sha256": info.archive.sha256, "pairs": report.pairs,
            "skipped_unpaired": report.skipped,
            "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }, indent=1) + "\n")
        _swap_into_place(tmp, root)
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def count_images(folder: Path) -> int:
    """Image files directly in ``folder`` (hidden files skipped), without reading them."""
    return sum(1 for f in folder.iterdir() if f.is_file() and _is_image_name(f.name)) if folder.is_dir() else 0


def _stems(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {f.stem: f for f in sorted(folder.iterdir()) if f.is_file()}


def _write_manifest(root: Path) -> int:
    rows = []
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in (MANIFEST, INFO_FILE)):
        rows.append((f.relative_to(root).as_posix(), f.stat().st_size, sha256_file(f)))
    with open(root / MANIFEST, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "bytes", "sha256"])
        w.writerows(rows)
    return len(rows)


def _swap_into_place(tmp: Path, root: Path) -> None:
    """Rename ``tmp`` to ``root``; an existing ``root`` (``--force``) is moved aside first and
    deleted only after the new folder is in place."""
    old = None
    if root.exists():
        old = root.with_name(f".{root.name}.replaced-{os.getpid()}")
        os.replace(root, old)
    try:
        os.replace(tmp, root)
    except OSError as e:
        if old is not None:
            os.replace(old, root)
        raise DatasetError(f"{root}: cannot install here ({_one_line(e)})") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- verify
@dataclass
class SplitCheck:
    split: str
    folder: Path
    modalities: tuple[str, str]
    pairs: int
    expected: int | None = None


@dataclass
class VerifyReport:
    root: Path
    kind: str  # "installed" | "shared subset" | "folder"
    splits: list[SplitCheck]
    hashed: int = 0
    manifests: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for s in self.splits:
            exp = f", expected {s.expected}" if s.expected is not None else ""
            out.append(f"  {s.split}: {s.pairs} pairs ({s.modalities[0]}/ + {s.modalities[1]}/{exp}) ok")
        if self.manifests:
            out.append(f"  sha256: {self.hashed} files match {', '.join(map(str, self.manifests))}")
        else:
            out.append("  sha256: no MANIFEST.csv lists these files: not hashed")
        return out


def _pair_dirs(folder: Path) -> tuple[Path, Path]:
    return resolve_layout(folder)


def _check_pairs(folder: Path) -> tuple[int, tuple[str, str]]:
    first, second = _pair_dirs(folder)
    pairs = find_pairs(first, second)  # strict: a file without a partner raises
    return len(pairs), (second.name, first.name) if first.name.lower() == "mri" else (first.name, second.name)


def _find_manifest(root: Path) -> Path | None:
    for d in (root, root.parent, root.parent.parent):
        if (d / MANIFEST).is_file():
            return d / MANIFEST
    return None


def _check_manifest(root: Path, manifest: Path) -> int:
    """sha256 of every manifest row under ``root``; returns the number of files checked."""
    base = manifest.parent.resolve()
    root = root.resolve()
    n = 0
    with open(manifest, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "path" not in reader.fieldnames or "sha256" not in reader.fieldnames:
            raise DatasetError(f"{manifest}: not a manifest (needs 'path' and 'sha256' columns)")
        for row in reader:
            f = (base / row["path"]).resolve()
            if root != f and root not in f.parents:
                continue
            if not f.is_file():
                raise DatasetError(f"{f}: listed in {manifest} but missing (re-fetch with --force)")
            if sha256_file(f) != row["sha256"].lower():
                raise DatasetError(f"{f}: sha256 differs from {manifest} (corrupt or modified; "
                                   "re-fetch with --force)")
            n += 1
    return n


def verify_folder(root: str | os.PathLike, *, hashes: bool = True) -> VerifyReport:
    """Check any folder: a pair folder (``ir/`` + ``vi/`` or ``<ct|pet|spect>/`` + ``mri/``)
    or a folder of them (``train/``, ``test/``, ``CT-MRI/``...). Every file must have a
    partner; a ``MANIFEST.csv`` in it or up to two levels above is checked too."""
    root = Path(root)
    if not root.is_dir():
        raise EmptyInputError(f"{root}: folder not found")
    folders = [root] if _is_pair_folder(root) else []
    if not folders:
        folders = [d for d in sorted(root.iterdir()) if d.is_dir() and _is_pair_folder(d)]
    if not folders:
        _pair_dirs(root)  # raises the one-line "expected sub-folders ..." error
    checks = []
    for d in folders:
        n, mods = _check_pairs(d)
        checks.append(SplitCheck(d.name if d != root else ".", d, mods, n))
    return _finish(VerifyReport(root, "folder", checks), hashes)


def _is_pair_folder(d: Path) -> bool:
    try:
        _pair_dirs(d)
        return True
    except EmptyInputError:
        return False


def _finish(report: VerifyReport, hashes: bool) -> VerifyReport:
    """Check every pair folder against the MANIFEST.csv found in it or up to two levels up."""
    if not hashes:
        return report
    for check in report.splits:
        manifest = _find_manifest(check.folder)
        if manifest is None:
            continue
        n = _check_manifest(check.folder, manifest)
        if n:
            report.hashed += n
            if manifest not in report.manifests:
                report.manifests.append(manifest)
    return report


def verify_dataset(info: DatasetInfo, *, hashes: bool = True) -> VerifyReport:
    """Check the installed copy of ``info`` (every split, expected counts, MANIFEST.csv), or,
    when it is not installed, the shared subset (pairing and its MANIFEST.csv only)."""
    root = installed_root(info)
    if not root.is_dir():
        shared = shared_root(info)
        if shared is None:
            raise DatasetError(f"{info.name}: not installed ({root} not found) and no shared subset; "
                               f"run 'fusionlab data fetch {info.name}'")
        n, mods = _check_pairs(shared)
        return _finish(VerifyReport(shared, "shared subset", [SplitCheck(info.default_split, shared, mods, n)]),
                       hashes)
    checks = []
    a, b = info.modalities
    for split in info.splits:
        d = root / split.name
        for m in (a, b):
            if not (d / m).is_dir():
                raise DatasetError(f"{d / m}: missing (expected {split.name}/{a}/ + {split.name}/{b}/; "
                                   f"see 'fusionlab data info {info.name}')")
        n = len(find_pairs(d / a, d / b))
        if split.pairs is not None and n != split.pairs:
            raise DatasetError(f"{d}: {n} pairs, expected {split.pairs} (incomplete or extra files; "
                               f"re-fetch with 'fusionlab data fetch {info.name} --force')")
        checks.append(SplitCheck(split.name, d, (a, b), n, split.pairs))
    return _finish(VerifyReport(root, "installed", checks), hashes)
