"""The registry every kind of component uses (models, metrics, losses, captioners, ...)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fusionlab.errors import ConfigError
from fusionlab.registry import Registry


def test_registry_register_build_and_errors():
    reg = Registry("thing")

    @reg.register("double")
    def double(x=1):
        return 2 * x

    @reg.register()
    def triple(x=1):
        return 3 * x

    assert reg.names() == ["double", "triple"]
    assert reg.build({"type": "double", "x": 4}) == 8
    assert reg.build("triple", x=2) == 6
    assert "double" in reg and len(reg) == 2
    with pytest.raises(ConfigError, match="unknown thing 'nope'"):
        reg.get("nope")
    with pytest.raises(ConfigError, match="'type'"):
        reg.build({"x": 1})
    with pytest.raises(ValueError):
        reg.register("double", obj=lambda: 0)


def test_build_rejects_unknown_arguments_and_accepted_offers_only_named_ones():
    reg = Registry("thing")

    @reg.register("scaled")
    def scaled(x, factor=2):
        return x * factor

    assert reg.build("scaled", x=3) == 6
    with pytest.raises(ConfigError, match=r"thing 'scaled' got unknown argument\(s\) fator \(it takes: factor, x\)"):
        reg.build({"type": "scaled", "x": 3, "fator": 5})
    assert reg.accepted("scaled", {"x": 1, "factor": 3, "other": 0}) == {"x": 1, "factor": 3}


# ---------------------------------------------------------------------------- new entries get the contract tests
#: a plugin registering one new entry of each kind, as a user's own code would
SCRATCH_PLUGIN = '''
from fusionlab.losses import LOSSES
from fusionlab.metrics import register_metric
from fusionlab.models import MODELS
from fusionlab.models.net import FusionNetConfig
from fusionlab.text import CAPTIONERS, Captioner

MODELS.register("scratch_model", obj=lambda: FusionNetConfig(dim=8, blocks=(1, 1, 1, 1), refinement=1, head_dim=8,
                                                             spatial_heads=(1, 1, 2, 2), text_dim=16,
                                                             fusion="concat_conv1x1"))


@register_metric("scratch_contrast", default=False, bounds=(0, 255))
def scratch_contrast(fused, ir, vi, convention):
    flat = fused.flatten(1)
    return flat.amax(1) - flat.amin(1)


@LOSSES.register("scratch_l1_ir")
def scratch_l1_ir(fused, ir, vi):
    return (fused - ir).abs().flatten(1).mean(1)


@CAPTIONERS.register("scratch_captioner")
class ScratchCaptioner(Captioner):
    needs_images = False

    def caption(self, ir, vi, names=None, labels=None):
        return ["Event Type: normal\\nDescription: a scratch caption."] * len(names)
'''
CONTRACTS = ("models/test_model_contract.py", "metrics/test_metric_contract.py", "losses/test_loss_contract.py",
             "text/test_text_contract.py")


def test_a_scratch_registration_gets_the_contract_tests(pytester):
    """Registering a model, a metric, a loss and a captioner (in a plugin loaded before
    collection) adds their contract tests, unedited, and they run and pass."""
    pytester.makepyfile(scratch_entries=SCRATCH_PLUGIN)
    tests = Path(__file__).resolve().parent
    result = pytester.runpytest_subprocess("-p", "scratch_entries", "-p", "no:cacheprovider", "-k", "scratch", "-v",
                                           *(str(tests / c) for c in CONTRACTS))
    result.stdout.fnmatch_lines([
        "*test_model_forward_backward_at_odd_sizes*scratch_model* PASSED*",
        "*test_model_is_deterministic_in_eval_mode_and_batch_independent*scratch_model* PASSED*",
        "*test_metric_contract*scratch_contrast* PASSED*",
        "*test_fusion_loss_contract*scratch_l1_ir* PASSED*",
        "*test_captioner_contract*scratch_captioner* PASSED*",
        "*test_text_prior_source_contract*scratch_captioner* PASSED*",  # a captioner is a text prior too
    ], consecutive=False)
    result.assert_outcomes(passed=8)  # model: 2 sizes + eval; metric: 1; loss: RGB + gray VI; captioner + prior
