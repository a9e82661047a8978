"""Run-size presets: the one table of what ``ci``, ``laptop`` and ``full`` mean.

``FUSIONLAB_PRESET`` selects one (:func:`get_preset`): ``ci`` (seconds; CI and nbval),
``laptop`` (minutes on a CPU; the default for students) or ``full`` (the paper's settings,
for GPUs). :data:`PRESET_SETTINGS` is read by everything that has a size:

* the YAML configs (``fusionlab/configs/teacher_ci.yaml`` says ``preset: ci`` and gets its
  models, steps, crops, batch and data sizes from here; :meth:`Preset.train_fields`);
* :func:`fusionlab.train.run_experiment`, i.e. every ablation grid run, and the default
  projector it trains (``projector_*``);
* the walkthrough notebooks (``preset_settings(preset).steps``).

So "laptop" means the same 300-step teacher in ``fusionlab train --config teacher_laptop``,
in an ablation grid run with ``--preset laptop`` and in notebooks 03/04; "ci" means 8 steps.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import ConfigError

PRESETS = ("ci", "laptop", "full")
DEFAULT_PRESET = "laptop"
#: the evaluation conditions: the clean test pair and the four degradations of fusionlab.data
EVAL_CONDITIONS = ("normal", "low_light", "over_exposure", "ir_noise", "ir_low_contrast")
#: the real training pairs (disjoint from every test pair; see $FUSIONLAB_SHARED/data/train/README.md)
REAL_TRAIN = ("$FUSIONLAB_SHARED/data/train/msrs", "$FUSIONLAB_SHARED/data/train/roadscene")
REAL_TEST = "$FUSIONLAB_SHARED/data/msrs/test"


@dataclass(frozen=True)
class Preset:
    """What a preset sets (the same names as the config fields they fill).

    Attributes:
        model / model_args: the teacher network (``create_model(model, **model_args)``).
        student: the student network of stage ``distill``.
        steps / distill_steps: training steps of the teacher / the student.
        lr: peak learning rate of those runs (a short schedule needs a larger one).
        crop, batch: training crops and batch size.
        synthetic_train, synthetic_size: synthetic training scenes and their side.
        val_pairs, val_crop: validation pairs and their centre crop (None = whole images).
        log_every, val_every, ckpt_every: intervals in steps (0 = only at the end).
        eval_pairs, eval_size, eval_crop, eval_tile: evaluation of :func:`run_experiment`
            (synthetic scene side, centre crop, sliding-window tile; None = off).
        projector_steps, projector_pairs, projector_batch: the default caption-class regressor
            (``text_prior: projector``).
        vlv_steps, vlv_batch: the caption-free VLV-style encoder (``text_prior: vlv``), trained
            through the frozen oracle teacher on the preset's training crops (one encoder
            step costs about one teacher step: a forward and a backward pass through it).
        demo_steps, demo_projector_steps: steps of the short training demonstrations in
            walkthroughs 03/04 (they show the mechanics; the trained teacher and student are
            the shipped ones) and of the caption-free projector trained in 03.
        train_data: default training sources of a run (``"synthetic"`` or real folders;
            ``$FUSIONLAB_SHARED`` expands to the shared data folder). train_weights: their
            sampling weights (None: every pair once per epoch).
        eval_data: default evaluation set of a run (``"synthetic"`` or a test folder); every
            evaluation pair is scored clean and under each of ``eval_conditions``.
        eval_conditions: the degradation labels of the evaluation set (``normal`` = clean).
    """

    name: str
    model: str
    student: str
    steps: int
    distill_steps: int
    crop: int
    batch: int
    synthetic_train: int
    synthetic_size: int
    val_pairs: int
    val_crop: int | None
    log_every: int
    val_every: int
    ckpt_every: int
    eval_pairs: int
    eval_size: int
    eval_crop: int | None
    eval_tile: int | None
    projector_steps: int
    projector_pairs: int
    projector_batch: int
    demo_steps: int = 8
    demo_projector_steps: int = 80
    vlv_steps: int = 6
    vlv_batch: int = 2
    lr: float = 1e-4
    model_args: dict = field(default_factory=dict)
    train_data: tuple = ("synthetic",)
    train_weights: tuple | None = None
    eval_data: str = "synthetic"
    eval_conditions: tuple = EVAL_CONDITIONS

    def train_fields(self, stage: str) -> dict:
        """The :class:`~fusionlab.train.TrainConfig` fields this preset sets for ``stage``
        (``data`` as a dict of :class:`~fusionlab.train.DataConfig` fields)."""
        data = dict(train=list(self.train_data), train_weights=list(self.train_weights) if self.train_weights else None,
                    synthetic_train=self.synthetic_train, synthetic_val=self.val_pairs,
                    synthetic_size=self.synthetic_size, crop=self.crop, batch=self.batch, val_pairs=self.val_pairs,
                    val_crop=self.val_crop)
        common = dict(lr=self.lr, log_every=self.log_every, val_every=self.val_every, ckpt_every=self.ckpt_every, data=data)
        if stage == "distill":
            return dict(student=self.student, steps=self.distill_steps, **common)
        return dict(model=self.model, model_args=dict(self.model_args), steps=self.steps, **common)


#: the laptop budget (set from a measured run, see docs/ablations.md)
LAPTOP_STEPS = 120
LAPTOP_EVAL_PAIRS = 6

PRESET_SETTINGS: dict[str, Preset] = {p.name: p for p in (
    # seconds on 2 CPU cores; tiny variants, still every component (text prior, FiLM,
    # degradations, every loss, adapters, validation, checkpoints) runs
    Preset("ci", model="dtpf_teacher_tiny", student="dtpf_student_tiny", steps=8, distill_steps=8, crop=48,
           batch=2, synthetic_train=8, synthetic_size=64, val_pairs=1, val_crop=64, log_every=2, val_every=0,
           ckpt_every=0, eval_pairs=2, eval_size=96, eval_crop=96, eval_tile=None, projector_steps=30, demo_steps=3, demo_projector_steps=20,
           projector_pairs=16, projector_batch=12, vlv_steps=6, vlv_batch=2),
    # minutes per run on one CPU thread: small models (teacher width 16) trained on random crops of the
    # real MSRS + RoadScene training pairs (half of them degraded), evaluated on a fixed subset of
    # MSRS test pairs, centre-cropped, clean and under the four degradations; sized so that a
    # 15-run grid fits ~45 min on 2 cores (measured: docs/ablations.md)
    Preset("laptop", model="dtpf_teacher_tiny", model_args={"dim": 16}, student="dtpf_student_tiny", steps=LAPTOP_STEPS,
           distill_steps=LAPTOP_STEPS, crop=48, batch=4, lr=5e-4, synthetic_train=64, synthetic_size=128, val_pairs=2,
           val_crop=128, log_every=10, val_every=0, ckpt_every=50, eval_pairs=LAPTOP_EVAL_PAIRS, eval_size=256,
           eval_crop=128, eval_tile=None, projector_steps=200, projector_pairs=32, projector_batch=24,
           train_data=REAL_TRAIN, eval_data=REAL_TEST, demo_steps=8, demo_projector_steps=80,
           vlv_steps=LAPTOP_STEPS, vlv_batch=4),
    # the paper's settings (GPU): full models, 128 crops, batch 4, long schedule
    Preset("full", model="dtpf_teacher", student="dtpf_student", steps=100_000, distill_steps=100_000, crop=128,
           batch=4, synthetic_train=2048, synthetic_size=256, val_pairs=8, val_crop=256, log_every=50,
           val_every=2000, ckpt_every=1000, eval_pairs=20, eval_size=256, eval_crop=None, eval_tile=512, train_data=REAL_TRAIN, eval_data=REAL_TEST,
           projector_steps=1000, projector_pairs=128, projector_batch=32, demo_steps=300, demo_projector_steps=1000,
           vlv_steps=5000, vlv_batch=8),
)}


def _checked(name: str, what: str) -> str:
    if name not in PRESETS:
        raise ConfigError(f"{what}{name!r} is not one of {', '.join(PRESETS)}")
    return name


def get_preset(default: str = DEFAULT_PRESET) -> str:
    """Return the active preset name from ``FUSIONLAB_PRESET`` (validated)."""
    name = os.environ.get("FUSIONLAB_PRESET", "").strip().lower() or default
    return _checked(name, "FUSIONLAB_PRESET=")


def preset_settings(preset: str | None = None) -> Preset:
    """The :class:`Preset` named ``preset`` (default: the active one, :func:`get_preset`)."""
    return PRESET_SETTINGS[_checked(preset, "preset ") if preset else get_preset()]


def pick(ci, laptop, full, preset: str | None = None):
    """Choose a value by preset: ``pick(ci=2, laptop=50, full=500)`` (for notebook sizes that
    are not training settings: image sizes, numbers of pairs shown, ...)."""
    return {"ci": ci, "laptop": laptop, "full": full}[_checked(preset, "preset ") if preset else get_preset()]
