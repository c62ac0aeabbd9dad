"""`python -m rlhf stage=align`: every method end to end on a micro model (seconds each), the same results layout
as the ppo stage (plus method, reward arm, setting), reuse of a finished run, and the summary's method cells."""
from __future__ import annotations

import json

import pytest
from conftest import run_app

SMALL = ["ppo.steps=2", "ppo.batch_size=4", "ppo.mini_batches=1", "ppo.ppo_epochs=1", "ppo.response_length=10",
         "ppo.threads=1", "preferences.n_pairs_per_prompt=6", "preferences.sampling.batch_size=12", "reward.epochs=1",
         "diversity.every=1", "diversity.sampling.n_samples=3", "diversity.sampling.batch_size=3",
         "diversity.final_n_samples=4", "diversity.sbert=false", "diversity.exact_contexts=0",
         "diversity.final_exact_contexts=0", "align.num_generations=2", "align.rft_prompts=2", "align.demos=6",
         "align.best_of=2", "align.cross_input_samples=2", "align.dpo_batch_size=4", "align.sft_batch_size=4",
         "wandb=disabled"]
METHODS = ("rloo", "grpo", "dpo", "bon", "rft", "sft_curated")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from measure.tiny import build_tiny_llama

    root = tmp_path_factory.mktemp("align")
    base = build_tiny_llama(root / "base", seed=1, init_std=0.3)
    out = {}
    for method in METHODS:
        extra = ["align.reward=oracle"] if method == "grpo" else []
        proc = run_app("rlhf", "stage=align", f"align.method={method}", *extra, f"ppo.base.path={base}",
                       f"cache_dir={root / 'cache'}", "diversity.ground_truth=null", *SMALL,
                       f"hydra.run.dir={root / 'runs' / method}", timeout=300)
        assert proc.returncode == 0, (method, (proc.stdout + proc.stderr)[-3000:])
        out[method] = json.loads((root / "runs" / method / "results.json").read_text())
    return root, base, out


@pytest.mark.parametrize("method", METHODS)
def test_every_method_writes_the_ppo_layout_with_its_method(runs, method):
    _, _, out = runs
    r = out[method]
    assert r["stage"] == "align" and r["method"] == method
    assert {"final", "final_base", "history", "setting", "reward_arm", "alpha", "seed"} <= set(r)
    for block in (r["final"], r["final_base"]):
        assert isinstance(block["true_utility"], float) and "reward_model_score" in block
        assert "cross_input/n_inputs" in block  # per-input vs cross-input over the product prompts
    assert isinstance(r["final"]["sequence_kl_nats"], float)
    if method == "bon":
        assert r["adapter"] is None and r["setting"] == {"n": 2}
        assert r["final"]["sequence_kl_nats"] <= r["final"]["kl_bound_nats"] + 1e-12
    else:
        assert (__import__("pathlib").Path(r["adapter"]) / "adapter_config.json").exists()
        assert any("diversity/seconds" in h for h in r["history"])  # the diversity callback measured
    assert r["reward_arm"] == {"grpo": "oracle", "dpo": "pairs", "sft_curated": "demonstrations"}.get(method, "model")
    assert (r["beta"] is None) == (method in ("bon", "rft", "sft_curated"))


def test_a_finished_run_is_reused_and_gives_the_same_numbers(runs):
    root, base, out = runs
    proc = run_app("rlhf", "stage=align", "align.method=rloo", f"ppo.base.path={base}", f"cache_dir={root / 'cache'}",
                   "diversity.ground_truth=null", *SMALL, f"hydra.run.dir={root / 'again'}", timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "reusing its adapter" in proc.stdout + proc.stderr
    again = json.loads((root / "again" / "results.json").read_text())
    assert again["final"]["sequence_kl_nats"] == out["rloo"]["final"]["sequence_kl_nats"]
    assert again["final"]["true_utility"] == out["rloo"]["final"]["true_utility"]


def test_the_summary_has_one_cell_per_method_with_kl_and_true_utility(runs):
    root, _, out = runs
    proc = run_app("rlhf", "stage=summary", f"summary.runs={root / 'runs'}", "wandb=disabled",
                   f"hydra.run.dir={root / 'summary'}", timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = json.loads((root / "summary" / "results.json").read_text())
    cells = {(c["method"], c["reward_arm"]): c for c in summary["cells"]}
    assert {m for m, _ in cells} == set(METHODS)
    for cell in cells.values():
        assert cell["achieved"]["kl_nats"]["mean"] is not None and cell["achieved"]["true_utility"]["mean"] is not None
        assert cell["n_seeds"] == 1 and cell["achieved"]["true_utility"]["ci95"] is None  # one seed: no CI
    assert "matched" in summary["methods"]
    assert (root / "summary" / "methods.png").exists()
