"""The predict stage's maths on known answers: importance weights, effective sample size, KL to the base,
best-of-n, the positive control's closed form, and the oracle reward TRL's PPO calls."""
import math

import numpy as np
import pytest
import torch

from rlhf.stages.control import ControlReward, closed_form_share, wilson_interval
from rlhf.stages.predict import (best_of_n_kl, best_of_n_weights, entropy_at_n, ess, kl_to_base, normalised_weights,
                                 plugin_weighted)


def test_closed_form_matches_the_issue_numbers_and_importance_resampling():
    assert closed_form_share(0.206, 1.0, 0.5) == pytest.approx(0.657, abs=1e-3)
    assert closed_form_share(0.206, 1.0, 0.2) == pytest.approx(0.975, abs=1e-3)
    assert closed_form_share(0.3, 1.0, 1e9) == pytest.approx(0.3)  # a huge beta keeps the base
    rng = np.random.default_rng(0)
    hits = rng.random(20000) < 0.206  # a pool of base samples; u = 1 for the value
    for beta in (0.5, 1.0):
        w = normalised_weights(hits.astype(float), beta)
        assert float(w[hits].sum()) == pytest.approx(closed_form_share(hits.mean(), 1.0, beta), abs=1e-9)


def test_weights_ess_and_kl_on_known_answers():
    r = np.array([0.0, 0.0, 0.0, 0.0])
    w = normalised_weights(r, 0.1)
    assert ess(w) == pytest.approx(4) and kl_to_base(w) == pytest.approx(0.0)
    w = normalised_weights(np.array([0.0, 100.0, 0.0, 0.0]), 0.01)  # all mass on one sample
    assert ess(w) == pytest.approx(1) and kl_to_base(w) == pytest.approx(math.log(4))
    # two outcomes: KL(q || p) of the tilted share q against p = 1/2
    w = normalised_weights(np.array([1.0, 0.0]), 1.0)
    q = math.e / (math.e + 1)
    assert kl_to_base(w) == pytest.approx(q * math.log(2 * q) + (1 - q) * math.log(2 * (1 - q)))
    assert normalised_weights(np.array([1e4, 0.0]), 1e-3)[0] == pytest.approx(1.0)  # no overflow


def test_best_of_n_weights_and_kl():
    rng = np.random.default_rng(1)
    r = rng.normal(size=5000)
    for n in (2, 8, 64):
        w = best_of_n_weights(r, n)
        assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
        draws = rng.choice(r, size=(4000, n)).max(axis=1)  # Monte Carlo best of n from the same pool
        assert float(w @ r) == pytest.approx(draws.mean(), abs=0.03)
        assert best_of_n_kl(n) == pytest.approx(math.log(n) - (n - 1) / n)
        assert kl_to_base(w) <= best_of_n_kl(n) + 1e-9  # the pool estimate cannot exceed the analytic value


def test_entropy_at_n_is_the_plug_in_of_a_resampled_set():
    codes = np.array([0, 1, 2, 3] * 50 + [-1] * 10)
    uniform = np.full(len(codes), 1 / len(codes))
    rng = np.random.default_rng(0)
    big = entropy_at_n(codes, uniform, 5000, 3, rng)
    assert big == pytest.approx(2.0, abs=0.01)
    small = entropy_at_n(codes, uniform, 8, 400, rng)
    assert small < big - 0.2  # the plug-in is biased down at small n: why the cells compare at one n
    assert plugin_weighted(codes, uniform) == pytest.approx(2.0)
    one = np.where(codes == 2, 1.0, 0.0)
    assert entropy_at_n(codes, one / one.sum(), 20, 10, rng) == 0.0


def test_wilson_interval_contains_the_share():
    lo, hi = wilson_interval(41, 200)
    assert lo < 41 / 200 < hi and 0.15 < lo and hi < 0.27


class _Tok:
    """Decodes ids as characters (0 = pad)."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids if i)


def _ids(text):
    return [ord(c) for c in text]


def test_control_reward_scores_the_card_as_trl_reads_it():
    from trl.experimental.utils import get_reward

    prompt = _ids("Write a persona:\n")
    cards = ["Gender: Male\nAge: 30\nNationality: American\n", "Gender: Male\nAge: 30\nNationality: Indian\n",
             "no card at all"]
    reward = ControlReward(_Tok(), [prompt], "nationality", "American", 2.0)
    width = max(len(prompt) + len(_ids(c)) for c in cards)
    rows = [[0] * (width - len(prompt) - len(_ids(c))) + prompt + _ids(c) for c in cards]  # left-padded queries
    rows = torch.tensor(rows)
    _, score, _ = get_reward(reward, rows, pad_token_id=0, context_length=0)
    assert score.tolist() == [2.0, 0.0, 0.0]
    assert reward(rows, attention_mask=rows != 0).logits[:, 0].tolist() == [2.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="control.attribute"):
        ControlReward(_Tok(), [prompt], "shoe_size", "9", 1.0)
