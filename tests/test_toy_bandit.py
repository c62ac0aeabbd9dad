"""Known-answer and equivalence tests of toy_bandit (rules, Table 1, simulator). Seconds on 2 cores."""
from __future__ import annotations

import math

import numpy as np
import pytest

from toy_bandit import rules as R
from toy_bandit.config import (BanditConfig, PpoKlRuleConfig, RulesConfig, SimulateConfig, ToyBanditConfig,
                               WandbConfig)
from toy_bandit.simulate import Bandit, chatbot_bandit, make_rule, run_bandit, simulate_all, trap_bandit
from toy_bandit.table1 import format_table1, replay_table1


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture
def table1_rows():
    return replay_table1(["Jeepiti", "Chats and Giggles"], [1.0, 0.4])


@pytest.fixture
def three_armed() -> Bandit:
    """Unequal start and three rewards, so no answer holds by symmetry alone."""
    return Bandit(("a", "b", "c"), np.array([1.0, 0.4, 1.5]), np.log(np.array([0.5, 0.3, 0.2])))


# ---------------------------------------------------------------------------------------- Table 1

def test_table1_rows_under_the_stated_rule(table1_rows):
    # Logit gaps under "add A to the taken logit, v <- R": 0, 1, 1.6, 1.6, 2.2.
    assert [r["t"] for r in table1_rows] == [0, 1, 2, 3, 4]
    assert [r["action"] for r in table1_rows] == [None, "Jeepiti", "Chats and Giggles", "Chats and Giggles", "Jeepiti"]
    assert [r["reward"] for r in table1_rows] == [None, 1.0, 0.4, 0.4, 1.0]
    adv = [r["advantage"] for r in table1_rows]
    assert adv[0] is None and adv[1:] == pytest.approx([1.0, -0.6, 0.0, 0.6])
    assert [r["value"] for r in table1_rows] == pytest.approx([0.0, 1.0, 0.4, 0.4, 1.0])
    gaps = [0.0, 1.0, 1.6, 1.6, 2.2]
    assert [r["logit_gap"] for r in table1_rows] == pytest.approx(gaps)
    assert [r["p_jeepiti"] for r in table1_rows] == pytest.approx([sigmoid(g) for g in gaps])
    assert [r["p_chats"] for r in table1_rows] == pytest.approx([1 - sigmoid(g) for g in gaps])
    # The footnote's worked example: 0.5 -> e / (1 + e) ~ 0.73.
    assert table1_rows[1]["p_jeepiti"] == pytest.approx(math.e / (1 + math.e))


def test_table1_flags_exactly_the_rows_the_rule_contradicts(table1_rows):
    assert [r["matches_paper"] for r in table1_rows] == [True, True, False, False, False]
    assert [r["paper_p_jeepiti"] for r in table1_rows] == [0.5, 0.73, 0.83, 0.83, 0.93]
    for t in (2, 3):  # reward column prints 0.8; the advantage column and the text use 0.4
        text = " ".join(table1_rows[t]["mismatches"])
        assert "reward vs advantage column" in text and "pi_t" not in text
    row4 = " ".join(table1_rows[4]["mismatches"])
    assert "pi_t(Jeepiti): printed 0.93" in row4 and "reward" not in row4
    assert table1_rows[4]["paper_logit_gap"] == pytest.approx(math.log(0.93 / 0.07))


def test_table1_required_keys_and_formatting(table1_rows):
    required = {"t", "action", "reward", "advantage", "value", "p_jeepiti", "p_chats", "paper_p_jeepiti",
                "matches_paper"}
    assert all(required <= set(r) for r in table1_rows)
    text = format_table1(table1_rows)
    assert "0.90 [0.93] *" in text and "0.40 [0.80] *" in text and text.count("FLAGGED") == 3


def test_table1_needs_both_responses():
    with pytest.raises(ValueError, match="bandit.actions"):
        replay_table1(["Jeepiti", "Other"], [1.0, 0.4])


# ---------------------------------------------------------------------------------------- rules

def test_entropy_and_kl_known_answers():
    assert R.entropy_bits(np.full(4, 0.25)) == pytest.approx(2.0)
    assert R.entropy_bits(np.array([0.0, 1.0, 0.0])) == 0.0
    p = np.array([0.2, 0.8])
    assert R.kl_nats(p, p) == pytest.approx(0.0)
    assert R.kl_nats(p, np.array([0.5, 0.5])) == pytest.approx(0.2 * math.log(0.4) + 0.8 * math.log(1.6))
    logits = np.array([[3.0, -1.0, 0.5], [1e3, 0.0, -1e3]])
    assert R.softmax(logits) == pytest.approx(np.exp(R.log_softmax(logits)))
    assert R.softmax(logits).sum(axis=-1) == pytest.approx([1.0, 1.0])


def test_rules_do_not_modify_their_inputs():
    logits, value, q = np.zeros((3, 2)), np.zeros(3), np.zeros((3, 2))
    a, r = np.array([0, 1, 0]), np.array([1.0, 0.4, 1.0])
    snapshot = [x.copy() for x in (logits, value, q)]
    R.advantage_update(logits, value, a, r)
    R.actde_update(logits, q, a, r)
    R.reinforce_update(logits, value, a, r)
    R.ppo_kl_update(logits, logits, value, a, r)
    for before, after in zip(snapshot, (logits, value, q)):
        np.testing.assert_array_equal(before, after)


def test_advantage_rule_drives_pi_jeepiti_to_one():
    # Alternating responses: every switch adds 0.6 to the gap (A = 1 - 0.4 for Jeepiti, 0.4 - 1 for
    # Chats), so a single reward difference is extracted without bound.
    logits, v = np.zeros((1, 2)), np.zeros(1)
    for t in range(60):
        a = t % 2
        logits, v, _ = R.advantage_update(logits, v, np.array([a]), np.array([[1.0, 0.4][a]]))
    assert logits[0, 0] - logits[0, 1] == pytest.approx(1.0 + 0.6 * 59)
    assert R.softmax(logits)[0, 0] > 1 - 1e-15
    # Sampled actions, 500 seeds: every seed ends near-deterministic on Jeepiti.
    run = run_bandit(make_rule("advantage", RulesConfig()), chatbot_bandit(BanditConfig()), 500, 300, seed=3)
    assert run.final[:, 0].min() > 0.95 and run.final[:, 0].mean() > 0.99


def test_actde_converges_to_softmax_of_rewards_added_to_initial_logits(three_armed):
    run = run_bandit(make_rule("actde", RulesConfig()), three_armed, 300, 200, seed=0)
    expected = R.softmax(three_armed.init_logits + three_armed.rewards)
    np.testing.assert_allclose(run.final, np.broadcast_to(expected, run.final.shape), atol=1e-6)
    # lr != q_lr scales the rewards by lr / q_lr: the telescoping sum of advantages is R / q_lr.
    cfg = RulesConfig()
    cfg.actde.lr, cfg.actde.q_lr = 0.5, 0.25
    run = run_bandit(make_rule("actde", cfg), three_armed, 300, 600, seed=0)
    expected = R.softmax(three_armed.init_logits + 2.0 * three_armed.rewards)
    assert np.abs(run.final - expected).max() < 1e-4


@pytest.mark.parametrize("beta", [0.3, 1.0, 3.0, 10.0])
def test_kl_penalised_update_converges_to_the_closed_form_optimum(three_armed, beta):
    """Stated tolerance: after 400 steps the mean policy over 200 seeds is within 1e-3 of
    pi0 exp(R / beta) / Z in every action, and every single seed within 1e-2."""
    run = run_bandit(make_rule("ppo_kl", RulesConfig(), beta=beta), three_armed, 200, 400, seed=1,
                     keep_history=False)
    optimum = R.kl_optimum(three_armed.init_logits, three_armed.rewards, beta)
    final = run.final.astype(float)
    assert np.abs(final.mean(axis=0) - optimum).max() < 1e-3
    assert np.abs(final - optimum).max() < 1e-2


def test_at_the_kl_optimum_every_shaped_reward_is_beta_log_z(three_armed):
    beta = 0.7
    optimum = R.kl_optimum(three_armed.init_logits, three_armed.rewards, beta)
    n = 3
    shaped = R.kl_shaped_reward(three_armed.rewards, np.log(np.tile(optimum, (n, 1))),
                                np.tile(three_armed.init_logits, (n, 1)), np.arange(n), beta)
    log_z = np.log(np.sum(np.exp(three_armed.init_logits + three_armed.rewards / beta)))
    np.testing.assert_allclose(shaped, beta * log_z)


def test_kl_optimum_limits(three_armed):
    np.testing.assert_allclose(R.kl_optimum(three_armed.init_logits, three_armed.rewards, 0.0), [0, 0, 1])
    far = R.kl_optimum(three_armed.init_logits, three_armed.rewards, 1e6)
    np.testing.assert_allclose(far, np.exp(three_armed.init_logits), atol=1e-5)
    with pytest.raises(ValueError, match="beta"):
        R.kl_optimum(three_armed.init_logits, three_armed.rewards, -1.0)


def test_ppo_clip_stops_the_ratio_leaving_the_clip_range():
    # Many tiny epochs on one positive-advantage sample: the ratio climbs to 1 + eps and stops there.
    logits = np.zeros((1, 2))
    new, _, adv = R.ppo_kl_update(logits, logits, np.zeros(1), np.array([0]), np.array([1.0]), beta=0.0,
                                  lr=0.01, clip_eps=0.2, epochs=2000)
    ratio = R.softmax(new)[0, 0] / 0.5
    assert adv[0] == pytest.approx(1.0)
    assert 1.2 < ratio < 1.21


def test_ppo_without_kl_collapses_and_large_beta_stays_near_pi0():
    chat = chatbot_bandit(BanditConfig())
    collapsed = run_bandit(make_rule("ppo_kl", RulesConfig(), beta=0.0), chat, 300, 300, seed=0)
    assert R.entropy_bits(collapsed.final.astype(float)).mean() < 0.15
    assert collapsed.final[:, 0].mean() > 0.98
    anchored = run_bandit(make_rule("ppo_kl", RulesConfig(), beta=10.0), chat, 300, 300, seed=0)
    assert R.entropy_bits(anchored.final.astype(float)).mean() > 0.99


# ---------------------------------------------------------------------------------------- simulator

def _softmax_py(logits):
    m = max(logits)
    e = [math.exp(x - m) for x in logits]
    s = 0.0
    for x in e:
        s += x
    return [x / s for x in e]


def _loop_reference(rule: str, cfg: RulesConfig, bandit: Bandit, n_seeds: int, n_steps: int, seed: int):
    """One seed at a time, one scalar at a time, written from the rules' definitions (no numpy maths)."""
    u = np.random.default_rng(seed).random((n_steps, n_seeds))  # same stream as rng.random(n) per step
    rewards, k = [float(x) for x in bandit.rewards], len(bandit.rewards)
    init = [float(x) for x in bandit.init_logits]
    all_actions, all_probs = np.zeros((n_steps, n_seeds), int), np.zeros((n_steps + 1, n_seeds, k))
    for i in range(n_seeds):
        logits, v, q = list(init), 0.0, [0.0] * k
        all_probs[0, i] = _softmax_py(logits)
        for t in range(n_steps):
            p = _softmax_py(logits)
            a, c = k - 1, 0.0
            for j in range(k - 1):
                c += p[j]
                if u[t, i] < c:
                    a = j
                    break
            r = rewards[a]
            if rule == "advantage":
                adv = r - v
                logits[a] += cfg.advantage.lr * adv
                v += cfg.advantage.value_lr * (r - v)
            elif rule == "actde":
                adv = r - q[a]
                logits[a] += cfg.actde.lr * adv
                q[a] += cfg.actde.q_lr * adv
            elif rule == "reinforce":
                adv = r - v
                logits = [logits[j] + cfg.reinforce.lr * adv * ((j == a) - p[j]) for j in range(k)]
                v += cfg.reinforce.baseline_lr * (r - v)
            else:
                c_ = cfg.ppo_kl
                shaped = r - c_.beta * (math.log(p[a]) - math.log(_softmax_py(init)[a]))
                adv, step, p_old = shaped - v, c_.lr / (1.0 + c_.beta), p[a]
                for _ in range(c_.epochs):
                    pe = _softmax_py(logits)
                    ratio = pe[a] / p_old
                    if (adv > 0 and ratio > 1 + c_.clip_eps) or (adv < 0 and ratio < 1 - c_.clip_eps):
                        continue
                    logits = [logits[j] + step * adv * ratio * ((j == a) - pe[j]) for j in range(k)]
                v += c_.value_lr * (shaped - v)
            all_actions[t, i] = a
            all_probs[t + 1, i] = _softmax_py(logits)
    return all_actions, all_probs


@pytest.mark.parametrize("rule", ["advantage", "actde", "reinforce", "ppo_kl"])
def test_vectorised_simulator_equals_a_plain_loop(rule, three_armed):
    cfg = RulesConfig(ppo_kl=PpoKlRuleConfig(beta=0.2))
    run = run_bandit(make_rule(rule, cfg), three_armed, 7, 60, seed=11)
    actions, probs = _loop_reference(rule, cfg, three_armed, 7, 60, seed=11)
    np.testing.assert_array_equal(run.actions, actions)
    np.testing.assert_allclose(run.probs, probs, atol=1e-6)  # history is stored as float32
    np.testing.assert_allclose(run.peak_probs, probs.max(axis=0), atol=1e-12)


def test_same_seed_same_trajectories_and_trap_setup():
    cfg = BanditConfig()
    sim = SimulateConfig(n_seeds=50, n_steps=20)
    a = run_bandit(make_rule("reinforce", RulesConfig()), chatbot_bandit(cfg), 50, 20, seed=5)
    b = run_bandit(make_rule("reinforce", RulesConfig()), chatbot_bandit(cfg), 50, 20, seed=5)
    np.testing.assert_array_equal(a.probs, b.probs)
    trap = trap_bandit(cfg, sim)
    assert trap.actions[-1] == "Chad-Chat" and trap.rewards[-1] == 1.5 and trap.best == 2
    np.testing.assert_allclose(np.exp(trap.init_logits), [0.495, 0.495, 0.01])


def test_simulate_all_summaries():
    sim = SimulateConfig(n_seeds=200, n_steps=100, betas=[0.0, 1.0])
    out = simulate_all(BanditConfig(), RulesConfig(), sim)
    assert set(out["rules"]) == {"advantage", "actde", "reinforce", "ppo_kl"}
    for s in out["rules"].values():
        assert 0.5 <= s["final_mean_pi_best"] <= 1.0
        assert 0.0 <= s["final_mean_entropy_bits"] <= 1.0
        assert 0.0 <= s["trap_escape_share"] <= s["trap_ever_sampled_share"] <= 1.0
    assert out["rules"]["actde"]["trap_escape_share"] == 0.0  # +1.5 logits on 1% never reaches half
    assert out["rules"]["actde"]["final_mean_pi_best"] == pytest.approx(sigmoid(0.6), abs=1e-6)
    assert out["rules"]["advantage"]["final_mean_pi_best"] > 0.95
    b0, b1 = out["beta_sweep"]
    assert b0["beta"] == 0.0 and b0["final_mean_entropy_bits"] < b1["final_mean_entropy_bits"]
    assert b1["final_mean_entropy_bits"] == pytest.approx(b1["optimum_entropy_bits"], abs=1e-3)
    assert len(out["curves"]["ppo_kl"]["pi_best_mean"]) == 101


# ---------------------------------------------------------------------------------------- config

@pytest.mark.parametrize("make, field", [
    (lambda: PpoKlRuleConfig(beta=-1.0), "rules.ppo_kl.beta"),
    (lambda: SimulateConfig(betas=[0.1, -2.0]), "simulate.betas"),
    (lambda: SimulateConfig(n_seeds=0), "simulate.n_seeds"),
    (lambda: SimulateConfig(rules=["advantage", "dpo"]), "simulate.rules"),
    (lambda: BanditConfig(init_probs=[0.7, 0.7]), "bandit.init_probs"),
    (lambda: WandbConfig(mode="sometimes"), "wandb.mode"),
])
def test_config_rejects_out_of_range_values_in_one_line(make, field):
    with pytest.raises(ValueError) as err:
        make()
    msg = str(err.value)
    assert msg.startswith(f"{field}: ") and "accepted" in msg and "\n" not in msg


def test_default_config_is_valid():
    cfg = ToyBanditConfig()
    assert cfg.experiment.name == "table1" and cfg.simulate.n_seeds >= 1000 and cfg.wandb.mode == "offline"
