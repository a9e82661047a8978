"""``fusionlab data``: list, describe, download and verify the public fusion datasets.

Exit codes: 0 done (or already installed); 1 failure (one line on stderr); 2 usage error;
3 ``fetch`` of a dataset that has no direct download: the manual steps are printed on
stdout and nothing was downloaded (so ``fetch X && train`` stops there).
"""
from __future__ import annotations

HELP = "list, describe, download (resumable, verified) and check the public fusion datasets"
DESCRIPTION = (
    "Datasets of the registry (MSRS, RoadScene, TNO, M3FD, LLVIP, Harvard CT/PET/SPECT-MRI): "
    "'list' shows them, 'info NAME' their citation, licence, source and layout, 'fetch NAME' "
    "downloads (resumable, sha256 where known) and unpacks atomically into $FUSIONLAB_DATA/NAME "
    "(default: the per-user data folder), or prints the manual steps when there is no direct "
    "download (exit 3), 'verify NAME_OR_PATH' checks layout, pairing, pair counts and sha256 "
    "manifests. Offline, 'fusionlab fuse --data NAME' also reads the shared real subsets.")

MANUAL_EXIT = 3


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the registered datasets and where they are on this machine")
    i = sub.add_parser("info", help="citation, licence, download location, layout and status of one dataset")
    i.add_argument("name", help="dataset name (see 'fusionlab data list')")
    f = sub.add_parser("fetch", help="download, check and unpack a dataset into $FUSIONLAB_DATA/NAME",
                       description="Download (with a progress bar; an interrupted download resumes "
                                   "with HTTP Range on the next run), check sha256 where known, unpack "
                                   "atomically, check layout and pair counts. Without a direct "
                                   f"download, print the manual steps and exit {MANUAL_EXIT}.")
    f.add_argument("name", help="dataset name (see 'fusionlab data list')")
    f.add_argument("--url", help="download from this URL instead (a mirror; also $FUSIONLAB_DATA_URL_<NAME>)")
    f.add_argument("--sha256", help="expected sha256 of the archive (overrides the registry's), "
                                    "or 'skip' to check only layout and pair counts")
    f.add_argument("--archive", help="install from an archive you downloaded by hand (zip or tar[.gz])")
    f.add_argument("--force", action="store_true", help="replace an installed copy")
    f.add_argument("--keep-archive", action="store_true",
                   help="keep the downloaded archive in $FUSIONLAB_DATA/.downloads (default: delete it)")
    f.add_argument("--timeout", type=float, default=60.0, help="seconds without data before retrying (default 60)")
    f.add_argument("--retries", type=int, default=3, help="retries after a dropped connection, each resuming (default 3)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    v = sub.add_parser("verify", help="check a dataset (by name) or a folder: layout, pairs, counts, sha256")
    v.add_argument("target", metavar="NAME_OR_PATH", help="dataset name or folder (an existing path wins)")
    v.add_argument("--no-hash", action="store_true", help="skip the sha256 check of MANIFEST.csv (faster)")


def run(args) -> int:
    return {"list": _list, "info": _info, "fetch": _fetch, "verify": _verify}[args.action](args)


# ----------------------------------------------------------------------------- helpers
def _status(info) -> str:
    """Short 'on this machine' text: installed, shared subset, or '-'."""
    import json

    from ..datasets.catalog import installed_root, shared_root
    from ..datasets.fetch import INFO_FILE

    root = installed_root(info)
    if root.is_dir():
        try:
            pairs = json.loads((root / INFO_FILE).read_text())["pairs"]
            return "installed (" + ", ".join(f"{k} {v}" for k, v in pairs.items()) + ")"
        except (OSError, ValueError, KeyError, AttributeError):
            return "installed (by hand)"
    shared = shared_root(info)
    if shared is not None:
        return f"shared subset ({_count_files(shared / info.modalities[0])} pairs)"
    return "-"


def _count_files(folder) -> int:
    from ..datasets.fetch import count_images

    return count_images(folder)


def _layout(info) -> str:
    a, b = info.modalities
    return f"<split>/{a}/ + <split>/{b}/ (same file name stem = one pair)"


def manual_steps(info) -> list[str]:
    """The numbered steps that install ``info`` by hand (shown by ``fetch`` and ``info``)."""
    from ..datasets.catalog import installed_root

    root = installed_root(info)
    steps = [f"{n}. {s}" for n, s in enumerate(info.manual_steps, 1)]
    n = len(steps) + 1
    steps.append(f"{n}. Install it from the downloaded file (checks "
                 + ("sha256, " if info.archive.sha256 else "") + "layout and pair counts, unpacks atomically):")
    steps.append(f"     fusionlab data fetch {info.name} --archive /path/to/{info.archive.filename}")
    steps.append("   or unpack it yourself so that these folders hold the pairs (same file names in both;"
                 " archive paths are below its top-level folder, if it has one):")
    width = max(len(str(root / c)) for c in info.archive.folders)
    for canon, inner in info.archive.folders.items():
        steps.append(f"     {str(root / canon):<{width}}  <- {inner}/ in the archive")
    steps.append(f"{n + 1}. Check it: fusionlab data verify {info.name}")
    return steps


# ----------------------------------------------------------------------------- actions
def _list(args) -> int:
    from ..datasets.catalog import DATASETS, data_home

    rows = [("name", "task", "pairs", "download", "on this machine")]
    for name in DATASETS.names():
        info = DATASETS.get(name)
        rows.append((name, info.task, info.pair_summary(), "direct" if info.direct else "manual", _status(info)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    print(f"\ndata folder: {data_home()} (set FUSIONLAB_DATA to change it); "
          "'fusionlab data info NAME' for sources, licences and layouts")
    return 0


def _info(args) -> int:
    from ..datasets.catalog import get_dataset, installed_root, shared_root

    info = get_dataset(args.name)
    print(f"{info.name}: {info.title}")
    print(f"  task:      {info.task}")
    print(f"  pairs:     {info.pair_summary()}  ('?' = not pinned; pairing is still checked)")
    print(f"  layout:    {installed_root(info)}/{_layout(info)}")
    print(f"  homepage:  {info.homepage}")
    if info.direct:
        print(f"  download:  {info.archive.url}")
    else:
        print(f"  download:  manual ({info.archive.filename}; see the steps below)")
    if info.archive.size:
        print(f"  size:      {info.archive.size}")
    print(f"  sha256:    {info.archive.sha256 or 'not known: layout and pair counts are checked'}")
    print(f"  mirror:    --url URL or ${info.url_env_var()}")
    print(f"  cite:      {info.citation}")
    print(f"  licence:   {info.licence}")
    for note in info.notes:
        print(f"  note:      {note}")
    shared = shared_root(info)
    print(f"  installed: {installed_root(info) if installed_root(info).is_dir() else 'no'}")
    print(f"  offline:   {shared if shared is not None else 'no shared subset'}")
    if not info.direct:
        print(f"\nNo direct download. To install {info.name}:")
        for line in manual_steps(info):
            print("  " + line)
    return 0


def _fetch(args) -> int:
    import os
    import re
    import sys
    from pathlib import Path

    from ..datasets.catalog import data_home, get_dataset, installed_root
    from ..datasets.fetch import download, install_archive, resumable_bytes, sha256_file, verify_dataset
    from ..errors import DatasetError, EmptyInputError, MissingPairError, UsageError

    info = get_dataset(args.name)
    root = installed_root(info)
    if args.retries < 0 or args.timeout <= 0:
        raise UsageError(f"--retries {args.retries} --timeout {args.timeout}: need retries >= 0 and timeout > 0")
    sha = info.archive.sha256
    if args.sha256:
        if args.sha256.lower() == "skip":
            sha = None
        elif re.fullmatch(r"[0-9a-fA-F]{64}", args.sha256):
            sha = args.sha256.lower()
        else:
            raise UsageError(f"--sha256 {args.sha256}: expected 64 hex digits or 'skip'")
    if args.archive and args.url:
        raise UsageError("give --archive FILE or --url URL, not both")

    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root}: exists and is not a folder (move it away)")
    if root.exists() and not args.force:
        try:
            report = verify_dataset(info, hashes=False)
        except (DatasetError, MissingPairError, EmptyInputError) as e:
            raise DatasetError(f"{root}: already exists but fails verification ({e}); "
                               f"re-install with 'fusionlab data fetch {info.name} --force'") from None
        print(f"{info.name}: already installed at {root} ("
              + ", ".join(f"{s.split} {s.pairs} pairs" for s in report.splits) + "); --force re-installs")
        return 0

    if args.archive:
        archive = Path(args.archive)
        if not archive.is_file():
            raise DatasetError(f"{archive}: file not found")
        if sha:
            print(f"checking sha256 of {archive}")
            digest = sha256_file(archive)
            if digest != sha:
                raise DatasetError(f"{archive}: sha256 mismatch (got {digest}, expected {sha}); not the "
                                   f"{info.archive.filename} of the registry, or damaged (pass --sha256 skip "
                                   "to check only layout and pair counts); nothing was installed")
        report = install_archive(info, archive, force=args.force, source=str(archive))
    else:
        url = args.url or os.environ.get(info.url_env_var()) or (info.archive.url if info.direct else None)
        if not url:
            print(f"{info.name}: no direct download ({info.homepage}). To install it:")
            for line in manual_steps(info):
                print("  " + line)
            sys.stderr.write(f"fusionlab data fetch: {info.name} needs a manual download (steps above); "
                             f"nothing was downloaded (exit {MANUAL_EXIT})\n")
            return MANUAL_EXIT
        dest = data_home() / ".downloads" / info.archive.filename
        if dest.exists() and not (sha and sha256_file(dest) == sha):
            dest.unlink()  # a kept archive is reused only when its sha256 is known and matches
        if not dest.exists():
            have = resumable_bytes(url, dest)
            print(f"downloading {url}\n  to {dest}" + (f" (resuming after {have} bytes)" if have else ""))
            download(url, dest, sha256=sha, timeout=args.timeout, retries=args.retries, progress=not args.quiet)
            print(f"downloaded {dest.stat().st_size / 2**20:.1f} MB")
            if sha:
                print(f"sha256 ok ({sha})")
        try:
            report = install_archive(info, dest, force=args.force, source=url)
        finally:
            if not args.keep_archive:
                dest.unlink(missing_ok=True)

    print(f"installed {info.name} into {report.root}: "
          + ", ".join(f"{k} {v} pairs" for k, v in report.pairs.items())
          + f" ({report.files} files, sha256 in MANIFEST.csv)")
    if report.skipped:
        shown = ", ".join(report.skipped[:5]) + (" ..." if len(report.skipped) > 5 else "")
        print(f"skipped {len(report.skipped)} file(s) without a partner: {shown}")
    verify_dataset(info, hashes=False)  # the installed folder reads as the pairs it should hold
    print("verified: layout, pairing and pair counts")
    return 0


def _verify(args) -> int:
    from pathlib import Path

    from ..datasets.catalog import DATASETS, split_spec
    from ..datasets.fetch import verify_dataset, verify_folder
    from ..errors import DatasetError

    target = args.target
    if Path(target).exists():
        report = verify_folder(target, hashes=not args.no_hash)
        label = str(Path(target))
    else:
        name, _ = split_spec(target)
        if name.lower() not in DATASETS:
            raise DatasetError(f"{target}: neither a folder nor a dataset name "
                               f"(known: {', '.join(DATASETS.names())})")
        info = DATASETS.get(name.lower())
        report = verify_dataset(info, hashes=not args.no_hash)
        label = info.name
    print(f"{label}: {report.kind} at {report.root}")
    for line in report.lines():
        print(line)
    print("ok")
    return 0
