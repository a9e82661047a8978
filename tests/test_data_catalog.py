"""`fusionlab data list|info|fetch|verify` and the dataset registry.

Downloads are served by a local HTTP server on 127.0.0.1 (a thread, random port, HTTP Range
support, optionally dropping the connection mid-file) from small archives built here out of
tiny PNG pairs. Every test points $FUSIONLAB_DATA at a temporary folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from fusionlab.datasets import catalog
from fusionlab.datasets.catalog import DATASETS, Archive, DatasetInfo, Split
from fusionlab.datasets.fetch import download, install_archive, verify_dataset

NAMES = ("a01", "a02", "b03")  # three pairs; plus one unpaired IR file in every archive


def _png(seed: int, mode: str) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (6, 8) if mode == "L" else (6, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def _members(top: str = "tiny-0123abc/") -> dict[str, bytes]:
    """Archive members in the upstream layout (IR under imgs/infrared, VI under imgs/visible)."""
    files = {f"{top}README.md": b"tiny test set\n", f"{top}imgs/infrared/.DS_Store": b"\0\1",
             f"{top}imgs/infrared/notes.txt": b"not an image"}
    for i, n in enumerate(NAMES):
        files[f"{top}imgs/infrared/{n}.png"] = _png(i, "L")
        files[f"{top}imgs/visible/{n}.png"] = _png(100 + i, "RGB")
    files[f"{top}imgs/infrared/zz_unpaired.png"] = _png(99, "L")
    files[f"{top}other/visible/x.png"] = _png(98, "RGB")  # a folder the catalog does not name
    return files


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


ZIP = _zip(_members())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def server():
    """Serve ``state.files[path] = bytes``; ``state.drop_at = n`` makes the NEXT response stop
    after n body bytes and close the connection; ``state.requests`` records Range headers."""
    state = SimpleNamespace(files={}, requests=[], drop_at=None)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):  # noqa: N802
            rng = self.headers.get("Range")
            state.requests.append({"path": self.path, "range": rng, "if_range": self.headers.get("If-Range")})
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            if rng:
                start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", '"v1"')
            self.end_headers()
            if state.drop_at is not None:
                cut, state.drop_at = state.drop_at, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"
    yield state
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty $FUSIONLAB_DATA and no shared data (hermetic)."""
    d = tmp_path / "fusionlab-data"
    monkeypatch.setenv("FUSIONLAB_DATA", str(d))
    monkeypatch.setenv("FUSIONLAB_SHARED", str(tmp_path / "no-shared"))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return d


@pytest.fixture
def tiny(monkeypatch, server):
    """Register dataset 'tiny' (3 pairs in split 'test') served at /tiny.zip."""
    server.files["/tiny.zip"] = ZIP
    info = DatasetInfo(
        name="tiny", title="tiny test set", task="infrared-visible", modalities=("ir", "vi"),
        splits=(Split("test", 3),), homepage="http://example.invalid/tiny", citation="nobody 2024",
        licence="public domain", shared="tiny/test",
        archive=Archive(filename="tiny.zip", url=server.url("/tiny.zip"), sha256=_sha(ZIP),
                        folders={"test/ir": "imgs/infrared", "test/vi": "imgs/visible"}),
        direct=True)
    monkeypatch.setitem(DATASETS._items, "tiny", info)
    return info


def _set(monkeypatch, info: DatasetInfo, **changes) -> DatasetInfo:
    new = dataclasses.replace(info, **changes)
    monkeypatch.setitem(DATASETS._items, info.name, new)
    return new


def _leftovers(home: Path) -> list[str]:
    """Everything in the data folder except the installed datasets themselves."""
    if not home.exists():
        return []
    return sorted(p.relative_to(home).as_posix() for p in home.rglob("*")
                  if p.relative_to(home).parts[0].startswith(".") and not p.is_dir())


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"stderr is not one line: {err!r}"
    return lines[0]


# ----------------------------------------------------------------------------- fetch
def test_fetch_installs_pairs_atomically_and_verifies(home, tiny, run_cli):
    code, out, err = run_cli("data", "fetch", "tiny", "--timeout", "10")
    assert code == 0, err
    root = home / "tiny"
    assert sorted(p.name for p in (root / "test" / "ir").iterdir()) == [f"{n}.png" for n in NAMES]
    assert sorted(p.name for p in (root / "test" / "vi").iterdir()) == [f"{n}.png" for n in NAMES]
    assert (root / "test" / "vi" / "a02.png").read_bytes() == _members()["tiny-0123abc/imgs/visible/a02.png"]
    assert not (root / "other").exists()  # only the catalog's folders are installed
    assert "test 3 pairs" in out and "skipped 1 file(s) without a partner: test/ir/zz_unpaired.png" in out
    assert f"sha256 ok ({_sha(ZIP)})" in out and "verified" in out
    meta = json.loads((root / "fusionlab-dataset.json").read_text())
    assert meta["pairs"] == {"test": 3} and meta["skipped_unpaired"] == ["test/ir/zz_unpaired.png"]
    manifest = (root / "MANIFEST.csv").read_text().splitlines()
    assert manifest[0] == "path,bytes,sha256" and len(manifest) == 1 + 6
    assert _leftovers(home) == []  # archive deleted, no .part, no temporary folder

    code, out, err = run_cli("data", "verify", "tiny")
    assert code == 0, err
    assert "test: 3 pairs (ir/ + vi/, expected 3) ok" in out and "sha256: 6 files match" in out

    code, out, err = run_cli("data", "fetch", "tiny")  # second run: nothing to do
    assert code == 0 and "already installed" in out


def test_checksum_mismatch_is_one_line_and_leaves_nothing(home, tiny, run_cli, monkeypatch):
    _set(monkeypatch, tiny, archive=dataclasses.replace(tiny.archive, sha256="0" * 64))
    code, out, err = run_cli("data", "fetch", "tiny", "--retries", "0")
    assert code == 1
    line = _one_line(err)
    assert line.startswith("fusionlab data: error: ") and "sha256 mismatch" in line and "nothing was installed" in line
    assert not (home / "tiny").exists()
    assert _leftovers(home) == []  # the wrong (complete) download is deleted, not kept as .part


def test_sha256_option_overrides_and_skip(home, tiny, run_cli):
    code, _, err = run_cli("data", "fetch", "tiny", "--sha256", "f" * 64)
    assert code == 1 and "sha256 mismatch" in _one_line(err)
    code, _, err = run_cli("data", "fetch", "tiny", "--sha256", "not-hex")
    assert code == 2 and "64 hex digits" in _one_line(err)
    code, out, err = run_cli("data", "fetch", "tiny", "--sha256", "skip")
    assert code == 0, err
    assert "sha256 ok" not in out and (home / "tiny" / "test" / "ir" / "a01.png").is_file()


def test_dropped_connection_resumes_with_range_in_the_same_run(home, tiny, server, run_cli):
    server.drop_at = len(ZIP) // 2
    code, out, err = run_cli("data", "fetch", "tiny", "--timeout", "10", "--retries", "2")
    assert code == 0, err
    gets = [r for r in server.requests if r["path"] == "/tiny.zip"]
    assert [g["range"] for g in gets] == [None, f"bytes={len(ZIP) // 2}-"]
    assert gets[1]["if_range"] == '"v1"'  # resumes only if the file did not change
    assert (home / "tiny" / "test" / "vi" / "b03.png").is_file() and _leftovers(home) == []


def test_interrupted_download_keeps_part_and_next_run_resumes(home, tiny, server, run_cli):
    server.drop_at = 1000
    code, out, err = run_cli("data", "fetch", "tiny", "--retries", "0", "--timeout", "10")
    assert code == 1
    line = _one_line(err)
    assert "download interrupted after 1000 bytes" in line and "run the same command again to resume" in line
    assert not (home / "tiny").exists()
    part = home / ".downloads" / "tiny.zip.part"
    assert part.stat().st_size == 1000
    assert _leftovers(home) == [".downloads/tiny.zip.part", ".downloads/tiny.zip.part.json"]

    code, out, err = run_cli("data", "fetch", "tiny", "--retries", "0")
    assert code == 0, err
    assert "(resuming after 1000 bytes)" in out
    assert server.requests[-1]["range"] == "bytes=1000-"
    assert len((home / "tiny" / "MANIFEST.csv").read_text().splitlines()) == 7
    assert _leftovers(home) == []


@pytest.mark.parametrize("payload, message", [
    (ZIP[: len(ZIP) // 3] + bytes(200) + ZIP[len(ZIP) // 3 + 200:], "corrupt archive"),  # damaged data
    (b"<!DOCTYPE html><html>Google Drive - virus scan warning</html>", "HTML page"),       # a web page
    (ZIP[:-30], "not a zip or tar archive"),                                                # truncated
])
def test_corrupt_archive_is_one_line_and_leaves_nothing(home, tiny, server, run_cli, monkeypatch, payload, message):
    server.files["/tiny.zip"] = payload
    _set(monkeypatch, tiny, archive=dataclasses.replace(tiny.archive, sha256=None))
    code, out, err = run_cli("data", "fetch", "tiny", "--retries", "0")
    assert code == 1
    line = _one_line(err)
    assert message in line and "nothing was installed" in line
    assert not (home / "tiny").exists()
    assert _leftovers(home) == []  # no temporary unpack folder, the bad download deleted


def test_wrong_pair_count_or_layout_installs_nothing(home, tiny, run_cli, monkeypatch):
    _set(monkeypatch, tiny, splits=(Split("test", 4),))
    code, _, err = run_cli("data", "fetch", "tiny", "--retries", "0")
    assert code == 1 and "3 test pairs, expected 4" in _one_line(err)
    assert not (home / "tiny").exists() and _leftovers(home) == []

    _set(monkeypatch, tiny, archive=dataclasses.replace(
        tiny.archive, folders={"test/ir": "imgs/thermal", "test/vi": "imgs/visible"}))
    code, _, err = run_cli("data", "fetch", "tiny", "--retries", "0")
    assert code == 1 and "no images in imgs/thermal/" in _one_line(err)
    assert not (home / "tiny").exists() and _leftovers(home) == []


def test_http_error_and_unreachable_server(home, tiny, server, run_cli):
    code, _, err = run_cli("data", "fetch", "tiny", "--url", server.url("/missing.zip"), "--retries", "0")
    assert code == 1 and "HTTP 404" in _one_line(err)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run_cli("data", "fetch", "tiny", "--url", f"http://127.0.0.1:{port}/x.zip", "--retries", "0")
    assert code == 1 and "download failed (cannot connect" in _one_line(err)
    assert not (home / "tiny").exists() and _leftovers(home) == []


def test_url_from_env_and_archive_option_with_targz(home, tiny, server, run_cli, monkeypatch, tmp_path):
    tgz = _targz(_members(top="mirror/"))
    server.files["/mirror.tar.gz"] = tgz
    monkeypatch.setenv("FUSIONLAB_DATA_URL_TINY", server.url("/mirror.tar.gz"))
    code, out, err = run_cli("data", "fetch", "tiny", "--sha256", _sha(tgz))
    assert code == 0, err
    assert server.requests[-1]["path"] == "/mirror.tar.gz" and "test 3 pairs" in out

    # --archive: a file downloaded by hand; the registry's sha256 (of the zip) is checked
    local = tmp_path / "by_hand.tar.gz"
    local.write_bytes(tgz)
    code, _, err = run_cli("data", "fetch", "tiny", "--archive", local, "--force")
    assert code == 1 and "sha256 mismatch" in _one_line(err) and local.is_file()  # user's file kept
    assert (home / "tiny" / "test" / "ir" / "a01.png").is_file()  # old copy untouched
    code, out, err = run_cli("data", "fetch", "tiny", "--archive", local, "--force", "--sha256", "skip")
    assert code == 0, err
    assert local.is_file() and _leftovers(home) == []


def test_force_reinstall_replaces_and_keep_archive(home, tiny, run_cli):
    assert run_cli("data", "fetch", "tiny")[0] == 0
    (home / "tiny" / "stale.txt").write_text("old")
    code, out, err = run_cli("data", "fetch", "tiny", "--force", "--keep-archive")
    assert code == 0, err
    assert not (home / "tiny" / "stale.txt").exists()
    assert (home / ".downloads" / "tiny.zip").read_bytes() == ZIP
    assert [p for p in home.iterdir() if p.name.startswith(".tiny")] == []  # no .replaced/.unpacking


def test_fetch_of_broken_install_asks_for_force(home, tiny, run_cli):
    assert run_cli("data", "fetch", "tiny")[0] == 0
    (home / "tiny" / "test" / "vi" / "a01.png").unlink()
    code, _, err = run_cli("data", "fetch", "tiny")
    line = _one_line(err)
    assert code == 1 and "fails verification" in line and "--force" in line


def test_manual_dataset_prints_steps_and_exits_3(home, run_cli):
    code, out, err = run_cli("data", "fetch", "m3fd")
    assert code == 3
    assert "drive.google.com" in out and "fusionlab data fetch m3fd --archive /path/to/M3FD_Fusion.zip" in out
    assert str(home / "m3fd" / "test" / "ir") in out and "<- Ir/ in the archive" in out
    assert "fusionlab data verify m3fd" in out
    assert "needs a manual download" in _one_line(err)
    assert not home.exists() or not any(home.iterdir())


def test_download_progress_bar_on_terminals(home, tiny, server, tmp_path, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    fake = Tty()
    monkeypatch.setattr("sys.stderr", fake)
    path = download(server.url("/tiny.zip"), tmp_path / "t.zip", sha256=_sha(ZIP), timeout=10, progress=True)
    assert path.read_bytes() == ZIP
    assert "t.zip" in fake.getvalue() and f"{len(ZIP) / 1024:.2f}k" in fake.getvalue().lower()


# ----------------------------------------------------------------------------- verify
def _pair_folder(root: Path, names=NAMES) -> Path:
    for i, n in enumerate(names):
        for mod, mode in (("ir", "L"), ("vi", "RGB")):
            (root / mod).mkdir(parents=True, exist_ok=True)
            (root / mod / f"{n}.png").write_bytes(_png(i, mode))
    return root


def test_verify_good_and_bad_folders(home, tmp_path, run_cli):
    good = _pair_folder(tmp_path / "good")
    code, out, err = run_cli("data", "verify", good)
    assert code == 0, err
    assert ".: 3 pairs (ir/ + vi/) ok" in out and "not hashed" in out and out.strip().endswith("ok")

    both = tmp_path / "both"
    _pair_folder(both / "train")
    _pair_folder(both / "test", names=NAMES[:2])
    code, out, err = run_cli("data", "verify", both)
    assert code == 0, err
    assert "test: 2 pairs" in out and "train: 3 pairs" in out

    bad = _pair_folder(tmp_path / "bad")
    (bad / "vi" / "a02.png").unlink()
    code, out, err = run_cli("data", "verify", bad)
    assert code == 1
    line = _one_line(err)
    assert "a02.png" in line and "no visible partner" in line

    code, _, err = run_cli("data", "verify", tmp_path / "good" / "ir")
    assert code == 1 and "expected sub-folders ir/ and vi/" in _one_line(err)
    code, _, err = run_cli("data", "verify", "no-such-dataset")
    assert code == 1 and "neither a folder nor a dataset name" in _one_line(err)


def test_verify_detects_modified_files_and_wrong_counts(home, tiny, run_cli, monkeypatch):
    assert run_cli("data", "fetch", "tiny")[0] == 0
    f = home / "tiny" / "test" / "ir" / "a01.png"
    f.write_bytes(f.read_bytes() + b"\0")
    code, _, err = run_cli("data", "verify", "tiny")
    assert code == 1 and "a01.png: sha256 differs" in _one_line(err)
    assert run_cli("data", "verify", "tiny", "--no-hash")[0] == 0
    _set(monkeypatch, tiny, splits=(Split("test", 5),))
    code, _, err = run_cli("data", "verify", "tiny", "--no-hash")
    assert code == 1 and "3 pairs, expected 5" in _one_line(err)


# ----------------------------------------------------------------------------- list / info
def test_list_shows_every_dataset(home, run_cli):
    code, out, err = run_cli("data", "list")
    assert code == 0, err
    for name in ("msrs", "roadscene", "tno", "m3fd", "llvip", "harvard-ct-mri", "harvard-pet-mri",
                 "harvard-spect-mri"):
        assert re.search(rf"^{name}\s", out, re.M), name
    assert re.search(r"^msrs\s+infrared-visible\s+train 1083, test 361\s+direct\s+-$", out, re.M)
    assert re.search(r"^llvip\s.*manual", out, re.M)
    assert f"data folder: {home}" in out


def test_list_and_info_show_installed_and_shared(home, tiny, run_cli, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    _pair_folder(shared / "data" / "tiny" / "test", names=NAMES[:2])
    monkeypatch.setenv("FUSIONLAB_SHARED", str(shared))
    out = run_cli("data", "list")[1]
    assert re.search(r"^tiny\s.*shared subset \(2 pairs\)$", out, re.M)
    assert run_cli("data", "fetch", "tiny")[0] == 0
    out = run_cli("data", "list")[1]
    assert re.search(r"^tiny\s.*installed \(test 3\)$", out, re.M)
    code, out, _ = run_cli("data", "info", "tiny")
    assert code == 0 and f"installed: {home / 'tiny'}" in out and f"offline:   {shared / 'data' / 'tiny' / 'test'}" in out


def test_info_facts_and_unknown_name(home, run_cli):
    code, out, err = run_cli("data", "info", "msrs")
    assert code == 0, err
    assert "https://github.com/Linfeng-Tang/MSRS/archive/" in out and "PIAFusion" in out
    assert "licence:" in out and "train 1083, test 361" in out
    assert f"{home / 'msrs'}/<split>/ir/ + <split>/vi/" in out
    code, out, _ = run_cli("data", "info", "harvard-spect-mri")
    assert code == 0 and "<split>/spect/ + <split>/mri/" in out and "AANLIB" in out
    code, out, _ = run_cli("data", "info", "llvip")
    assert "Non-commercial" in out and "--archive /path/to/LLVIP.zip" in out
    code, _, err = run_cli("data", "info", "nope")
    assert code == 1 and "unknown dataset 'nope'" in _one_line(err)
    code, _, err = run_cli("data")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_registry_entries_are_complete():
    assert len(DATASETS) == 8
    for name in DATASETS:
        info = DATASETS.get(name)
        assert info.citation and info.licence and info.homepage.startswith("http")
        assert set(info.archive.folders) == {f"{s.name}/{m}" for s in info.splits for m in info.modalities}
        if info.direct:
            assert info.archive.url.startswith("https://github.com/") and "/archive/" in info.archive.url
            assert re.search(r"/archive/[0-9a-f]{40}\.zip$", info.archive.url)  # pinned commits
        else:
            assert info.archive.url is None and info.manual_steps
        if info.archive.sha256:
            assert re.fullmatch(r"[0-9a-f]{64}", info.archive.sha256)
    with pytest.raises(ValueError, match="archive folders"):
        catalog.register_dataset(dataclasses.replace(DATASETS.get("msrs"), name="broken", splits=(Split("x", 1),)))


# ----------------------------------------------------------------------------- resolve
def test_resolve_dataset_installed_then_shared_then_error(home, tiny, tmp_path, monkeypatch):
    from fusionlab.errors import DatasetError

    with pytest.raises(DatasetError, match=r"tiny/test: not installed .* run 'fusionlab data fetch tiny'"):
        catalog.resolve_dataset("tiny")
    shared = tmp_path / "shared"
    _pair_folder(shared / "data" / "tiny" / "test")
    monkeypatch.setenv("FUSIONLAB_SHARED", str(shared))
    assert catalog.resolve_dataset("tiny") == shared / "data" / "tiny" / "test"
    assert catalog.resolve_data_arg("tiny") == str(shared / "data" / "tiny" / "test")
    install_archive(tiny, _write(tmp_path / "t.zip", ZIP))
    assert catalog.resolve_dataset("tiny") == home / "tiny" / "test"
    assert catalog.resolve_dataset("tiny/test") == catalog.resolve_dataset("TINY:test")
    with pytest.raises(DatasetError, match="no split 'train'"):
        catalog.resolve_dataset("tiny/train")
    assert catalog.resolve_data_arg("not-a-dataset") == "not-a-dataset"  # caller reports the folder
    existing = _pair_folder(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    assert catalog.resolve_data_arg("tiny") == "tiny"  # an existing path wins over a name
    assert verify_dataset(tiny).splits[0].pairs == 3 and existing.is_dir()


def test_resolve_dataset_reads_the_real_shared_subsets(shared_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FUSIONLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("FUSIONLAB_SHARED", str(shared_dir))
    assert catalog.resolve_dataset("msrs") == shared_dir / "data" / "msrs" / "test"
    assert catalog.resolve_dataset("harvard-pet-mri") == shared_dir / "data" / "harvard" / "PET-MRI"
    report = verify_dataset(DATASETS.get("tno"))
    assert report.kind == "shared subset" and report.splits[0].pairs == 17 and report.hashed == 34


def test_default_data_home_is_per_user(monkeypatch):
    from platformdirs import user_data_dir

    monkeypatch.delenv("FUSIONLAB_DATA", raising=False)
    assert catalog.data_home() == Path(user_data_dir("fusionlab", appauthor=False))
    monkeypatch.setenv("FUSIONLAB_DATA", "~/x")
    assert catalog.data_home() == Path.home() / "x"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_fuse_data_accepts_a_dataset_name(home, tiny, run_cli, tmp_path, one_thread):
    assert run_cli("data", "fetch", "tiny")[0] == 0
    out = tmp_path / "fused"
    code, stdout, err = run_cli("fuse", "--data", "tiny", "--out", out, "--model", "dtpf_student_tiny")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.png" for n in NAMES]
    code, _, err = run_cli("fuse", "--data", "tiny/train", "--out", out, "--model", "dtpf_student_tiny")
    assert code == 1 and "no split 'train'" in err.strip().splitlines()[-1]


def test_ambiguous_names_and_escaping_members(home, tiny, tmp_path, monkeypatch):
    from fusionlab.errors import DatasetError

    members = _members()
    members["tiny-0123abc/imgs/infrared/a01.jpg"] = members["tiny-0123abc/imgs/infrared/a01.png"]
    with pytest.raises(DatasetError, match=r"test: .*a01\.\w+: ambiguous.*nothing was installed"):
        install_archive(tiny, _write(tmp_path / "amb.zip", _zip(members)))
    assert not (home / "tiny").exists()

    members = _members()
    members["../../escape/imgs/infrared/a01.png"] = b"x"  # path traversal attempts are not followed
    tgz = _write(tmp_path / "esc.tar.gz", _targz(members))
    report = install_archive(tiny, tgz)
    assert report.pairs == {"test": 3}
    assert not (home.parent / "escape").exists() and not (tmp_path.parent / "escape").exists()
    assert (home / "tiny" / "test" / "ir" / "a01.png").read_bytes() != b"x"
