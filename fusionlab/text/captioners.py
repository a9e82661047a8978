"""Captioners: image pairs -> DTPF captions ("Event Type: <X>\\nDescription: ...").

Registry :data:`CAPTIONERS` (build with :func:`build_captioner`); every captioner has
``caption(ir, vi, names=None, labels=None) -> list[str]`` with ``ir`` ``(B, 1, H, W)`` and
``vi`` ``(B, C, H, W)`` in [0, 1]:

* ``rules``: degradation estimated from image statistics (:mod:`.rules`);
* ``oracle``: the known degradation ``labels`` (synthetic / augmented training pairs);
* ``file``: captions read from a JSON/CSV keyed by image name (e.g. an MLLM run);
* ``mllm``: a transformers vision-language model (Qwen2-VL family), see :mod:`.mllm`;
* ``constant``: Text-IF's general task prompt for every pair (control: text, no information);
* ``shuffled``: another captioner's captions permuted across the images of a batch
  (control: real captions, wrong images).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import torch

from ..errors import ConfigError, InvalidTensorError, MissingPairError
from ..registry import Registry
from .captions import EVENT_TYPES, TASK_PROMPT, format_caption
from .rules import RuleThresholds, classify_degradation

CAPTIONERS = Registry("captioner")


class Captioner:
    """Base class. ``needs_images`` is False for captioners that never look at pixels."""

    needs_images = True

    def caption(self, ir: torch.Tensor | None, vi: torch.Tensor | None, names: Sequence[str] | None = None,
                labels: Sequence[str] | None = None) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _batch_size(ir, vi, names, labels) -> int:
    for x in (ir, vi):
        if isinstance(x, torch.Tensor):
            if x.ndim != 4:
                raise ConfigError(f"captioner input must be (B, C, H, W), got shape {tuple(x.shape)}")
            return int(x.shape[0])
    for x in (names, labels):
        if x is not None:
            return len(x)
    raise ConfigError("captioner needs images, names or labels to know the batch size")


@CAPTIONERS.register("rules")
class RulesCaptioner(Captioner):
    """Degradation from brightness, clipping, IR contrast and IR noise statistics.

    Args:
        style: caption wording, ``"descriptive"`` or ``"reference"`` (see :mod:`.captions`).
        thresholds: :class:`~fusionlab.text.rules.RuleThresholds` or a dict of its fields.
    """

    def __init__(self, style: str = "descriptive", thresholds: RuleThresholds | dict | None = None):
        if isinstance(thresholds, dict):
            try:
                thresholds = RuleThresholds(**thresholds)
            except TypeError as e:
                raise ConfigError(f"rules thresholds: {e}") from None
        self.style, self.thresholds = style, thresholds or RuleThresholds()
        format_caption("normal", style=style)  # validate style early

    def labels(self, ir: torch.Tensor, vi: torch.Tensor) -> list[str]:
        return classify_degradation(ir, vi, self.thresholds)

    def caption(self, ir, vi, names=None, labels=None) -> list[str]:
        if ir is None or vi is None:
            raise ConfigError("the rules captioner needs the ir and vi images")
        return [format_caption(x, style=self.style) for x in self.labels(ir, vi)]


@CAPTIONERS.register("oracle")
class OracleCaptioner(Captioner):
    """Captions from the known degradation labels (``labels=`` of :meth:`caption`)."""

    needs_images = False

    def __init__(self, style: str = "descriptive"):
        self.style = style
        format_caption("normal", style=style)

    def caption(self, ir, vi, names=None, labels=None) -> list[str]:
        if labels is None:
            raise ConfigError("the oracle captioner needs the degradation labels of the batch "
                              "(synthetic/augmented data); use 'rules' or 'file' for real images")
        b = _batch_size(ir, vi, names, None)
        if len(labels) != b:
            raise ConfigError(f"oracle captioner got {len(labels)} labels for a batch of {b}")
        for lab in labels:
            if self.style == "descriptive" and lab not in EVENT_TYPES:
                raise ConfigError(f"oracle label {lab!r} is not one of {', '.join(EVENT_TYPES)}")
        return [format_caption(lab, style=self.style) for lab in labels]


@CAPTIONERS.register("constant")
class ConstantCaptioner(Captioner):
    """The same text for every pair (default: Text-IF's general task prompt)."""

    needs_images = False

    def __init__(self, text: str = TASK_PROMPT):
        self.text = str(text)

    def caption(self, ir, vi, names=None, labels=None) -> list[str]:
        return [self.text] * _batch_size(ir, vi, names, labels)


def read_caption_file(path: str | os.PathLike) -> dict[str, str]:
    """Read captions keyed by image name from JSON or CSV.

    Accepted: JSON object ``{"name": "caption", ...}``; JSON list of objects with ``name`` and
    ``caption`` (or ``text``); CSV with header columns ``name`` and ``caption``. Names are
    image stems (``00016N``); a name given with an extension is reduced to its stem.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: caption file not found (create it with 'fusionlab caption')")
    try:
        raw = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read caption file ({e})") from None
    out: dict[str, str] = {}
    if p.suffix.lower() == ".csv":
        import io as _io

        rows = list(csv.DictReader(_io.StringIO(raw, newline="")))  # quoted captions span lines
        if rows and not {"name", "caption"} <= set(rows[0]):
            raise ConfigError(f"{p}: CSV needs columns 'name' and 'caption', found {list(rows[0])}")
        items = [(r["name"], r["caption"]) for r in rows]
    else:
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise ConfigError(f"{p}: invalid JSON ({e})") from None
        if isinstance(data, dict):
            items = list(data.items())
        elif isinstance(data, list) and all(isinstance(d, dict) for d in data):
            try:
                items = [(d["name"], d.get("caption", d.get("text"))) for d in data]
            except KeyError:
                raise ConfigError(f"{p}: every list entry needs a 'name' key") from None
        else:
            raise ConfigError(f"{p}: expected a JSON object name -> caption or a list of {{name, caption}}")
    for name, cap in items:
        if not isinstance(cap, str) or not str(name):
            raise ConfigError(f"{p}: caption of {name!r} is not a string")
        out[_stem(str(name))] = cap
    if not out:
        raise ConfigError(f"{p}: no captions in the file")
    return out


def _stem(name: str) -> str:
    from ..io import IMAGE_EXTENSIONS

    base = os.path.basename(name)
    stem, ext = os.path.splitext(base)
    return stem if ext.lower() in IMAGE_EXTENSIONS else base


@CAPTIONERS.register("file")
class FileCaptioner(Captioner):
    """Captions looked up by image name in a JSON/CSV file (:func:`read_caption_file`).

    Args:
        caption_file: the caption file (``fusionlab caption --out`` writes one).
        missing: what to do with a name not in the file: ``"error"`` (default) or the name
            of a fallback captioner (``"rules"``, ``"constant"``).
    """

    needs_images = False

    def __init__(self, caption_file: str | os.PathLike | None = None, missing: str = "error"):
        if caption_file is None:
            raise ConfigError("the file captioner needs caption_file=PATH (write one with 'fusionlab caption')")
        self.path = Path(caption_file)
        self.captions = read_caption_file(self.path)
        self.missing = missing
        self._fallback = None if missing == "error" else build_captioner(missing)

    def caption(self, ir, vi, names=None, labels=None) -> list[str]:
        if names is None:
            raise ConfigError(f"the file captioner ({self.path}) needs the image names of the batch")
        out: list[str | None] = [self.captions.get(_stem(str(n))) for n in names]
        lost = [i for i, c in enumerate(out) if c is None]
        if lost and self._fallback is None:
            raise MissingPairError(f"{self.path}: no caption for image {names[lost[0]]!r} "
                                   f"({len(lost)} of {len(names)} in this batch missing; {len(self.captions)} in file)")
        if lost:
            sub = lambda x: x[lost] if isinstance(x, torch.Tensor) else None  # noqa: E731
            fill = self._fallback.caption(sub(ir), sub(vi), [names[i] for i in lost],
                                          [labels[i] for i in lost] if labels is not None else None)
            for i, c in zip(lost, fill):
                out[i] = c
        return out  # type: ignore[return-value]


def _seed_for(seed: int, names: Sequence[str] | None, counter: int) -> int:
    key = f"{seed}|" + ("|".join(map(str, names)) if names is not None else f"#{counter}")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def derangement(n: int, g: torch.Generator) -> list[int]:
    """A random permutation without fixed points (for n >= 2): a random cycle through all items."""
    if n < 2:
        return list(range(n))
    order = torch.randperm(n, generator=g).tolist()
    perm = [0] * n
    for k in range(n):  # order[k] takes the caption of order[k+1]
        perm[order[k]] = order[(k + 1) % n]
    return perm


@CAPTIONERS.register("shuffled")
class ShuffledCaptioner(Captioner):
    """Control: real captions given to the wrong images.

    The captions of ``base`` for a batch are permuted with a random derangement (every image
    gets another image's caption; for a batch of 1 nothing can move). The permutation is a
    pure function of ``seed`` and the batch's names (or of a call counter when names are
    absent), so reruns see the same pairing. With a ``file`` base (``caption_file=``) the
    permutation is over the whole file instead: image ``k`` gets the caption of image
    ``perm(k)``, the same in every batch.

    Args:
        base: captioner config/name whose captions are shuffled (default: ``oracle`` when
            labels are given, else ``rules``).
        seed: permutation seed.
        caption_file: shuffle a caption file at dataset level.
    """

    def __init__(self, base: str | dict | None = None, seed: int = 0, caption_file: str | os.PathLike | None = None):
        self.seed, self._calls = int(seed), 0
        self._file_map: dict[str, str] | None = None
        if caption_file is not None:
            caps = read_caption_file(caption_file)
            keys = sorted(caps)
            g = torch.Generator().manual_seed(self.seed)
            perm = derangement(len(keys), g)
            self._file_map = {keys[i]: caps[keys[perm[i]]] for i in range(len(keys))}
            self.base = None
            self.needs_images = False
        else:
            self.base = build_captioner(base) if base is not None else None
            self.needs_images = True if self.base is None else self.base.needs_images

    def caption(self, ir, vi, names=None, labels=None) -> list[str]:
        if self._file_map is not None:
            if names is None:
                raise ConfigError("the shuffled captioner over a caption file needs the image names")
            missing = [n for n in names if _stem(str(n)) not in self._file_map]
            if missing:
                raise MissingPairError(f"no caption for image {missing[0]!r} in the shuffled caption file")
            return [self._file_map[_stem(str(n))] for n in names]
        base = self.base or (OracleCaptioner() if labels is not None else RulesCaptioner())
        caps = base.caption(ir, vi, names=names, labels=labels)
        g = torch.Generator().manual_seed(_seed_for(self.seed, names, self._calls) % (2**63))
        self._calls += 1
        perm = derangement(len(caps), g)
        return [caps[j] for j in perm]


def build_captioner(cfg: dict | str | Captioner | None = None, **overrides) -> Captioner:
    """Build a captioner from ``{"type": name, ...}`` or a name; a captioner passes through.

    Example: ``build_captioner({"type": "file", "caption_file": "captions.json"})``.
    """
    if isinstance(cfg, Captioner):
        return cfg
    if cfg is None:
        raise ConfigError(f"no captioner given (known: {', '.join(CAPTIONERS.names())})")
    return CAPTIONERS.build(cfg, **overrides)


def write_caption_file(path: str | os.PathLike, captions: dict[str, str]) -> Path:
    """Write ``{name: caption}`` as sorted, indented JSON (CSV if the suffix is .csv), atomically."""
    from ..io import atomic_write_text

    p = Path(path)
    items = dict(sorted(captions.items()))
    if p.suffix.lower() == ".csv":
        import io as _io

        buf = _io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "caption"])
        w.writerows(items.items())
        return atomic_write_text(p, buf.getvalue())
    return atomic_write_text(p, json.dumps(items, indent=1, ensure_ascii=False) + "\n")


def caption_folder(captioner: Captioner | dict | str, ir_dir: str | os.PathLike, vi_dir: str | os.PathLike,
                   out: str | os.PathLike, resume: bool = True, labels: dict[str, str] | str | None = None,
                   limit: int | None = None, progress: bool = True, save_every: int = 1) -> dict[str, str]:
    """Caption every pair of two folders into a caption file (the ``file`` captioner's format).

    Args:
        captioner: captioner object or config.
        ir_dir, vi_dir: folders matched by file stem (fusionlab.data.find_pairs).
        out: ``.json`` (default format) or ``.csv``; rewritten atomically every
            ``save_every`` pairs, so an interrupted run loses at most that many captions.
        resume: keep captions already in ``out`` and skip those names.
        labels: for ``oracle``: ``{name: label}`` or one label for every pair.
        limit: caption at most this many (new) pairs.
        progress: tqdm bar on stderr.

    Returns:
        all captions now in ``out`` (``{name: caption}``).
    """
    from tqdm.auto import tqdm

    from ..data import find_pairs
    from ..data.paired import load_pair

    cap = build_captioner(captioner)
    out = Path(out)
    done: dict[str, str] = {}
    if resume and out.exists():
        done = read_caption_file(out)
    pairs = [p for p in find_pairs(ir_dir, vi_dir) if p[0] not in done]
    if limit is not None:
        pairs = pairs[: max(0, int(limit))]
    pending = 0
    for name, ir_p, vi_p in tqdm(pairs, desc=f"caption ({type(cap).__name__})", unit="pair", disable=not progress):
        lab = None
        if labels is not None:
            lab = [labels] if isinstance(labels, str) else [labels.get(name)] if name in labels else None
        if cap.needs_images:
            pair = load_pair(ir_p, vi_p)
            ir, vi = pair["ir"][None], pair["vi"][None]
        else:
            ir = vi = None
        try:
            done[name] = cap.caption(ir, vi, names=[name], labels=lab)[0]
        except InvalidTensorError as e:  # e.g. an image too small for the rules: name the pair's file
            raise InvalidTensorError(f"{ir_p}: {e}") from None
        pending += 1
        if pending >= save_every:
            write_caption_file(out, done)
            pending = 0
    if pending or not out.exists():
        write_caption_file(out, done)
    return done


# the vision-language captioner registers itself where it is defined (its module imports
# transformers only when a model is loaded)
from . import mllm  # noqa: E402,F401
