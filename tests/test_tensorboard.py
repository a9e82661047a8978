"""Optional TensorBoard logging of the trainer (``--tensorboard`` / ``tensorboard: true``)."""
from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_tensorboard_run_writes_losses_metrics_and_images(tmp_path, run_cli):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    code, _, err = run_cli("train", "--config", "teacher_ci", "--out", out, "--steps", "4", "--no-progress",
                           "--tensorboard", "--set", "val_every=2", "--set", "text_prior=none",
                           "--set", "data.synthetic_train=2", "--set", "data.synthetic_size=48",
                           "--set", "data.val_crop=48", "--set", "data.crop=32", "--set", "data.batch=1")
    assert code == 0, err
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = acc.Tags()
    assert {"train/loss", "train/lr", "train/l_int", "val/EN", "val/VIF", "val/Qabf", "val/SSIM"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4]  # log_every 2 in teacher_ci
    assert [e.step for e in acc.Scalars("val/EN")] == [2, 4]  # at val_every and at the end
    assert len(tags["images"]) == 1  # one validation pair: infrared | visible | fused
    img = acc.Images(tags["images"][0])[-1]
    assert img.step == 4 and (img.width, img.height) == (3 * 48, 48)


def test_tensorboard_without_the_package_is_one_line(tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    code, _, err = run_cli("train", "--config", "teacher_ci", "--out", tmp_path / "run", "--steps", "1",
                           "--no-progress", "--tensorboard")
    assert code == 1 and "tensorboard logging needs the tensorboard package" in err and err.count("\n") == 1
