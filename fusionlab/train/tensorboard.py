"""Optional TensorBoard logging for the trainer (``tensorboard: true`` / ``--tensorboard``).

Event files go to ``<out_dir>/tensorboard/`` (``tensorboard --logdir runs``):

* ``train/<loss>`` and ``train/lr`` every ``log_every`` steps (the rows of train_log.csv);
* ``val/<metric>`` (EN, VIF, Qabf, SSIM) at every validation;
* ``samples/<pair>`` at every validation: infrared | visible luma | fused, side by side, for
  the first :data:`SAMPLES` validation pairs.

Needs the ``tensorboard`` package (``pip install 'fusionlab[tensorboard]'``); without it a
run asking for TensorBoard stops at once with a one-line ConfigError. A resumed run purges
events written after its checkpoint, as train_log.csv does.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError

SUBDIR = "tensorboard"
SAMPLES = 2


class TensorBoardLog:
    """Thin wrapper over ``torch.utils.tensorboard.SummaryWriter``.

    Args:
        out_dir: the run folder (events go to ``out_dir/tensorboard``).
        start_step: the step the run (re)starts from; later events of an earlier session
            are discarded.
    """

    def __init__(self, out_dir: str | Path, start_step: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("tensorboard logging needs the tensorboard package "
                              "(pip install 'fusionlab[tensorboard]'), or drop --tensorboard") from None
        self.log_dir = Path(out_dir) / SUBDIR
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=start_step or None)

    def scalars(self, kind: str, values: dict[str, float], step: int) -> None:
        for name, v in values.items():
            self.writer.add_scalar(f"{kind}/{name}", float(v), step)
        self.writer.flush()  # a killed run keeps what it logged

    def samples(self, trainer, step: int) -> None:
        """``samples/<name>``: ``(1, H, 3W)`` strips (infrared | visible luma | fused) in [0, 1]."""
        from ..io import to_luma

        for it in trainer.val_set[:SAMPLES]:
            ir, vi = it["ir"], it["vi"]  # (1, C, H, W), as validate() uses them
            fused = trainer.predict(ir, vi, it["name"]).cpu()
            strip = torch.cat([to_luma(ir)[0], to_luma(vi)[0], fused[0]], dim=-1).clamp(0, 1)
            self.writer.add_image(f"samples/{it['name']}", strip, step, dataformats="CHW")
        trainer.model.train()
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
