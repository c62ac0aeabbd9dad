"""PPO with LoRA through TRL 1.12 on a micro model: it learns a reward that favours one token, beta holds it
back, and a killed run resumes from its checkpoint. Micro models are built here in seconds."""
from __future__ import annotations

import collections
import math

import pytest
import torch
from transformers import TrainerCallback
from transformers.modeling_outputs import BaseModelOutput

from measure.config import ModelConfig, SamplingConfig
from rlhf.stages.callbacks import draw_samples, token_entropies
from rlhf.stages.ppo import PPORun
from rlhf.stages.ppo_checkpoint import latest_checkpoint, read_state
from rlhf.config import DiversityConfig, PPOConfig, ProbePrompt

PROMPTS = [ProbePrompt("steve", "Steve is the CEO of a startup company", False),
           ProbePrompt("hopper", "Grace Hopper was", False)]
PROBE = DiversityConfig(sampling=SamplingConfig(n_samples=32, batch_size=32, n_predict=4, seed=5), sbert=False,
                        ground_truth=None)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread on a shared CPU


class CumulativeTokenCount(torch.nn.Module):
    def __init__(self, token_id: int):
        super().__init__()
        self.token_id = token_id

    def forward(self, input_ids, attention_mask=None, **kwargs):
        hits = (input_ids == self.token_id).float() * attention_mask.float()
        return BaseModelOutput(hidden_states=(hits.cumsum(1)[..., None],))


class TokenReward(torch.nn.Module):
    """A reward model in the shape TRL's get_reward reads (backbone + score): the number of times one token
    occurs in the sequence, read at the last token."""

    base_model_prefix = "backbone"

    def __init__(self, token_id: int):
        super().__init__()
        self.backbone = CumulativeTokenCount(token_id)
        self.score = torch.nn.Identity()


@pytest.fixture(scope="module")
def peaky_base(tmp_path_factory):
    """A micro Llama with peaked next-token distributions (large init scale), so a favoured token is seen."""
    from measure.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("ppo_base") / "base", seed=1, init_std=0.3)


def load(base):
    from transformers import AutoModelForSequenceClassification

    from measure.loading import load_model

    policy, tokenizer = load_model(ModelConfig(path=str(base), device="cpu"))
    value = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    return policy, tokenizer, value


def probe(model, tokenizer):
    samples = draw_samples(model, tokenizer, PROMPTS, PROBE)
    gens = [g for gs in samples.values() for g in gs]
    counts = collections.Counter(t for g in gens for t in g.token_ids)
    return token_entropies(gens)["full_entropy_bits"], counts


def ppo_cfg(base, **overrides) -> PPOConfig:
    fields = dict(base=ModelConfig(path=str(base)), beta=0.0, seed=0, steps=8, batch_size=32, mini_batches=1, lr=5e-3,
                  response_length=4, prompts=PROMPTS, checkpoint_every=100, lora_r=8,
                  lora_targets=["q_proj", "v_proj", "o_proj"])
    fields.update(overrides)
    return PPOConfig(**fields)


def train_on_token(base, work, **overrides):
    policy, tokenizer, value = load(base)
    before, counts = probe(policy, tokenizer)
    token, _ = counts.most_common(1)[0]
    run = PPORun(ppo_cfg(base, **overrides), policy, tokenizer, TokenReward(token), value, work)
    history = run.train()
    after, counts_after = probe(run.peft_policy, tokenizer)
    share = lambda c: c[token] / sum(c.values())  # noqa: E731
    return {"run": run, "history": history, "entropy": (before, after), "share": (share(counts), share(counts_after))}


@pytest.fixture(scope="module")
def beta0(peaky_base, tmp_path_factory):
    return train_on_token(peaky_base, tmp_path_factory.mktemp("beta0"), beta=0.0)


def test_beta0_moves_lora_weights_and_lowers_entropy(beta0):
    run = beta0["run"]
    lora_b = [p for n, p in run.peft_policy.named_parameters() if "lora_B" in n]
    assert lora_b and all(float(p.detach().abs().max()) > 0 for p in lora_b)  # LoRA B starts at zero
    before, after = beta0["entropy"]
    assert after < before - 0.2, beta0["entropy"]
    assert beta0["share"][1] > 2 * beta0["share"][0], beta0["share"]
    kls = [h["objective/kl"] for h in beta0["history"] if "objective/kl" in h]
    assert len(kls) == 8 and math.isfinite(kls[-1]) and kls[-1] > 0
    assert {"objective/rlhf_reward", "policy/entropy_avg"} <= set(beta0["history"][-1])
    assert (run.adapter_dir / "adapter_config.json").exists()


def test_large_beta_lowers_entropy_less(beta0, peaky_base, tmp_path):
    held = train_on_token(peaky_base, tmp_path, beta=1.0)
    drop0 = beta0["entropy"][0] - beta0["entropy"][1]
    drop1 = held["entropy"][0] - held["entropy"][1]
    assert drop1 < 0.5 * drop0, (drop0, drop1)
    kl0 = [h["objective/kl"] for h in beta0["history"] if "objective/kl" in h][-1]
    kl1 = [h["objective/kl"] for h in held["history"] if "objective/kl" in h][-1]
    assert kl1 < kl0


class Kill(TrainerCallback):
    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"simulated kill after step {self.at}")


def test_killed_run_resumes_from_its_last_checkpoint(peaky_base, tmp_path):
    from safetensors.torch import load_file

    cfg = dict(steps=4, checkpoint_every=2, batch_size=8, beta=0.05)
    policy, tokenizer, value = load(peaky_base)
    killed = PPORun(ppo_cfg(peaky_base, **cfg), policy, tokenizer, TokenReward(7), value, tmp_path,
                    callbacks=[Kill(at=3)])
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    ckpt = latest_checkpoint(tmp_path / "checkpoint")
    assert read_state(ckpt)["step"] == 2
    saved = load_file(str(ckpt / "trainable.safetensors"))

    policy, tokenizer, value = load(peaky_base)
    resumed = PPORun(ppo_cfg(peaky_base, **cfg), policy, tokenizer, TokenReward(7), value, tmp_path)
    assert resumed.build() == 2
    params = dict(resumed.unwrapped.named_parameters())
    assert all(torch.equal(params[name], tensor) for name, tensor in saved.items())
    history = resumed.train()
    steps = [h["step"] for h in history if "objective/kl" in h]
    assert steps == [1, 2, 3, 4]  # steps 1-2 from before the kill, 3-4 after; nothing lost or repeated
    assert resumed.trainer.state.global_step == 4
    assert read_state(latest_checkpoint(tmp_path / "checkpoint"))["step"] == 4

    policy, tokenizer, value = load(peaky_base)  # a finished run is not trained again
    again = PPORun(ppo_cfg(peaky_base, **cfg), policy, tokenizer, TokenReward(7), value, tmp_path)
    assert len([h for h in again.train() if "objective/kl" in h]) == 4


def test_changed_config_does_not_resume_a_stale_checkpoint(peaky_base, tmp_path):
    policy, tokenizer, value = load(peaky_base)
    PPORun(ppo_cfg(peaky_base, steps=2, batch_size=8), policy, tokenizer, TokenReward(7), value, tmp_path).train()
    policy, tokenizer, value = load(peaky_base)
    other = PPORun(ppo_cfg(peaky_base, steps=2, batch_size=8, lr=1e-3), policy, tokenizer, TokenReward(7), value,
                   tmp_path)
    assert other.build() == 0
