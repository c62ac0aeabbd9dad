"""The alignment methods beside PPO (rlhf/stages/methods.py) on a micro Llama: RLOO and GRPO learn a reward that
favours one token and beta holds them back, DPO raises the chosen token over the rejected one and is seeded, TRL's
RLOO advantages equal the KL-in-reward leave-one-out computed by hand, best-of-n's KL estimate meets Beirami et al.'s
closed form, TRL's prompts tokenise as the PPO stage's, and a bad group size fails at start-up in one line."""
from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_app

from measure.config import ModelConfig
from measure.prompts import encode_prompt
from rlhf.config import ProbePrompt
from rlhf.stages.methods import (best_of_groups, best_of_n_kl_bound, best_of_n_log_ratio, dpo_trainer, rl_trainer,
                                 trl_prompt)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread on a shared CPU

PROMPT = ProbePrompt("hopper", "Grace Hopper was", False)


@pytest.fixture(scope="module")
def peaky_base(tmp_path_factory) -> Path:
    """A micro Llama with peaked next-token distributions (init scale 0.3, as tests/test_rlhf_ppo.py's), so the
    favoured token is sampled often enough for a few-step run to see it (p ~ 0.2 at the first position)."""
    from measure.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("methods_base") / "base", seed=1, init_std=0.3)


@pytest.fixture(scope="module")
def app_cfg():
    """The typed `python -m rlhf stage=align` config, as the app composes it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlhf.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="rlhf", overrides=["stage=align", "ppo.mini_batches=1",
                                                                 "wandb=disabled"]))


def align_cfg(app_cfg, base: Path, method: str = "rloo", align: dict | None = None, **ppo):
    """``app_cfg`` with micro PPO fields (one prompt, 4-token responses, LoRA r8) and ``align.method``."""
    fields = dict(base=ModelConfig(path=str(base), device="cpu"), beta=0.01, seed=0, steps=8, batch_size=8,
                  mini_batches=1, ppo_epochs=1, lr=3e-3, response_length=4, prompts=[PROMPT], lora_r=8,
                  lora_targets=["q_proj", "v_proj", "o_proj"], persona_share=None)
    fields.update(ppo)
    new_align = dataclasses.replace(app_cfg.align, method=method, num_generations=4, **(align or {}))
    return dataclasses.replace(app_cfg, stage="align", ppo=dataclasses.replace(app_cfg.ppo, **fields),
                               align=new_align)


def load(base: Path):
    from measure.loading import load_model

    return load_model(ModelConfig(path=str(base), device="cpu"))


@torch.no_grad()
def first_token_logprobs(model, tokenizer) -> torch.Tensor:
    """log p(. | prompt) at the first completion position."""
    ids = torch.tensor([encode_prompt(tokenizer, PROMPT.text, chat=PROMPT.chat)])
    return torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), -1)


class TokenShare:
    """A reward function in TRL's call form (RewardFunction's): the share of ``token_id`` among a completion's
    ids (+1 per occurrence, over the length). Keeps every batch of rewards it returned."""

    def __init__(self, token_id: int):
        self.token_id, self.__name__, self.calls = token_id, "token_share", []

    def __call__(self, prompts, completions, completion_ids, prompt_key, **kwargs):
        out = [sum(t == self.token_id for t in c) / max(len(c), 1) for c in completion_ids]
        self.calls.append(out)
        return out


def favoured_token(base: Path) -> int:
    """The base's most likely first completion token (the reward's token)."""
    policy, tokenizer = load(base)
    return int(first_token_logprobs(policy, tokenizer).argmax())


def train_rl(method: str, app_cfg, base: Path, tmp: Path, token: int, **ppo) -> dict:
    from transformers import set_seed

    cfg = align_cfg(app_cfg, base, method, **ppo)
    policy, tokenizer = load(base)
    before = first_token_logprobs(policy, tokenizer)[token].exp().item()
    set_seed(cfg.ppo.seed)  # as rlhf/stages/align.py's train: the LoRA init and the rollouts
    trainer = rl_trainer(method, cfg, policy, tokenizer, TokenShare(token), tmp, use_cpu=True)
    trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.eval()
    after = first_token_logprobs(model, tokenizer)[token].exp().item()
    with model.disable_adapter():
        base_after = first_token_logprobs(model, tokenizer)[token].exp().item()
    return {"before": before, "after": after, "base_after": base_after, "trainer": trainer, "model": model}


@pytest.fixture(scope="module")
def token(peaky_base) -> int:
    return favoured_token(peaky_base)


@pytest.mark.parametrize("method", ["rloo", "grpo"])
def test_rl_methods_learn_a_token_reward_and_large_beta_holds_them_back(method, app_cfg, peaky_base, token,
                                                                         tmp_path):
    small = train_rl(method, app_cfg, peaky_base, tmp_path / "small", token, beta=0.01)
    assert small["base_after"] == pytest.approx(small["before"], abs=1e-6)  # adapter off = the base
    lora_b = [p for n, p in small["model"].named_parameters() if "lora_B" in n]
    assert lora_b and all(float(p.detach().abs().max()) > 0 for p in lora_b)  # LoRA B starts at zero
    rise = small["after"] - small["before"]  # ~0.2 -> ~0.9 at these settings
    assert rise > 0.3, (small["before"], small["after"])
    kl_small = [h["kl"] for h in small["trainer"].state.log_history if "kl" in h]
    assert len(kl_small) == 8 and all(math.isfinite(k) for k in kl_small) and kl_small[-1] > 0
    # 100x beta, same seed: the target pi0 exp(r / beta) is ~0.24 here; the policy moves less either way
    large = train_rl(method, app_cfg, peaky_base, tmp_path / "large", token, beta=1.0)
    moved = abs(large["after"] - large["before"])
    assert moved < 0.5 * rise, (rise, large["before"], large["after"])
    kl_large = [h["kl"] for h in large["trainer"].state.log_history if "kl" in h]
    assert np.mean(kl_large) < 0.5 * np.mean(kl_small), (kl_small, kl_large)


def test_rloo_advantages_are_the_kl_penalised_leave_one_out_baseline(app_cfg, peaky_base, token, tmp_path):
    """TRL 1.12 RLOO (rloo_trainer.py, ``_generate_and_score_completions``): R_i = r_i - beta * sum_t (log pi_old -
    log pi_ref)(y_t), A_i = R_i - mean_{j != i} R_j within each group of num_generations, not normalised.

    Route: the trainer instance's ``_generate_and_score_completions`` is wrapped (the public seam where TRL returns
    the scored batch, before it is shuffled and split into minibatches), so the advantages are TRL's own and in
    group order. The hand side uses nothing of TRL: the rewards our function returned, and log pi_old / log pi_ref
    from our own forward passes of the same model with the adapter on and off, taken inside the wrapper before
    any update. The LoRA B matrices are set to random values first, so pi_old != pi_ref and the KL term counts."""
    from transformers import set_seed

    beta = 0.5
    cfg = align_cfg(app_cfg, peaky_base, "rloo", steps=1, beta=beta)
    policy, tokenizer = load(peaky_base)
    set_seed(0)
    reward = TokenShare(token)
    trainer = rl_trainer("rloo", cfg, policy, tokenizer, reward, tmp_path, use_cpu=True)
    model = trainer.accelerator.unwrap_model(trainer.model)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    seen = []
    original = trainer._generate_and_score_completions

    def spy(inputs):
        out = original(inputs)
        pol, ref = [], []
        with torch.no_grad():
            for p_ids, p_mask, c_ids, c_mask in zip(out["prompt_ids"], out["prompt_mask"], out["completion_ids"],
                                                    out["completion_mask"]):
                prompt, completion = p_ids[p_mask.bool()], c_ids[c_mask.bool()]
                ids = torch.cat([prompt, completion])[None]
                for sink, ctx in ((pol, contextlib.nullcontext), (ref, model.disable_adapter)):
                    with ctx():
                        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float()
                    lp = torch.log_softmax(logits / cfg.ppo.temperature, -1).gather(1, completion[:, None])
                    sink.append(float(lp.sum()))
        seen.append({"advantages": out["advantages"].tolist(), "old_logps": out["old_logps"].tolist(),
                     "pol": pol, "ref": ref, "rewards": list(reward.calls[-1])})
        return out

    trainer._generate_and_score_completions = spy
    trainer.train()
    assert len(seen) == 1
    s = seen[0]
    g = cfg.align.num_generations
    kl = np.array(s["pol"]) - np.array(s["ref"])
    total = (np.array(s["rewards"]) - beta * kl).reshape(-1, g)
    hand = (total - (total.sum(1, keepdims=True) - total) / (g - 1)).ravel()
    assert np.allclose(s["old_logps"], s["pol"], atol=1e-4)  # TRL's pi_old is the policy we scored
    assert np.abs(beta * kl).max() > 1e-2  # the KL term is in play
    assert np.allclose(s["advantages"], hand, atol=1e-4), (s["advantages"], hand.tolist())
    no_kl = np.array(s["rewards"]).reshape(-1, g)
    no_kl = (no_kl - (no_kl.sum(1, keepdims=True) - no_kl) / (g - 1)).ravel()
    assert not np.allclose(s["advantages"], no_kl, atol=1e-4)  # and it is what tells the two apart


def dpo_prefs(tokenizer, a: int, b: int, n: int = 16, seed: int = 0) -> list:
    """Preference rows (the preferences stage's fields) that always prefer a response starting with ``a`` over the
    same response starting with ``b``; the rest of each response is random, so the data order matters."""
    rng = np.random.default_rng(seed)
    prompt = encode_prompt(tokenizer, PROMPT.text, chat=PROMPT.chat)
    rows = []
    for _ in range(n):
        tail = rng.integers(3, len(tokenizer), size=3).tolist() + [tokenizer.eos_token_id]
        rows.append({"split": "train", "chosen_ids": prompt + [a] + tail, "rejected_ids": prompt + [b] + tail,
                     "n_tokens_chosen": 1 + len(tail)})
    rows.append({"split": "test", "chosen_ids": prompt + [b], "rejected_ids": prompt + [a], "n_tokens_chosen": 1})
    return rows


def train_dpo(app_cfg, base: Path, tmp: Path, a: int, b: int) -> dict:
    from transformers import set_seed

    cfg = align_cfg(app_cfg, base, "dpo", align=dict(dpo_epochs=4.0, dpo_batch_size=4), beta=0.1)
    policy, tokenizer = load(base)
    lp = first_token_logprobs(policy, tokenizer)
    set_seed(cfg.ppo.seed)
    trainer = dpo_trainer(cfg, policy, tokenizer, dpo_prefs(tokenizer, a, b), tmp, use_cpu=True)
    trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.eval()
    after = first_token_logprobs(model, tokenizer)
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"margin": (float(lp[a] - lp[b]), float(after[a] - after[b])), "lora": lora, "losses": losses}


def test_dpo_raises_the_chosen_token_and_is_seeded(app_cfg, peaky_base, tmp_path):
    policy, tokenizer = load(peaky_base)
    order = first_token_logprobs(policy, tokenizer).argsort(descending=True)
    a, b = int(order[5]), int(order[0])  # prefer a less likely token over the most likely one
    one = train_dpo(app_cfg, peaky_base, tmp_path / "one", a, b)
    before, after = one["margin"]
    assert after > before + 1.0, one["margin"]
    assert len(one["losses"]) == 16  # 16 train pairs (the test pair is left out), 4 per step, 4 epochs
    assert one["losses"][-1] < math.log(2)  # DPO's loss starts at log 2 (adapter = base)
    two = train_dpo(app_cfg, peaky_base, tmp_path / "two", a, b)
    assert one["lora"].keys() == two["lora"].keys() and one["lora"]
    assert all(torch.equal(one["lora"][n], two["lora"][n]) for n in one["lora"])
    assert one["losses"] == two["losses"]


def test_best_of_n_log_ratio_meets_the_closed_form_kl():
    """For a continuous reward, E[log pi_bon / pi0] over best-of-n picks is log n - (n - 1) / n (Beirami et al.
    2024): (n - 1) log F(r_max) with F(r_max) ~ Beta(n, 1) has mean -(n - 1) / n."""
    rng = np.random.default_rng(0)
    reference = np.sort(rng.normal(size=20000))
    for n in (2, 4, 8):
        draws = rng.normal(size=(3000, n))
        picks = best_of_groups(draws.ravel(), n)
        ratios = [best_of_n_log_ratio(draws.ravel()[i], reference, n) for i in picks]
        assert np.mean(ratios) == pytest.approx(best_of_n_kl_bound(n), abs=0.05), n
    assert best_of_n_kl_bound(4) == pytest.approx(math.log(4) - 0.75)


def test_best_of_groups_picks_each_group_maximum_first_on_ties():
    scores = np.random.default_rng(1).normal(size=(7, 5))
    assert best_of_groups(scores.ravel(), 5) == [g * 5 + int(np.argmax(scores[g])) for g in range(7)]
    assert best_of_groups([1.0, 3.0, 3.0, 0.0, 2.0, 2.0], 3) == [1, 4]
    assert best_of_groups([1.0, 2.0, 3.0, 4.0, 5.0], 2) == [1, 3]  # a last partial group is dropped


@pytest.mark.parametrize("template", ["llama2", None])
@pytest.mark.parametrize("chat", [True, False])
def test_trl_prompt_tokenises_to_the_ppo_stage_ids(tiny_model, template, chat):
    import copy

    tokenizer = copy.deepcopy(tiny_model[1])
    if template is None:
        tokenizer.chat_template = None  # encode_prompt's Llama-2 [INST] fallback
    prompt = ProbePrompt("p", "Describe a person.", chat)
    text = trl_prompt(tokenizer, prompt)
    assert tokenizer(text)["input_ids"] == encode_prompt(tokenizer, prompt.text, chat=chat)
    assert not text.startswith(tokenizer.bos_token)  # TRL's tokeniser call adds it back


def test_rloo_group_size_that_does_not_divide_the_batch_fails_at_start_up(tmp_path):
    proc = run_app("rlhf", "stage=align", "align.method=rloo", "ppo.batch_size=6", "wandb=disabled",
                   f"cache_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-2000:]
    lines = [line for line in out.splitlines() if "align.num_generations" in line]
    assert len(lines) == 1 and "ERROR" in lines[0] and "6" in lines[0], out[-2000:]
    assert "Traceback" not in out
    assert not (tmp_path / "run" / "results.json").exists()
