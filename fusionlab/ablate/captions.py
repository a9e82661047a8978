"""The caption file of the ``file`` row of the text-prior ablation, for synthetic data.

The paper captions every training/test image once, offline, with an MLLM (Qwen2-VL-7B) and
trains with those per-image captions. :func:`synthetic_caption_file` does the same for the
synthetic scenes :func:`fusionlab.train.run_experiment` uses (training, validation and
evaluation names of the chosen presets), with a captioner that looks at each clean scene
(default ``rules``, the offline stand-in for an MLLM: no weights to download).

Why this row differs from ``oracle``: training degrades each sample on the fly, so a
per-image caption written once cannot name the degradation of the sample in a given batch
(the oracle can). On real data with real degradations (MSRS night scenes) and an MLLM
file from ``fusionlab caption --captioner mllm``, the row is exactly the paper's setting.

The shipped file is ``ablations/captions/synthetic_rules.json``::

    python -c "from fusionlab.ablate.captions import synthetic_caption_file as f; \
f('ablations/captions/synthetic_rules.json')"

:func:`folder_caption_file` writes the same kind of file for real folders (the ``laptop``
preset trains on ``../shared/data/train`` and evaluates on MSRS test pairs): one caption per
clean image, keyed the way the trainer (``train/msrs:01319N``) and the evaluation (the test
pair's stem, ``00004N``) name them. Shipped as ``ablations/captions/real_rules.json``::

    python -c "from fusionlab.ablate.captions import folder_caption_file as f; \
f('ablations/captions/real_rules.json', preset='laptop')"
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def synthetic_names(presets: Sequence[str] = ("ci", "laptop")) -> dict[str, tuple[int, int]]:
    """``{scene name: (seed, size)}`` of every synthetic pair run_experiment may show a
    model under ``presets`` (training scenes, validation scenes, evaluation scenes)."""
    from ..presets import preset_settings
    from ..train.data import SYNTHETIC_TRAIN_SEED0, SYNTHETIC_VAL_SEED0
    from ..train.experiment import SYNTHETIC_EVAL_SEED0

    out: dict[str, tuple[int, int]] = {}
    for p in presets:
        s = preset_settings(p)
        # validation is synthetic whenever the evaluation set is not a training folder's
        # holdout; training / evaluation scenes only where the preset uses synthetic data
        sets = [(SYNTHETIC_VAL_SEED0, s.val_pairs, s.synthetic_size)]
        if "synthetic" in s.train_data:
            sets.append((SYNTHETIC_TRAIN_SEED0, s.synthetic_train, s.synthetic_size))
        if s.eval_data == "synthetic":
            sets.append((SYNTHETIC_EVAL_SEED0, s.eval_pairs, s.eval_size))
        for seed0, n, size in sets:
            for seed in range(seed0, seed0 + n):
                out.setdefault(f"syn_{seed:05d}", (seed, size))
    return out


def synthetic_caption_file(path: str | os.PathLike, presets: Sequence[str] = ("ci", "laptop"),
                           captioner: str | dict = "rules") -> Path:
    """Caption the clean synthetic scenes of ``presets`` into a ``{name: caption}`` JSON file."""
    from ..text.captioners import build_captioner, write_caption_file

    return write_caption_file(path, _caption_synthetic(build_captioner(captioner), synthetic_names(presets)))


def _caption_synthetic(cap, names: dict[str, tuple[int, int]]) -> dict[str, str]:
    """``{name: caption}`` of the clean synthetic scenes ``{name: (seed, size)}``, seen by ``cap``."""
    from ..data import make_pair

    captions = {}
    for name, (seed, size) in sorted(names.items()):
        pair = make_pair(seed, size, with_reference=False)
        captions[name] = cap.caption(pair["ir"][None], pair["vi"][None], names=[name], labels=["normal"])[0]
    return captions


def folder_caption_file(path: str | os.PathLike, preset: str = "laptop", captioner: str | dict = "rules") -> Path:
    """Caption every clean image of ``preset``'s real training folders and of its evaluation
    folder, plus the synthetic scenes the preset still uses (validation), into a
    ``{name: caption}`` JSON file (names as the trainer and the evaluation use them).

    Offline stand-in for the paper's per-image MLLM captions: the captioner sees each full,
    clean image once; training degrades crops on the fly, so the caption cannot name the
    degradation of a training sample (which the ``oracle`` row can).
    """
    from ..data import PairedFolder
    from ..errors import ConfigError
    from ..presets import preset_settings
    from ..text.captioners import build_captioner, write_caption_file
    from ..train.data import expand_path

    s = preset_settings(preset)
    folders = [(d, True) for d in s.train_data if d != "synthetic"]
    if s.eval_data != "synthetic":
        folders.append((s.eval_data, False))
    if not folders:
        raise ConfigError(f"preset {preset!r} uses synthetic data only: use synthetic_caption_file")
    cap = build_captioner(captioner)
    captions: dict[str, str] = {}
    for folder, training in folders:
        root = expand_path(folder)
        tag = f"{root.parent.name}/{root.name}:" if training else ""  # train.data._folder's tag
        ds = PairedFolder(root, vi_mode="rgb")
        for i in range(len(ds)):
            item = ds[i]
            name = f"{tag}{item['name']}"
            captions[name] = cap.caption(item["ir"][None], item["vi"][None], names=[name], labels=["normal"])[0]
    captions.update(_caption_synthetic(cap, synthetic_names((preset,))))  # synthetic validation scenes
    return write_caption_file(path, captions)
