"""Registry of the public fusion datasets: where to get them, how they are laid out, and
where they live on this machine.

Every dataset is installed by ``fusionlab data fetch NAME`` into ``$FUSIONLAB_DATA/<name>``
(default: the per-user data folder of platformdirs, e.g. ``~/.local/share/fusionlab`` on
Linux) in one canonical layout::

    <name>/<split>/<a>/   +   <name>/<split>/<b>/        e.g. msrs/test/ir + msrs/test/vi
                                                            harvard-pet-mri/test/pet + .../mri

where ``(a, b)`` is ``("ir", "vi")`` for infrared-visible sets and ``(ct|pet|spect, "mri")``
for the Harvard medical sets; files of a pair share their name stem (as
:func:`fusionlab.data.paired.find_pairs` reads them). Each split folder is therefore a root
that :class:`~fusionlab.data.paired.PairedFolder`, ``fusionlab fuse --data`` and
``fusionlab evaluate`` read as it is.

Offline, :func:`resolve_dataset` also serves the small real subsets of the shared data
folder (``$FUSIONLAB_SHARED/data`` or ``shared/data`` beside the repository).

Facts in this table (URLs, commits, pair counts, licences) come from the datasets' own
repositories and the shared subsets' SOURCE.md files; a pair count of ``None`` means it could
not be confirmed, so only the pairing (every file has a partner) is checked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError
from ..registry import Registry

#: name -> :class:`DatasetInfo`; ``DATASETS.get(name)`` raises a one-line ConfigError
#: listing the known names.
DATASETS = Registry("dataset")


@dataclass(frozen=True)
class Split:
    """One split of a dataset: ``<root>/<name>/{a,b}/`` with ``pairs`` aligned pairs
    (``None``: count unknown, only the pairing is checked)."""

    name: str
    pairs: int | None


@dataclass(frozen=True)
class Archive:
    """A downloadable (or manually downloaded) archive and where the pairs sit inside it.

    Attributes:
        filename: the archive's file name (for ``--archive`` and the download cache).
        url: a direct HTTP(S) URL, or None when only a browser download exists.
        sha256: hex digest of the archive when published/known, else None (then the
            layout and pair counts are the check).
        folders: canonical folder (``"<split>/<modality>"``) -> folder inside the archive,
            relative to its single top-level folder if it has one (GitHub archives do).
            Matched case-insensitively; only image files directly inside are installed.
        size: approximate download size, for information only.
    """

    filename: str
    url: str | None
    sha256: str | None
    folders: dict[str, str]
    size: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    """One registered dataset (see the module docstring for the layout).

    Attributes:
        name: registry key and install folder name (lower case).
        title: full name.
        task: ``"infrared-visible"`` or ``"medical"``.
        modalities: sub-folder names of a split: ``("ir", "vi")`` or ``(<ct|pet|spect>, "mri")``.
        splits: the splits installed by ``fetch`` with their pair counts.
        homepage: canonical location (official page or repository).
        citation: what to cite.
        licence: licence / terms note (what was found, not legal advice).
        archive: the archive ``fetch`` installs from.
        direct: True when ``archive.url`` downloads without a browser; otherwise
            ``manual_steps`` tell the user where to get the archive.
        manual_steps: how to download it by hand (printed by ``fetch`` and ``info``).
        shared: folder under the shared data folder holding a small real subset of this
            dataset with the same layout as one split (used offline), or None.
        notes: caveats (protocol, variants, what is left out).
    """

    name: str
    title: str
    task: str
    modalities: tuple[str, str]
    splits: tuple[Split, ...]
    homepage: str
    citation: str
    licence: str
    archive: Archive
    direct: bool
    manual_steps: tuple[str, ...] = ()
    shared: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def default_split(self) -> str:
        """``test`` when the dataset has one (what fusing/evaluating wants), else the first."""
        names = [s.name for s in self.splits]
        return "test" if "test" in names else names[0]

    def split(self, name: str) -> Split:
        for s in self.splits:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.splits)
        raise DatasetError(f"{self.name}: no split '{name}' (splits: {known})")

    def pair_summary(self) -> str:
        return ", ".join(f"{s.name} {s.pairs if s.pairs is not None else '?'}" for s in self.splits)

    def url_env_var(self) -> str:
        """Environment variable that overrides the download URL (e.g. for a mirror)."""
        return "FUSIONLAB_DATA_URL_" + self.name.upper().replace("-", "_")


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add ``info`` to :data:`DATASETS` after checking that its archive maps every
    ``<split>/<modality>`` folder exactly once."""
    wanted = {f"{s.name}/{m}" for s in info.splits for m in info.modalities}
    if set(info.archive.folders) != wanted:
        raise ValueError(f"dataset {info.name}: archive folders {sorted(info.archive.folders)} "
                         f"!= split/modality folders {sorted(wanted)}")
    if not info.direct and not info.manual_steps:
        raise ValueError(f"dataset {info.name}: no direct download and no manual steps")
    DATASETS.register(info.name, obj=info)
    return info


def get_dataset(name: str) -> DatasetInfo:
    """The registered dataset ``name`` (case-insensitive); ConfigError listing known names."""
    return DATASETS.get(name.lower())


# ----------------------------------------------------------------------------- locations
def data_home() -> Path:
    """Where datasets are installed: ``$FUSIONLAB_DATA``, else platformdirs'
    ``user_data_dir("fusionlab")`` (``~/.local/share/fusionlab`` on Linux,
    ``~/Library/Application Support/fusionlab`` on macOS, ``%LOCALAPPDATA%\\fusionlab`` on Windows)."""
    from ..dirs import data_dir

    return data_dir()


def shared_data_root() -> Path | None:
    """The shared real-data folder: ``$FUSIONLAB_SHARED/data``, else ``shared/data`` beside
    the repository this package runs from; None when absent."""
    from ..dirs import shared_dir

    d = shared_dir() / "data"
    return d if d.is_dir() else None


def installed_root(info: DatasetInfo) -> Path:
    return data_home() / info.name


def shared_root(info: DatasetInfo) -> Path | None:
    """The shared subset of ``info`` when present, else None."""
    base = shared_data_root()
    if base is None or info.shared is None:
        return None
    d = base / info.shared
    return d if d.is_dir() else None


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"msrs"`` -> ``("msrs", None)``; ``"msrs/train"`` or ``"msrs:train"`` -> ``("msrs", "train")``."""
    for sep in (":", "/"):
        if sep in spec:
            name, split = spec.split(sep, 1)
            return name, split or None
    return spec, None


def resolve_dataset(spec: str, split: str | None = None) -> Path:
    """Folder holding the pairs of a registered dataset, as a PairedFolder root.

    ``spec`` is a name, optionally with a split (``"msrs"``, ``"msrs/train"``). Order:

    1. ``$FUSIONLAB_DATA/<name>/<split>`` when installed (split default: ``test`` if the
       dataset has one, else its only split);
    2. the shared real subset (``$FUSIONLAB_SHARED/data/<subset>``, e.g. ``msrs/test``) when
       present and no other split was asked for - a SUBSET, not the full dataset;
    3. otherwise :class:`DatasetError` saying how to fetch it.
    """
    name, spec_split = split_spec(spec)
    info = get_dataset(name)
    wanted = split or spec_split or info.default_split
    info.split(wanted)  # unknown split -> one-line error
    inst = installed_root(info) / wanted
    if inst.is_dir():
        return inst
    shared = shared_root(info)
    if shared is not None and wanted == info.default_split:
        return shared
    msg = f"{info.name}/{wanted}: not installed ({inst} not found"
    if info.shared and wanted == info.default_split:
        base = shared_data_root()
        msg += f", no shared subset {base / info.shared if base else '$FUSIONLAB_SHARED/data/' + info.shared}"
    raise DatasetError(msg + f"); run 'fusionlab data fetch {info.name}'")


def resolve_data_arg(value: str) -> str:
    """For ``--data`` options: an existing path is returned unchanged; a registered dataset
    name (``msrs``, ``msrs/train``) resolves through :func:`resolve_dataset`; anything else
    is returned unchanged so the caller reports the missing folder."""
    if Path(value).exists():
        return value
    name, _ = split_spec(value)
    if name.lower() not in DATASETS:
        return value
    return str(resolve_dataset(value))


# ----------------------------------------------------------------------------- the table
_GH = "https://github.com"
_CDDFUSE_COMMIT = "fd8da1f39d8d403b7343e577bd5a30cba38c7b7b"
_HARVARD_COMMIT = "984d169e8abd01baa130db3c5b9be3ba80191c1f"
_HARVARD_REPO = "xianming-gu/Havard-Medical-Image-Fusion-Datasets"  # sic: "Havard"

register_dataset(DatasetInfo(
    name="msrs",
    title="MSRS: Multi-Spectral Road Scenarios (1,444 aligned IR/VI pairs, 640x480, day and night)",
    task="infrared-visible",
    modalities=("ir", "vi"),
    splits=(Split("train", 1083), Split("test", 361)),
    homepage=f"{_GH}/Linfeng-Tang/MSRS",
    citation=("L. Tang, J. Yuan, H. Zhang, X. Jiang, J. Ma. PIAFusion: A progressive infrared and "
              "visible image fusion network based on illumination aware. Information Fusion, 2022."),
    licence=("No licence file in Linfeng-Tang/MSRS (its README asks to cite PIAFusion). Built from "
             "the MFNet dataset (Ha et al., IROS 2017), whose terms apply."),
    archive=Archive(
        filename="MSRS-5fa66e33c5ba875eec4de4f5a5bf609bdcc566c5.zip",
        url=f"{_GH}/Linfeng-Tang/MSRS/archive/5fa66e33c5ba875eec4de4f5a5bf609bdcc566c5.zip",
        sha256=None,  # GitHub builds the zip on demand: its bytes are not guaranteed stable
        folders={"train/ir": "train/ir", "train/vi": "train/vi", "test/ir": "test/ir", "test/vi": "test/vi"},
        size="about 0.7 GB (the whole repository at that commit)"),
    direct=True,
    shared="msrs/test",
    notes=("GitHub archive of the author's repository at a pinned commit; only train/{ir,vi} and "
           "test/{ir,vi} are installed (segmentation labels and the detection subset are left out).",
           "Several MSRS infrared variants circulate (Text-IF's, HiFusion's, Diff-IF's); this is the "
           "author's own. Pair counts are those of the repository (1083 train, 361 test)."),
))

register_dataset(DatasetInfo(
    name="roadscene",
    title="RoadScene: 221 aligned IR/VI road pairs (FLIR ADAS based, varied sizes, JPEG)",
    task="infrared-visible",
    modalities=("ir", "vi"),
    splits=(Split("all", 221),),
    homepage=f"{_GH}/hanna-xu/RoadScene",
    citation=("H. Xu, J. Ma, Z. Le, J. Jiang, X. Guo. FusionDN: A unified densely connected network "
              "for image fusion. AAAI 2020 (or U2Fusion, Xu et al., IEEE TPAMI 2020)."),
    licence=("No licence file in hanna-xu/RoadScene (its README asks to cite FusionDN or U2Fusion); "
             "images derived from the FLIR ADAS dataset, whose terms apply."),
    archive=Archive(
        filename="RoadScene-ab71420f8fc96396eeb97eecf3694909b3feb656.zip",
        url=f"{_GH}/hanna-xu/RoadScene/archive/ab71420f8fc96396eeb97eecf3694909b3feb656.zip",
        sha256=None,
        folders={"all/ir": "cropinfrared", "all/vi": "crop_LR_visible"},
        ),
    direct=True,
    shared="roadscene/test",
    notes=("No official train/test split (one split 'all'); many papers test on a 50-pair list, "
           "e.g. CDDFuse's test_img/RoadScene.",
           "Pairs are cropinfrared/ + crop_LR_visible/; crop_HR_visible/ is not size-aligned and is "
           "left out."),
))

register_dataset(DatasetInfo(
    name="tno",
    title="TNO Image Fusion Dataset: the 25-pair test set shipped with CDDFuse (CVPR 2023)",
    task="infrared-visible",
    modalities=("ir", "vi"),
    splits=(Split("test", 25),),
    homepage="https://figshare.com/articles/dataset/TNO_Image_Fusion_Dataset/1008029",
    citation=("A. Toet. The TNO multiband image data collection. Data in Brief 15, 2017 "
              "(TNO Image Fusion Dataset, figshare, doi:10.6084/m9.figshare.1008029)."),
    licence=("Original collection: terms of the figshare record (not checked here). The 25-pair "
             "copy comes from Zhaozixiang1228/MMIF-CDDFuse, which has no licence file."),
    archive=Archive(
        filename=f"MMIF-CDDFuse-{_CDDFUSE_COMMIT}.zip",
        url=f"{_GH}/Zhaozixiang1228/MMIF-CDDFuse/archive/{_CDDFUSE_COMMIT}.zip",
        sha256=None,
        folders={"test/ir": "test_img/TNO/ir", "test/vi": "test_img/TNO/vi"},
        ),
    direct=True,
    shared="tno/test",
    notes=("File names 01..25 are CDDFuse's renumbering, not TNO scene names; images are stored "
           "as RGB with R=G=B.",
           "The full TNO collection on figshare is a tree of sequences, not a list of pairs; papers "
           "use 20- to 42-pair selections, so scores are comparable only on the same list."),
))

register_dataset(DatasetInfo(
    name="m3fd",
    title="M3FD (TarDAL, CVPR 2022): the 300-pair fusion benchmark M3FD_Fusion, 1024x768",
    task="infrared-visible",
    modalities=("ir", "vi"),
    splits=(Split("test", 300),),
    homepage=f"{_GH}/JinyuanLiu-CV/TarDAL",
    citation=("J. Liu, X. Fan, Z. Huang, G. Wu, R. Liu, W. Zhong, Z. Luo. Target-aware Dual "
              "Adversarial Learning and a Multi-scenario Multi-Modality Benchmark to Fuse Infrared "
              "and Visible for Object Detection. CVPR 2022."),
    licence=("The TarDAL repository (home of M3FD) is GNU GPL v3; no separate data licence is "
             "stated."),
    archive=Archive(
        filename="M3FD_Fusion.zip",
        url=None,
        # sha256 of the official M3FD_Fusion.zip as recorded by an independent reproduction's
        # provenance notes (the archive itself could not be downloaded here)
        sha256="ec33d031bbd26697b75061972786526cdd815ee8111586813427d155ec522dfc",
        folders={"test/ir": "Ir", "test/vi": "Vis"},
        size="about 0.5 GB (estimated: about 1.8 MB per pair)"),
    direct=False,
    manual_steps=(
        "Download M3FD_Fusion.zip from the authors' Google Drive folder "
        "https://drive.google.com/drive/folders/1H-oO7bgRuVFYDcMGvxstT1nmy0WF_Y_6 "
        "(or Baidu: https://pan.baidu.com/s/1GoJrrl_mn2HNQVDSUdPCrw?pwd=M3FD), linked from "
        "https://github.com/JinyuanLiu-CV/TarDAL.",
    ),
    shared="m3fd/test",
    notes=("M3FD_Detection (4,200 pairs with boxes) is a separate archive in the same folder and "
           "is not registered here.",
           "An unofficial GitHub mirror (CharlesShan-hub/M3FD-Fusion-Backup, reported to hold "
           "byte-identical images) installs with --url <its archive .zip URL> --sha256 skip.",
           "The shared subset (7 pairs) comes from the detection images, not from M3FD_Fusion."),
))

register_dataset(DatasetInfo(
    name="llvip",
    title="LLVIP: 15,488 aligned IR/VI pairs of low-light street scenes, 1280x1024",
    task="infrared-visible",
    modalities=("ir", "vi"),
    splits=(Split("train", 12025), Split("test", 3463)),
    homepage="https://bupt-ai-cz.github.io/LLVIP/",
    citation=("X. Jia, C. Zhu, M. Li, W. Tang, W. Zhou. LLVIP: A Visible-infrared Paired Dataset "
              "for Low-light Vision. Proc. IEEE/CVF ICCV (Workshops), 2021, pp. 3496-3504."),
    licence=("Non-commercial use only (academic research, teaching, publications, personal "
             "experimentation), citing LLVIP: 'Term of Use and License.md' in bupt-ai-cz/LLVIP."),
    archive=Archive(
        filename="LLVIP.zip",
        url=None,
        sha256=None,
        folders={"train/ir": "infrared/train", "train/vi": "visible/train",
                 "test/ir": "infrared/test", "test/vi": "visible/test"},
        ),
    direct=False,
    manual_steps=(
        "Download LLVIP.zip from Google Drive "
        "https://drive.google.com/file/d/1VTlT3Y7e1h-Zsne4zahjx5q0TK2ClMVv/view?usp=sharing "
        "(or Baidu: https://pan.baidu.com/s/1eQO1Is2NPyd-mgmv1Csbfg, password 14lc), as linked "
        "from https://github.com/bupt-ai-cz/LLVIP (download_dataset.md); accept its licence terms.",
    ),
    shared=None,
    notes=("Images are JPEG; the archive also holds Annotations/ (pedestrian boxes), which are "
           "not installed.",),
))


def _harvard(pair: str, func: str) -> DatasetInfo:
    low = func.lower()
    base = f"MyDatasets/{pair}"
    return DatasetInfo(
        name=f"harvard-{pair.lower()}",
        title=f"Harvard Whole Brain Atlas {pair} pairs (256x256; {func} "
              + ("gray" if func == "CT" else "RGB pseudo-colour") + ", MRI gray)",
        task="medical",
        modalities=(low, "mri"),
        splits=(Split("train", None), Split("test", None)),
        homepage="http://www.med.harvard.edu/AANLIB/home.html",
        citation="K. A. Johnson, J. A. Becker. The Whole Brain Atlas. Harvard Medical School "
                 "(http://www.med.harvard.edu/AANLIB/).",
        licence=(f"AANLIB's own terms apply; the pair collection {_HARVARD_REPO} has no licence "
                 "file."),
        archive=Archive(
            filename=f"Havard-Medical-Image-Fusion-Datasets-{_HARVARD_COMMIT}.zip",
            url=f"{_GH}/{_HARVARD_REPO}/archive/{_HARVARD_COMMIT}.zip",
            sha256=None,
            folders={f"train/{low}": f"{base}/train/{func}", "train/mri": f"{base}/train/MRI",
                     f"test/{low}": f"{base}/test/{func}", "test/mri": f"{base}/test/MRI"},
            ),
        direct=True,
        shared=f"harvard/{pair}",
        notes=(f"Pairs from {_HARVARD_REPO} (a train/test arrangement of AANLIB slices) at a pinned "
               "commit; pair counts are not pinned (a file without a partner is skipped and listed).",
               f"Read as a PairedFolder, MRI takes the infrared slot and {func} the visible slot "
               "(fusion in its Y channel, colour kept)."),
    )


for _pair, _func in (("CT-MRI", "CT"), ("PET-MRI", "PET"), ("SPECT-MRI", "SPECT")):
    register_dataset(_harvard(_pair, _func))
