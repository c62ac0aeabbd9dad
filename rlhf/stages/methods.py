"""The alignment methods beside PPO, as TRL 1.12 trainers: their inputs, arguments and reward functions.

Every trained method starts from the same base with the same LoRA adapter (``rlhf.stages.ppo.lora_config``), and
its reference policy is the base itself: the adapter switched off, as in PPO.

- ``rloo``: ``trl.RLOOTrainer``. It subtracts ``beta * KL`` (k1, summed over the completion) from the reward
  before the leave-one-out baseline: the classic KL-regularised objective, whose optimum is
  pi*(y) ~ pi0(y) exp(r(y) / beta), the predict stage's target. Advantages are not normalised.
- ``grpo``: ``trl.GRPOTrainer`` with ``scale_rewards="none"`` and ``beta > 0`` (TRL's defaults, "group" and 0,
  optimise another objective). Its KL is a k3 penalty per token inside the loss, not in the reward: the
  gradient of that penalty is biased for the KL of the sequence (Tang & Munos 2025), so GRPO's optimum is only
  approximately pi0 exp(r / beta).
- ``dpo``: ``trl.DPOTrainer`` on the reward model's own training pairs (the same token ids), at ``beta``: its
  implicit target is pi0 exp(r_BT / beta), r_BT the annotator's Bradley-Terry utility.
- ``rft``: rejection-sampling fine-tuning (Llama 2-Chat's RLHF V1-V4): the best of ``best_of`` base samples
  under the reward arm, for ``rft_prompts`` groups per prompt, then ``trl.SFTTrainer`` on them.
- ``sft_curated``: ``trl.SFTTrainer`` on demonstrations of a simulated demonstrator whose first names follow a
  Zipf prior (rlhf/world/demonstrator.py).
- ``bon``: no training; rlhf/stages/align.py samples and selects.

RLOO and GRPO take ``mini_batches * ppo_epochs`` optimiser steps per rollout batch of ``ppo.batch_size``
completions (``steps_per_generation`` = mini_batches, ``num_iterations`` = ppo_epochs), as PPO does, so the three
see the same batches and as many updates.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from measure.prompts import chat_prompt_text, encode_prompt
from rlhf.config import ProbePrompt
from rlhf.stages.annotator import quality_terms, quality_utility, typicality_logp

log = logging.getLogger(__name__)
TRAINED = ("rloo", "grpo", "dpo", "rft", "sft_curated")
RL_METHODS = ("rloo", "grpo")


def trl_prompt(tokenizer, prompt: ProbePrompt) -> str:
    """The prompt as TRL's trainers take it: the text that ``tokenizer(text)`` (special tokens added, as TRL
    tokenises a plain prompt) turns into exactly ``encode_prompt``'s ids (chat prompts: the chat template's text
    without its leading BOS, which the tokenizer adds back)."""
    ids = encode_prompt(tokenizer, prompt.text, chat=prompt.chat)
    text = chat_prompt_text(tokenizer, prompt.text) if prompt.chat else prompt.text
    bos = tokenizer.bos_token
    if prompt.chat and bos and text.startswith(bos):
        text = text[len(bos):]
    if tokenizer(text)["input_ids"] != ids:
        raise ValueError(f"prompt {prompt.key!r}: TRL would tokenise it differently from the PPO stage")
    return text


def rl_dataset(tokenizer, prompts: Sequence[ProbePrompt], n: int, persona_share: Optional[float] = None):
    """``n`` prompt rows (``prompt``: TRL's text, ``prompt_key``) in ``rlhf.stages.ppo.prompt_order``."""
    from datasets import Dataset

    from rlhf.stages.ppo import prompt_order

    texts = [trl_prompt(tokenizer, p) for p in prompts]
    order = prompt_order([p.key for p in prompts], n, persona_share)
    return Dataset.from_dict({"prompt": [texts[i] for i in order], "prompt_key": [prompts[i].key for i in order]})


@torch.no_grad()
def base_token_logprobs(model, prompt_ids: List[int], completion_ids: List[int]) -> np.ndarray:
    """log pi0(y_t) of each completion token under ``model`` with its adapter off (the base)."""
    from rlhf.stages.callbacks import base_view

    if not completion_ids:
        return np.zeros(0)
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)], device=device)
    with base_view(model):
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()
    return torch.log_softmax(logits, -1).gather(1, ids[0, len(prompt_ids):, None]).squeeze(1).cpu().double().numpy()


class RewardFunction:
    """A TRL ``reward_funcs`` callable that scores each completion as the PPO stage's reward does.

    ``kind="model"``: the reward model's score of prompt ids + completion ids (the ids it was trained on; EOS
    included when the completion ended). ``kind="oracle"``: the annotator's true utility, u_quality + alpha *
    log p_base, log p_base from ``policy()`` with its adapter off. Reads the dataset's ``prompt_key`` column.
    """

    def __init__(self, kind: str, tokenizer, prompts: Sequence[ProbePrompt], cfg, reward_model=None,
                 policy: Optional[Callable[[], object]] = None):
        self.kind, self.tokenizer, self.cfg = kind, tokenizer, cfg
        self.ids = {p.key: encode_prompt(tokenizer, p.text, chat=p.chat) for p in prompts}
        self.reward_model, self.policy = reward_model, policy
        self.__name__ = f"{kind}_reward"  # TRL logs rewards/<name>
        if kind == "model" and reward_model is None:
            raise ValueError("a reward-model reward needs the reward model")

    def scores(self, keys: Sequence[str], completion_ids: Sequence[List[int]], texts: Sequence[str]) -> List[float]:
        from rlhf.stages.reward import score_sequences

        if self.kind == "model":
            seqs = [self.ids[k] + list(c) for k, c in zip(keys, completion_ids)]
            return score_sequences(self.reward_model, seqs, self.tokenizer.pad_token_id).tolist()
        eos = self.tokenizer.eos_token_id
        alpha, form = self.cfg.preferences.alpha, self.cfg.preferences.typicality
        out = []
        for k, c, text in zip(keys, completion_ids, texts):
            stopped = bool(c) and c[-1] == eos
            u = quality_utility(quality_terms(text, k == "persona", stopped), self.cfg.preferences.annotator)
            if alpha:
                u += alpha * typicality_logp(np.exp(base_token_logprobs(self.policy(), self.ids[k], c)), form)
            out.append(float(u))
        return out

    def __call__(self, prompts, completions, completion_ids, prompt_key, **kwargs) -> List[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return self.scores(prompt_key, [list(c) for c in completion_ids], texts)


def updates_per_batch(ppo) -> int:
    """Optimiser steps per rollout batch of rloo and grpo (as PPO's mini_batches x ppo_epochs)."""
    return ppo.mini_batches * ppo.ppo_epochs


def common_args(cfg, work_dir: Path, use_cpu: bool) -> dict:
    return dict(output_dir=str(work_dir / "trl"), bf16=False, fp16=False, use_cpu=use_cpu, report_to=[],
                logging_steps=1, save_strategy="no", seed=cfg.ppo.seed, lr_scheduler_type="constant",
                gradient_checkpointing=False, disable_tqdm=False, dataloader_num_workers=0)


def rl_args(method: str, cfg, work_dir: Path, use_cpu: bool):
    """RLOOConfig / GRPOConfig: ``ppo.steps`` batches of ``ppo.batch_size`` completions (``align.num_generations``
    per prompt), ``updates_per_batch`` optimiser steps each, rollouts at ``ppo.temperature`` with no top-k / top-p
    (as PPO's), ``ppo.response_length`` tokens at most."""
    from trl import GRPOConfig, RLOOConfig

    from rlhf.stages.ppo import world_size

    ppo, align = cfg.ppo, cfg.align  # RlhfConfig checked that num_generations divides the batch
    if ppo.batch_size % (world_size() * ppo.mini_batches):
        raise ValueError(f"ppo.batch_size: {ppo.batch_size} is not divisible by {world_size()} processes x "
                         f"{ppo.mini_batches} minibatches")
    per_step = ppo.batch_size // (world_size() * ppo.mini_batches)  # per process, per optimiser step
    args = dict(common_args(cfg, work_dir, use_cpu), per_device_train_batch_size=per_step,
                gradient_accumulation_steps=1, steps_per_generation=ppo.mini_batches, num_iterations=ppo.ppo_epochs,
                num_generations=align.num_generations, max_completion_length=ppo.response_length,
                temperature=ppo.temperature, top_k=0, top_p=1.0, beta=ppo.beta, learning_rate=ppo.lr,
                max_steps=ppo.steps * updates_per_batch(ppo), remove_unused_columns=False, shuffle_dataset=False,
                disable_dropout=True, log_completions=False)
    if method == "rloo":
        return RLOOConfig(**args, normalize_advantages=False)
    return GRPOConfig(**args, scale_rewards=align.scale_rewards, loss_type=align.loss_type)


def rl_trainer(method: str, cfg, policy, tokenizer, reward_fn: RewardFunction, work_dir: Path, use_cpu: bool,
               callbacks: Sequence = ()):
    """An RLOOTrainer or GRPOTrainer of ``policy`` (a plain causal LM; LoRA added by TRL from peft_config)."""
    from trl import GRPOTrainer, RLOOTrainer

    from rlhf.stages.ppo import lora_config

    ppo = cfg.ppo
    args = rl_args(method, cfg, work_dir, use_cpu)
    prompts_needed = ppo.steps * ppo.batch_size // cfg.align.num_generations
    dataset = rl_dataset(tokenizer, ppo.prompts, prompts_needed, ppo.persona_share)
    tokenizer.padding_side = "left"
    cls = RLOOTrainer if method == "rloo" else GRPOTrainer
    return cls(model=policy, reward_funcs=[reward_fn], args=args, train_dataset=dataset, processing_class=tokenizer,
               callbacks=list(callbacks), peft_config=lora_config(ppo))


def dpo_rows(prefs) -> List[dict]:
    """The preference set's training pairs as pre-tokenised DPO rows: the reward model's own ids (prompt ids,
    then each response's ids, EOS only where the response ended)."""
    rows = []
    for r in prefs:
        if r["split"] != "train":
            continue
        n_prompt = len(r["chosen_ids"]) - r["n_tokens_chosen"]
        rows.append({"prompt_ids": r["chosen_ids"][:n_prompt], "chosen_ids": r["chosen_ids"][n_prompt:],
                     "rejected_ids": r["rejected_ids"][n_prompt:]})
    return rows


def _dpo_class():
    from trl import DPOTrainer

    class PreTokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer on rows that already hold ``prompt_ids``/``chosen_ids``/``rejected_ids``: TRL 1.12 would
        re-tokenise the texts and append EOS to every response, truncated ones included, changing the pairs."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" in dataset.column_names:
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return PreTokenizedDPOTrainer


def dpo_trainer(cfg, policy, tokenizer, prefs, work_dir: Path, use_cpu: bool, callbacks: Sequence = ()):
    from datasets import Dataset
    from trl import DPOConfig

    from rlhf.stages.ppo import lora_config

    align = cfg.align
    args = DPOConfig(**common_args(cfg, work_dir, use_cpu), beta=cfg.ppo.beta,
                     learning_rate=align.dpo_lr or cfg.ppo.lr, per_device_train_batch_size=align.dpo_batch_size,
                     gradient_accumulation_steps=1, num_train_epochs=align.dpo_epochs, max_length=None,
                     disable_dropout=True, precompute_ref_log_probs=False)
    tokenizer.padding_side = "right"
    return _dpo_class()(model=policy, args=args, train_dataset=Dataset.from_list(dpo_rows(prefs)),
                        processing_class=tokenizer, callbacks=list(callbacks), peft_config=lora_config(cfg.ppo))


def sft_rows(examples: Sequence[tuple]) -> List[dict]:
    """(prompt ids, response ids) pairs as pre-tokenised SFT rows: the loss on the response only."""
    return [{"input_ids": list(p) + list(r), "completion_mask": [0] * len(p) + [1] * len(r)} for p, r in examples]


def sft_trainer(cfg, policy, tokenizer, examples: Sequence[tuple], work_dir: Path, use_cpu: bool,
                callbacks: Sequence = ()):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from rlhf.stages.ppo import lora_config

    align = cfg.align
    args = SFTConfig(**common_args(cfg, work_dir, use_cpu), learning_rate=align.sft_lr or cfg.ppo.lr,
                     per_device_train_batch_size=align.sft_batch_size, gradient_accumulation_steps=1,
                     num_train_epochs=align.sft_epochs, max_length=None, packing=False, completion_only_loss=True)
    tokenizer.padding_side = "right"
    return SFTTrainer(model=policy, args=args, train_dataset=Dataset.from_list(sft_rows(examples)),
                      processing_class=tokenizer, callbacks=list(callbacks), peft_config=lora_config(cfg.ppo))


def best_of_groups(scores: Sequence[float], n: int) -> List[int]:
    """Index of the best of each consecutive group of ``n`` scores (the first on ties)."""
    s = np.asarray(scores, dtype=float)
    groups = len(s) // n
    return [int(g * n + np.argmax(s[g * n:(g + 1) * n])) for g in range(groups)]


def best_of_n_log_ratio(score: float, reference: Sequence[float], n: int) -> float:
    """log pi_bon(y) / pi0(y) of a best-of-n sample with reward ``score``, ties broken at random:
    log[(F^n - F_-^n) / (F - F_-)], F = P0(r <= score) and F_- = P0(r < score) estimated from ``reference`` base
    scores (which include the sample's own). For a continuous reward this is log n + (n - 1) log F (Beirami et al.
    2024); with ties it stays exact, where the continuous form would go negative. Its mean over best-of-n samples
    estimates KL(pi_bon || pi0) <= log n - (n - 1) / n."""
    ref = np.asarray(reference, dtype=float)
    hi, lo = float(np.mean(ref <= score)), float(np.mean(ref < score))
    if hi <= lo:  # the score is not among the reference's: treat it as one more draw
        hi, lo = (np.sum(ref <= score) + 1) / (len(ref) + 1), np.sum(ref < score) / (len(ref) + 1)
    return math.log((hi ** n - lo ** n) / (hi - lo))


def best_of_n_kl_bound(n: int) -> float:
    return math.log(n) - (n - 1) / n
