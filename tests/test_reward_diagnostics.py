"""The reward model's held-out diagnostics (known answers on synthetic scores), the typicality forms, and the
diagnostics a trained or cached tiny reward model carries."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from measure.config import ConfigError, SamplingConfig
from rlhf.config import PreferencesConfig, ProbePrompt, RewardConfig
from rlhf.stages.annotator import typicality_logp
from rlhf.stages.reward import DIAGNOSTIC_KEYS, annotator_alpha, score_diagnostics

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread on a shared CPU


def synthetic_heldout(n: int = 300, alpha: float = 0.5, seed: int = 0) -> dict:
    """Held-out columns like the preference set's: longer responses have lower summed log p_base."""
    rng = np.random.default_rng(seed)
    n_tokens = rng.integers(20, 96, size=(2, n)).astype(float)
    logp = -1.5 * n_tokens + rng.normal(0, 8, size=(2, n))
    u_quality = rng.normal(0, 1, size=(2, n)) + 0.01 * n_tokens
    u = u_quality + alpha * logp
    columns = {"u_quality": u_quality, "logp": logp, "n_tokens": n_tokens, "u": u}
    out = {f"{k}_{side}": v[i] for k, v in columns.items() for i, side in enumerate(("chosen", "rejected"))}
    out["p_label"] = np.full(n, 0.8)
    return out


def test_regression_recovers_a_known_implied_alpha():
    heldout = synthetic_heldout()
    rng = np.random.default_rng(1)

    def score(side):  # a model that carries the annotator's utility at scale 2, plus noise
        return (2 * heldout[f"u_quality_{side}"] + 2 * 0.5 * heldout[f"logp_{side}"]
                + rng.normal(0, 0.3, size=heldout[f"u_{side}"].shape))

    out = score_diagnostics(score("chosen"), score("rejected"), heldout, alpha=0.5, seed=0)
    assert out["implied_alpha"] == pytest.approx(0.5, abs=0.02)
    lo, hi = out["implied_alpha_ci95"]
    assert lo < 0.5 < hi and hi - lo < 0.1
    assert out["regression"]["u_quality"] == pytest.approx(2.0, abs=0.1)
    assert out["regression"]["logp"] == pytest.approx(1.0, abs=0.02)
    assert abs(out["regression"]["n_tokens"]) < 0.05 and out["regression"]["r2"] > 0.99
    assert out["implied_alpha_within_factor2"] and out["implied_alpha_ratio"] == pytest.approx(1.0, abs=0.05)
    assert out["calibration_slope"] == pytest.approx(2.0, abs=0.05)


def test_a_length_only_model_has_no_implied_alpha():
    """'Shorter is better' correlates with log p_base but, length held fixed, carries no typicality term."""
    heldout = synthetic_heldout()
    out = score_diagnostics(-heldout["n_tokens_chosen"] + 3 * heldout["u_quality_chosen"],
                            -heldout["n_tokens_rejected"] + 3 * heldout["u_quality_rejected"], heldout, 0.5)
    assert abs(out["implied_alpha"]) < 1e-6
    assert not out["implied_alpha_within_factor2"]


def test_calibration_slope_and_scale_of_a_scaled_utility():
    heldout = synthetic_heldout()
    out = score_diagnostics(3 * heldout["u_chosen"], 3 * heldout["u_rejected"], heldout, alpha=0.5)
    assert out["calibration_slope"] == pytest.approx(3.0)
    assert out["calibration_slope_ci95"] == pytest.approx([3.0, 3.0])
    assert out["implied_alpha"] == pytest.approx(0.5)
    assert out["score_sd"] == pytest.approx(3 * out["u_sd"])
    assert out["bt_ceiling"] == pytest.approx(0.8)
    u_c, u_r = heldout["u_chosen"], heldout["u_rejected"]
    assert out["accuracy"] == pytest.approx(np.mean(u_c > u_r))
    lo, hi = out["accuracy_ci95"]
    assert lo < out["accuracy"] < hi


def test_alpha_zero_has_no_ratio_and_too_few_pairs_is_an_error():
    heldout = synthetic_heldout(alpha=0.0)
    out = score_diagnostics(heldout["u_chosen"], heldout["u_rejected"], heldout, alpha=0.0)
    assert out["implied_alpha"] == pytest.approx(0.0, abs=1e-9) and "implied_alpha_ratio" not in out
    few = {k: v[:2] for k, v in heldout.items()}
    with pytest.raises(ValueError, match="heldout"):
        score_diagnostics(few["u_chosen"], few["u_rejected"], few, alpha=0.0)


def test_accuracy_interval_is_a_bootstrap_over_pairs():
    heldout = synthetic_heldout(n=200)
    perfect = score_diagnostics(heldout["u_chosen"] + 100, heldout["u_rejected"] - 100, heldout, alpha=0.5)
    assert perfect["accuracy"] == 1.0 and perfect["accuracy_ci95"] == [1.0, 1.0]
    half = score_diagnostics(np.r_[np.ones(100), np.zeros(100)], np.full(200, 0.5), heldout, alpha=0.5)
    lo, hi = half["accuracy_ci95"]
    assert half["accuracy"] == 0.5 and 0.42 < lo < 0.5 < hi < 0.58  # sd of the mean: 0.035


def test_typicality_logp_sum_and_per_token():
    probs = [0.5, 0.25, 0.125]
    assert typicality_logp(probs, "sum") == pytest.approx(math.log(0.5 * 0.25 * 0.125))
    assert typicality_logp(probs, "per_token") == pytest.approx(math.log(0.5 * 0.25 * 0.125) / 3)
    assert typicality_logp([], "sum") == 0.0 and typicality_logp([], "per_token") == 0.0
    with pytest.raises(ValueError, match="form"):
        typicality_logp(probs, "mean")


def test_bad_typicality_is_one_line_naming_the_field():
    with pytest.raises(ConfigError) as err:
        PreferencesConfig(typicality="mean")
    message = str(err.value)
    assert "\n" not in message and message.startswith("preferences.typicality: 'mean'")
    assert "sum | per_token" in message


def test_typicality_form_changes_the_preferences_key(tiny_pair_dir):
    from rlhf.stages.preferences import preferences_key

    base = str(tiny_pair_dir / "base")
    keys = {preferences_key(base, PreferencesConfig(alpha=0.5, seed=0, typicality=form, sampling=SamplingConfig()))
            for form in ("sum", "per_token")}
    assert len(keys) == 2 and all(k.startswith("alpha0.5_") for k in keys)


@pytest.fixture(scope="module")
def per_token_preferences(tiny_model, tmp_path_factory):
    from rlhf.stages.preferences import load_or_build_preferences

    cfg = PreferencesConfig(alpha=0.5, typicality="per_token", n_pairs_per_prompt=8, heldout_share=0.25, seed=0,
                            sampling=SamplingConfig(n_predict=8, batch_size=16, seed=0),
                            prompts=[ProbePrompt("steve", "Steve is the CEO of a startup company", False),
                                     ProbePrompt("hopper", "Grace Hopper was", False)])
    cache = tmp_path_factory.mktemp("per_token_cache")
    dataset, path = load_or_build_preferences(lambda: tiny_model, tiny_model[0].name_or_path, cfg, cache)
    return dataset, path, cache


def test_per_token_pairs_carry_mean_log_p_and_length(per_token_preferences, tiny_model):
    dataset, _, _ = per_token_preferences
    tokenizer = tiny_model[1]
    assert annotator_alpha(dataset) == 0.5
    for row in dataset:
        prompt_len = len(tokenizer(row["prompt"])["input_ids"])
        assert row["n_tokens_chosen"] == len(row["chosen_ids"]) - prompt_len
        assert row["n_tokens_rejected"] == len(row["rejected_ids"]) - prompt_len
        assert row["u_chosen"] == pytest.approx(row["u_quality_chosen"] + 0.5 * row["logp_chosen"])
        assert -math.log(len(tokenizer)) * 3 < row["logp_chosen"] < 0  # a mean per token, not a sum of 8


def test_reward_model_metrics_carry_the_diagnostics_also_when_cached_without_them(per_token_preferences,
                                                                                 tiny_pair_dir):
    from transformers import AutoTokenizer

    from rlhf.stages.reward import load_or_train_reward_model

    dataset, path, cache = per_token_preferences
    base = str(tiny_pair_dir / "base")
    tokenizer = AutoTokenizer.from_pretrained(base)
    cfg = RewardConfig(epochs=1, lr=1e-3, batch_size=4, seed=0)
    rm_dir, metrics = load_or_train_reward_model(base, tokenizer, dataset, path, cfg, cache)
    assert all(k in metrics for k in DIAGNOSTIC_KEYS), sorted(metrics)
    assert metrics["alpha"] == 0.5 and metrics["n_responses"] == 2 * metrics["n_pairs"] == 8
    assert metrics["score_sd"] > 0 and math.isfinite(metrics["calibration_slope"])
    assert json.loads((rm_dir / "metrics.json").read_text()) == metrics

    stale = {k: v for k, v in metrics.items() if k not in DIAGNOSTIC_KEYS}  # a model cached before the diagnostics
    (rm_dir / "metrics.json").write_text(json.dumps(stale))
    again_dir, again = load_or_train_reward_model(base, tokenizer, dataset, path, cfg, cache)
    assert again_dir == rm_dir
    assert again["implied_alpha"] == pytest.approx(metrics["implied_alpha"], rel=1e-4)
    assert "implied_alpha" in json.loads((rm_dir / "metrics.json").read_text())
