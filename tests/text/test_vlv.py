"""The caption-free VLV-style prior (fusionlab.text.vlv): an image encoder trained through a
frozen text-guided teacher with the fusion loss, reading no caption or label. Tiny untrained
teachers and 32 px crops keep each test to a few seconds."""
from __future__ import annotations

import pytest
import torch

from fusionlab.errors import ConfigError
from fusionlab.models import create_model
from fusionlab.text import build_text_prior, format_caption
from fusionlab.text.vlv import LABEL_FREE_KEYS, caption_span_basis, span_residual, train_vlv_encoder
from fusionlab.train import BatchStream, build_sources

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def oracle():
    return build_text_prior("oracle", text_dim=512)


def _teacher(seed=0):
    torch.manual_seed(seed)
    return create_model("dtpf_teacher_tiny", dim=8)


def _stream(seed=0, batch=2):
    """ci-sized training data: degraded crops of synthetic scenes, as the trainer builds them."""
    src = build_sources(["synthetic"], "train", synthetic_pairs=4, synthetic_size=48, holdout=0)
    return BatchStream(src, 32, batch, degrade_prob=0.8, seed=seed)


class ImagesOnly(dict):
    """A batch that fails the test when anything but the images is read."""

    def __getitem__(self, k):
        assert k in LABEL_FREE_KEYS, f"the VLV encoder read batch[{k!r}]"
        return super().__getitem__(k)

    def get(self, k, default=None):
        assert k in LABEL_FREE_KEYS, f"the VLV encoder read batch.get({k!r})"
        return super().get(k, default)


def test_span_basis_and_residual(oracle):
    basis = caption_span_basis(oracle)
    assert basis.shape[0] == 512 and 2 <= basis.shape[1] <= 5
    assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1]), atol=1e-5)  # orthonormal
    protos = oracle.embed_texts([format_caption(c) for c in ("normal", "low_light", "ir_noise")])
    assert span_residual(protos, basis).max() < 1e-5  # every caption embedding lies in the span
    other = torch.nn.functional.normalize(torch.randn(4, 512), dim=1)
    r = span_residual(other, basis)
    assert ((r > 0.9) & (r <= 1.0 + 1e-5)).all()  # a random direction is almost entirely outside


def test_encoder_loss_decreases_and_teacher_stays_frozen(oracle):
    teacher = _teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    batch = _stream().batch(0)
    enc, info = train_vlv_encoder(teacher, lambda step: batch, prior=oracle, steps=4, log_every=1, seed=0)
    losses = [h["loss"] for h in info["history"]]
    assert len(losses) == 4 and losses[-1] < losses[0], losses  # the same batch: the loss must go down
    assert info["final_loss"] == losses[-1] and info["seconds"] > 0
    # frozen: no parameter changed, none got a gradient, flags and mode restored
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in teacher.parameters())
    assert not enc.training
    emb = build_text_prior("vlv", text_dim=512, projector=enc)({"ir": batch["ir"], "vi": batch["vi"]})
    assert emb.shape == (2, 512) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)


def test_no_caption_or_label_is_read(oracle):
    stream = _stream(seed=3)

    def real(step):
        return stream.batch(step)

    def garbage(step):  # labels and names replaced; only the image keys readable
        b = stream.batch(step)
        return ImagesOnly({**b, "labels": ["garbage"] * len(b["labels"]), "names": ["?"] * len(b["names"])})

    def no_labels(step):
        b = stream.batch(step)
        return ImagesOnly({k: b[k] for k in LABEL_FREE_KEYS})

    runs = [train_vlv_encoder(_teacher(), fn, prior=oracle, steps=2, seed=1)[0] for fn in (real, garbage, no_labels)]
    ref = runs[0].state_dict()
    for other in runs[1:]:
        assert all(torch.equal(ref[k], v) for k, v in other.state_dict().items())


def test_bad_inputs_are_one_line_errors(oracle):
    with pytest.raises(ConfigError, match="text-guided teacher"):
        train_vlv_encoder(create_model("dtpf_student_tiny"), _stream().batch, prior=oracle, steps=1)
    with pytest.raises(ConfigError, match=">= 2 pairs"):
        train_vlv_encoder(_teacher(), _stream(batch=1).batch, prior=oracle, steps=1)
    with pytest.raises(ConfigError, match="'vlv' needs checkpoint"):
        build_text_prior("vlv")
