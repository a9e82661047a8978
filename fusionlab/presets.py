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


@dataclass(frozen=True)
class Preset:
    """What a preset sets (the same names as the config fields they fill).

    Attributes:
        model / model_args: the teacher network (``create_model(model, **model_args)``).
        student: the student network of stage ``distill``.
        steps / distill_steps: training steps of the teacher / the student.
        crop, batch: training crops and batch size.
        synthetic_train, synthetic_size: synthetic training scenes and their side.
        val_pairs, val_crop: validation pairs and their centre crop (None = whole images).
        log_every, val_every, ckpt_every: intervals in steps (0 = only at the end).
        eval_pairs, eval_size, eval_crop, eval_tile: evaluation of :func:`run_experiment`
            (synthetic scene side, centre crop, sliding-window tile; None = off).
        projector_steps, projector_pairs, projector_batch: the default caption-free projector.
        demo_steps, demo_projector_steps: steps of the short training demonstrations in
            walkthroughs 03/04 (they show the mechanics; the trained teacher and student are
            the shipped ones) and of the caption-free projector trained in 03.
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
    model_args: dict = field(default_factory=dict)

    def train_fields(self, stage: str) -> dict:
        """The :class:`~fusionlab.train.TrainConfig` fields this preset sets for ``stage``
        (``data`` as a dict of :class:`~fusionlab.train.DataConfig` fields)."""
        data = dict(synthetic_train=self.synthetic_train, synthetic_val=self.val_pairs,
                    synthetic_size=self.synthetic_size, crop=self.crop, batch=self.batch, val_pairs=self.val_pairs,
                    val_crop=self.val_crop)
        common = dict(log_every=self.log_every, val_every=self.val_every, ckpt_every=self.ckpt_every, data=data)
        if stage == "distill":
            return dict(student=self.student, steps=self.distill_steps, **common)
        return dict(model=self.model, model_args=dict(self.model_args), steps=self.steps, **common)


PRESET_SETTINGS: dict[str, Preset] = {p.name: p for p in (
    # seconds on 2 CPU cores; tiny variants, still every component (text prior, FiLM,
    # degradations, every loss, adapters, validation, checkpoints) runs
    Preset("ci", model="dtpf_teacher_tiny", student="dtpf_student_tiny", steps=8, distill_steps=8, crop=48,
           batch=2, synthetic_train=8, synthetic_size=64, val_pairs=1, val_crop=64, log_every=2, val_every=0,
           ckpt_every=0, eval_pairs=2, eval_size=96, eval_crop=96, eval_tile=None, projector_steps=30, demo_steps=3, demo_projector_steps=20,
           projector_pairs=16, projector_batch=12),
    # a few minutes on a laptop CPU: small models (teacher width 16), short schedule
    Preset("laptop", model="dtpf_teacher_tiny", model_args={"dim": 16}, student="dtpf_student_tiny", steps=300,
           distill_steps=300, crop=64, batch=4, synthetic_train=64, synthetic_size=128, val_pairs=2, val_crop=128,
           log_every=10, val_every=100, ckpt_every=50, eval_pairs=4, eval_size=256, eval_crop=256, eval_tile=None,
           projector_steps=200, projector_pairs=32, projector_batch=24, demo_steps=8, demo_projector_steps=80),
    # the paper's settings (GPU): full models, 128 crops, batch 4, long schedule
    Preset("full", model="dtpf_teacher", student="dtpf_student", steps=100_000, distill_steps=100_000, crop=128,
           batch=4, synthetic_train=2048, synthetic_size=256, val_pairs=8, val_crop=256, log_every=50,
           val_every=2000, ckpt_every=1000, eval_pairs=20, eval_size=256, eval_crop=None, eval_tile=512,
           projector_steps=1000, projector_pairs=128, projector_batch=32, demo_steps=300, demo_projector_steps=1000),
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
