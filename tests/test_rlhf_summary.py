"""The sweep's configs compose as documented, and the summary pools seeds into {mean, ci95} per (alpha, beta)."""
from __future__ import annotations


import pytest
from conftest import REPO

from rlhf.stages.callbacks import ATTRIBUTES
from rlhf.stages.summary import by_beta, find_runs, seed_interval, summarize_runs, summary_table


def compose(*overrides):
    from hydra import compose as hydra_compose, initialize_config_dir

    from rlhf.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name="rlhf", overrides=list(overrides), return_hydra_config=True)


def test_beta_sweep_covers_the_grid_for_each_alpha():
    cfg = compose("stage=ppo", "sweep=beta")
    params = cfg.hydra.sweeper.params
    assert [float(b) for b in params["ppo.beta"].split(",")] == [0, 0.005, 0.01, 0.05, 0.2, 1.0]
    assert [float(a) for a in params["preferences.alpha"].split(",")] == [0, 0.5]
    assert len(params["ppo.seed"].split(",")) >= 2
    assert cfg.hydra.mode.name == "MULTIRUN"


@pytest.mark.parametrize("launcher,target", [("basic", "BasicLauncher"), ("joblib", "JoblibLauncher"),
                                             ("submitit_slurm", "SlurmLauncher")])
def test_launcher_configs_select_their_hydra_launcher(launcher, target):
    cfg = compose("stage=ppo", "sweep=beta", f"launcher={launcher}")
    assert cfg.hydra.launcher._target_.endswith(target)


def test_seed_interval_is_a_student_t_interval():
    out = seed_interval([1.0, 3.0])  # mean 2, sd sqrt(2), t(0.975, 1) = 12.706
    assert out["mean"] == 2.0 and out["n"] == 2
    assert out["ci95"][1] - 2.0 == pytest.approx(12.7062, rel=1e-4)  # t * sd / sqrt(n) = 12.706 * 1
    assert seed_interval([5.0])["ci95"] is None  # one seed: no interval, never a zero-width one
    assert seed_interval([None, float("nan")])["mean"] is None


def fake_run(alpha, beta, seed, top5):
    final = {"reward_model_score": beta + seed, "sequence_kl_nats": 1 / (1 + beta), "top5_entropy_bits": top5,
             "full_entropy_bits": 2 * top5, "sbert_cosine": 0.3}
    final.update({f"persona/attribute_entropy_bits/{a}": 3.0 for a in ATTRIBUTES})
    return {"stage": "ppo", "run": f"alpha{alpha:g}_beta{beta:g}_seed{seed}", "alpha": alpha, "beta": beta,
            "seed": seed, "final": final, "baseline": {"top5_entropy_bits": 2.0}}


def test_summary_pools_seeds_per_alpha_and_beta(tmp_path):
    import json

    runs = [fake_run(a, b, s, top5=1.0 + b + s / 10) for a in (0.0, 0.5) for b in (0.0, 1.0) for s in (0, 1)]
    for i, r in enumerate(runs):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "results.json").write_text(json.dumps(r))
    found = find_runs(tmp_path)
    assert len(found) == 8
    res = summarize_runs(found, min_seeds=3)
    rows = res["by_beta"]
    assert [(r["alpha"], r["beta"], r["n_seeds"]) for r in rows] == [(0, 0, 2), (0, 1, 2), (0.5, 0, 2), (0.5, 1, 2)]
    assert rows[1]["top5_entropy_bits"]["mean"] == pytest.approx(2.05)
    assert set(rows[0]["attribute_entropy_bits"]) == set(ATTRIBUTES)
    assert rows[0]["attribute_entropy_bits"]["age"]["mean"] == 3.0
    assert len(res["cells_with_too_few_seeds"]) == 4  # min_seeds=3 flags every 2-seed cell
    assert res["base"]["top5_entropy_bits"]["mean"] == 2.0
    assert any("top5_entropy_bits" in line for line in res["findings"])
    assert summary_table(rows).count("\n") == 2 + len(rows)
    assert by_beta([]) == []


def test_findings_compare_cis_only_with_two_seeds_or_more(tmp_path):
    from rlhf.stages.summary import findings

    one = by_beta([fake_run(0.0, b, 0, top5=1.0 + b) for b in (0.0, 1.0)])
    assert all("one seed, so no CI" in line and "overlap" not in line for line in findings(one))
    two = by_beta([fake_run(0.0, b, s, top5=1.0 + b + s / 10) for b in (0.0, 1.0) for s in (0, 1)])
    top5 = [line for line in findings(two) if "top5_entropy_bits" in line]
    assert top5 and "CIs overlap" in top5[0] and "2 and 2 seeds" in top5[0]


def fake_run_with_base(beta, seed, top3, n_matched, exact_h):
    """A run as the PPO stage now writes it: top_k 3, a final_base measured on as many samples, counted attribute
    entropies at equal n on both sides, exact marginal entropies and KL by field."""
    final = {"reward_model_score": 1.0, "sequence_kl_nats": 2.0 + beta, "top3_entropy_bits": top3,
             "full_entropy_bits": 3.0, "sbert_cosine": 0.3, "kl_by_field/first_name": 0.5 + beta}
    base = {"reward_model_score": 0.5, "top3_entropy_bits": 1.5, "full_entropy_bits": 3.5, "sbert_cosine": 0.25}
    for a in ATTRIBUTES:
        final[f"persona/attribute_entropy_bits/{a}"] = 2.0  # at the policy's own n: not what the cell reports
        final[f"persona/equal_n/attribute_entropy_bits/{a}"] = 4.0 - beta
        base[f"persona/equal_n/attribute_entropy_bits/{a}"] = 4.5
        final[f"persona/n_matched/{a}"] = base[f"persona/n_matched/{a}"] = n_matched
        final[f"persona/exact/{a}/marginal_entropy_bits"] = exact_h
        final[f"persona/exact/{a}/conditional_kl_nats"] = 0.1 * beta
        base[f"persona/exact/{a}/marginal_entropy_bits"] = 5.0
    return {"stage": "ppo", "run": f"alpha0_beta{beta:g}_seed{seed}", "alpha": 0.0, "beta": beta, "seed": seed,
            "top_k": 3, "final": final, "final_base": base, "baseline": {"top3_entropy_bits": 9.9}}


def test_summary_base_line_is_measured_at_the_cells_n_and_top_k_follows_the_runs():
    runs = [fake_run_with_base(b, s, 1.0 + b, n_matched=30 - 10 * b, exact_h=6.0 - b) for b in (0.0, 1.0) for s in (0, 1)]
    res = summarize_runs(runs, min_seeds=1)
    assert res["top_k"] == 3 and res["base_source"].startswith("final_base")
    assert res["base"]["top3_entropy_bits"]["mean"] == 1.5  # the final measurement's base, not the step-0 9.9
    rows = res["by_beta"]
    assert "top3_entropy_bits" in rows[0] and "top5_entropy_bits" not in rows[0]
    assert rows[1]["attribute_entropy_bits"]["age"]["mean"] == 3.0  # at equal n, not the raw 2.0
    assert rows[1]["attribute_entropy_bits_unmatched"]["age"]["mean"] == 2.0
    assert rows[1]["base"]["attribute_entropy_bits"]["age"]["mean"] == 4.5  # the base at that cell's n
    assert rows[1]["n_matched"]["age"]["mean"] == 20
    assert rows[0]["marginal_entropy_bits"]["first_name"]["mean"] == 6.0
    assert rows[1]["conditional_kl_nats"]["mbti"]["mean"] == pytest.approx(0.1)
    assert rows[1]["kl_by_field"]["first_name"]["mean"] == 1.5
    assert any("top3_entropy_bits" in line for line in res["findings"])
    assert any("marginal_entropy_bits.first_name" in line for line in res["findings"])
    table = summary_table(rows)
    assert "top3_entropy_bits" in table and "exact H(first_name)" in table


def test_summary_figure_draws_the_exact_and_equal_n_panels(tmp_path):
    from rlhf.stages.summary import summary_figure

    runs = [fake_run_with_base(b, 0, 1.0 + b, 30, 6.0 - b) for b in (0.0, 0.05, 1.0)]
    res = summarize_runs(runs, min_seeds=1)
    summary_figure(res["by_beta"], res["base"], {"age": 5.7}, tmp_path / "summary_beta.png")
    assert (tmp_path / "summary_beta.png").stat().st_size > 10_000


def _predict_block():
    ent = {a: 3.0 for a in ATTRIBUTES}
    cell = lambda kind, beta, h: {"alpha": 0.0, "beta": beta, "reward_kind": kind, "kl_nats": 0.5, "true_utility": 2.0,
                                  "ess": 300.0, "beyond_resolution": False,
                                  "attribute_entropy_bits": {**ent, "nationality": h}}
    return {"n_samples": 2000, "entropy_n": 50,
            "base": [{"alpha": 0.0, "true_utility": 1.0, "attribute_entropy_bits": ent}],
            "cells": [cell("true", 0.5, 2.0), cell("model", 0.5, 3.0),
                      {"alpha": 0.0, "beta": 0.05, "reward_kind": "true", "ess": 3.0, "beyond_resolution": True,
                       "kl_nats": None, "true_utility": None, "attribute_entropy_bits": None}],
            "frontier": [], "best_of_n": [],
            "control": {"attribute": "nationality", "value": "American", "weight": 1.0, "p0": 0.2, "n": 2000,
                        "betas": [{"beta": 0.5, "predicted_share": 0.65, "predicted_share_ci95": [0.62, 0.68]}]}}


def test_study_blocks_follow_the_contract_and_print_no_ci_for_one_seed(tmp_path):
    """cells: one per (method, alpha, beta) with achieved and predicted blocks (a t-CI from 2 seeds, none from
    one); the share of the predicted collapse realised; base; positive_control judged against its closed form."""
    from rlhf.stages.verdict import frontier_figure, study_blocks

    runs = [fake_run(0.0, 0.5, s, 1.0) for s in (0, 1)] + [fake_run(0.0, 0.05, 0, 1.0)]
    for s, r in enumerate(runs[:2]):
        r["final"].update({"true_utility": 1.5 + s / 10, "persona/attribute_entropy_bits/nationality": 2.5})
    controls = [{"stage": "ppo", "run": f"control_beta0.5_seed{s}", "reward": "control", "alpha": 0.0, "beta": 0.5,
                 "seed": s, "final": {"control_share": share, "control_n": 200, "sequence_kl_nats": 0.4}}
                for s, share in ((0, 0.60), (1, 0.70))]
    out = study_blocks(runs, controls, _predict_block())
    cells = {c["beta"]: c for c in out["cells"]}
    two, one = cells[0.5], cells[0.05]
    assert two["method"] == "ppo" and two["n_seeds"] == 2 and two["achieved"]["true_utility"]["ci95"] is not None
    assert one["n_seeds"] == 1 and one["achieved"]["kl_nats"]["ci95"] is None  # one seed: no CI
    assert two["predicted"]["kl_nats"] == 0.5 and two["predicted"]["ess"] == 300.0
    assert one["predicted"]["beyond_resolution"] and one["predicted"]["kl_nats"] is None
    assert two["collapse_realised"]["nationality"]["mean"] == pytest.approx(0.5)  # (3 - 2.5) / (3 - 2)
    assert two["collapse_realised"]["gender"] is None  # no drop predicted: no share
    assert out["base"]["true_utility"] == 1.0 and out["base"]["attribute_entropy_bits"]["gender"] == 3.0
    (pc,) = out["positive_control"]
    assert pc["beta"] == 0.5 and pc["predicted_share"] == 0.65 and pc["achieved_share"]["mean"] == pytest.approx(0.65)
    assert pc["within_ci"] is True and pc["informative"] is True
    assert pc["within_pooled_ci"] is True  # 260 of 400 pooled: Wilson [0.60, 0.70] holds 0.65
    assert len(out["headline"]) == 3 and "collapse" in out["headline"][1]
    far = [dict(c, final={**c["final"], "control_share": 0.21}) for c in controls]
    pc = study_blocks(runs, [dict(far[0]), dict(far[1], final={**far[1]["final"], "control_share": 0.23})],
                      _predict_block())["positive_control"][0]
    assert pc["within_ci"] is False and "inconclusive" in study_blocks(runs, far[:1] + far[1:], _predict_block())[
        "headline"][2]
    frontier_figure({**out, "cells": out["cells"]}, _predict_block(), tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 10_000


def test_arms_are_compared_at_matched_achieved_kl():
    from rlhf.stages.verdict import matched_kl

    def cell(alpha, kl, h):
        ent = {a: {"mean": h} for a in ATTRIBUTES}
        return {"alpha": alpha, "achieved": {"kl_nats": {"mean": kl}, "true_utility": {"mean": kl},
                                             "attribute_entropy_bits": ent}}

    cells = [cell(0.0, 1.0, 3.0), cell(0.0, 4.0, 2.0), cell(0.5, 2.0, 1.0), cell(0.5, 8.0, 0.0)]
    rows = matched_kl(cells, points=2)
    assert [r["kl_nats"] for r in rows] == pytest.approx([2.0, 4.0])  # the KL range both arms reached
    assert rows[0]["by_alpha"]["0.0"]["attribute_entropy_bits"]["nationality"] == pytest.approx(2.5)  # log-KL midpoint
    assert rows[0]["by_alpha"]["0.5"]["attribute_entropy_bits"]["nationality"] == pytest.approx(1.0)
    assert matched_kl(cells[:2]) == []  # one arm: nothing to match


def test_a_seed_is_read_at_a_matched_kl_inside_its_range_or_at_its_nearest_setting_within_the_tolerance():
    from rlhf.stages.verdict import MATCH_TOLERANCE, _at_kl

    finals = [{"sequence_kl_nats": 0.5, "true_utility": 1.0}, {"sequence_kl_nats": 2.0, "true_utility": 3.0}]
    how, m = _at_kl(finals, 1.0)  # halfway in log KL
    assert how == "interpolated" and m["true_utility"] == pytest.approx(2.0)
    how, m = _at_kl(finals, 2.0 * 1.1)  # just past the range: the nearest setting's own values
    assert how == "nearest" and m["true_utility"] == 3.0
    how, m = _at_kl(finals, 0.5 / 1.4)
    assert how == "nearest" and m["true_utility"] == 1.0
    assert _at_kl(finals, 2.0 * MATCH_TOLERANCE * 1.01) is None  # too far to stand in
    assert _at_kl(finals[:1], 0.5 * 1.2)[0] == "nearest" and _at_kl(finals[:1], 0.5 * 2) is None
    assert _at_kl([{"sequence_kl_nats": None, "true_utility": 1.0}], 1.0) is None
