"""PPO with LoRA (Eq. 5.2): glue around TRL 1.12's ``trl.experimental.ppo.PPOTrainer``.

The policy is the base model with a peft LoRA adapter; the reference policy is the same model with the
adapter switched off (``ref_model=None``), so the KL term of Eq. 5.2, ``beta * KL(pi || pi_0)``, costs no
second copy. ``kl_coef`` = beta. The reward model and the value model are ``LlamaForSequenceClassification``
heads sharing the policy's tokenizer. All PPO maths is TRL's; this module builds its inputs, adds
checkpoints and resume (TRL's PPO loop has none), and saves the adapter where model configs can name it:
``<cache_dir>/ppo/alpha{alpha}_beta{beta}_seed{seed}/adapter``.
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import os
import shutil
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from measure.prompts import encode_prompt
from measure.tiny import config_hash
from rlhf.stages.ppo_checkpoint import CheckpointCallback, ResumeCallback, latest_checkpoint, load_checkpoint, read_state
from rlhf.config import PPOConfig, ProbePrompt, run_name

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
log = logging.getLogger(__name__)
# accelerate logs "The used dataset had no length..." at INFO for every metric TRL gathers on a last batch
logging.getLogger("accelerate.accelerator").setLevel(logging.WARNING)


def ppo_dir(cache_dir: str | os.PathLike, alpha: float, cfg: PPOConfig) -> Path:
    """``<cache_dir>/ppo/alpha{alpha}_beta{beta}_seed{seed}``: ``alpha`` is the preference set's (preferences.alpha)."""
    return Path(cache_dir) / "ppo" / run_name(alpha, cfg.beta, cfg.seed)


def training_hash(cfg: PPOConfig, reward_path: str) -> str:
    """Hash of everything that shapes the trained weights (the reward model, hence alpha, by its path); a
    checkpoint resumes only under the same hash."""
    fields = dataclasses.asdict(cfg)
    for volatile in ("resume", "checkpoint_every", "threads"):
        fields.pop(volatile)
    return config_hash({"ppo": fields, "reward": str(reward_path)})


def prompt_order(keys: Sequence[str], n: int, persona_share: Optional[float] = None) -> List[int]:
    """Indices into ``keys`` for ``n`` queries: cycling through every prompt, or with ``persona_share`` of them on
    the persona prompt (rounded per block of 100) and the rest cycling through the others."""
    if persona_share is None or "persona" not in keys:
        return [i % len(keys) for i in range(n)]
    persona = keys.index("persona")
    others = [i for i in range(len(keys)) if i != persona] or [persona]
    out, j = [], 0
    for i in range(n):
        if (i % 100) < round(persona_share * 100):
            out.append(persona)
        else:
            out.append(others[j % len(others)])
            j += 1
    return out


def prompt_dataset(tokenizer, prompts: Sequence[ProbePrompt], n: int, persona_share: Optional[float] = None):
    """A `datasets.Dataset` of ``n`` tokenised prompts (PPO's queries) in ``prompt_order``."""
    from datasets import Dataset

    ids = [encode_prompt(tokenizer, p.text, chat=p.chat) for p in prompts]
    order = prompt_order([p.key for p in prompts], n, persona_share)
    return Dataset.from_dict({"input_ids": [ids[i] for i in order]})


def lora_config(cfg: PPOConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_targets), bias="none", task_type="CAUSAL_LM")


def ppo_args(cfg: PPOConfig, work_dir: Path, steps: int, world_size: int, use_cpu: bool, seed: int):
    from trl.experimental.ppo import PPOConfig as TrlPPOConfig

    if cfg.batch_size % world_size:
        raise ValueError(f"ppo.batch_size: {cfg.batch_size} is not divisible by {world_size} processes")
    per_device = cfg.batch_size // world_size
    if per_device % cfg.mini_batches:
        raise ValueError(f"ppo.mini_batches: {cfg.mini_batches} does not divide the per-process batch {per_device}")
    return TrlPPOConfig(
        output_dir=str(work_dir / "trl"), per_device_train_batch_size=per_device, gradient_accumulation_steps=1,
        num_mini_batches=cfg.mini_batches, num_ppo_epochs=cfg.ppo_epochs, total_episodes=steps * cfg.batch_size,
        local_rollout_forward_batch_size=per_device, response_length=cfg.response_length,
        temperature=cfg.temperature, stop_token="eos", missing_eos_penalty=cfg.missing_eos_penalty,
        kl_coef=cfg.beta, kl_estimator=cfg.kl_estimator, learning_rate=cfg.lr,
        lr_scheduler_type="constant",  # a resumed run continues the same schedule without rewinding it
        bf16=False, fp16=False, use_cpu=use_cpu, gradient_checkpointing=False, report_to=[],
        num_sample_generations=0, logging_steps=1, save_strategy="no", seed=seed, disable_tqdm=False,
    )


def world_size() -> int:
    """Processes of this run: `accelerate launch` (and torchrun) set WORLD_SIZE; a plain `python -m` is one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def use_cpu(device: str = "auto") -> bool:
    return device == "cpu" or not torch.cuda.is_available()


class PPORun:
    """One PPO training run over models already loaded by the caller.

    ``policy`` is a plain causal LM (LoRA is added here); ``reward_model`` is any module TRL's ``get_reward``
    accepts (a ``*ForSequenceClassification`` or a module with ``base_model_prefix`` and ``score``);
    ``value_model`` a ``*ForSequenceClassification``. ``work_dir`` holds the checkpoints and the adapter.
    """

    def __init__(self, cfg: PPOConfig, policy, tokenizer, reward_model, value_model, work_dir: Path,
                 reward_id: str = "", callbacks: Sequence = ()):
        self.cfg, self.work_dir = cfg, Path(work_dir)
        self.policy, self.tokenizer = policy, tokenizer
        self.reward_model, self.value_model = reward_model, value_model
        self.hash = training_hash(cfg, reward_id)
        self.callbacks = list(callbacks)
        self.trainer = None
        self.start = 0

    @property
    def checkpoint_root(self) -> Path:
        return self.work_dir / "checkpoint"

    @property
    def adapter_dir(self) -> Path:
        return self.work_dir / "adapter"

    def _resume_point(self) -> Optional[Path]:
        ckpt = latest_checkpoint(self.checkpoint_root) if self.cfg.resume else None
        if ckpt is not None and read_state(ckpt)["config_hash"] != self.hash:
            log.warning("checkpoint %s was made with a different config; starting over", ckpt)
            return None
        return ckpt

    def build(self) -> int:
        """Build the trainer (resuming when a matching checkpoint exists); returns the step it starts from."""
        from transformers import set_seed
        from trl.experimental.ppo import PPOTrainer

        set_seed(self.cfg.seed)  # the LoRA init and the rollouts
        ckpt = self._resume_point()
        start = read_state(ckpt)["step"] if ckpt else 0
        remaining = max(self.cfg.steps - start, 1)  # a finished run is rebuilt with one step it never takes
        self.tokenizer.padding_side = "left"  # PPO appends responses to the queries: pad on the left
        args = ppo_args(self.cfg, self.work_dir, remaining, world_size(), use_cpu(self.cfg.base.device),
                        seed=self.cfg.seed + 7919 * start)  # a resumed run does not replay the first one's draws
        dataset = prompt_dataset(self.tokenizer, self.cfg.prompts, remaining * self.cfg.batch_size,
                                 self.cfg.persona_share)
        # the checkpoint is written last in each step, so it holds that step's diversity measurement too
        callbacks = self.callbacks + [CheckpointCallback(self.checkpoint_root, self.cfg.checkpoint_every, self.hash,
                                                         lambda: (self.unwrapped, self.trainer.optimizer))]
        if ckpt:
            saved = read_state(ckpt)
            callbacks.insert(0, ResumeCallback(start, self.cfg.steps, self.cfg.batch_size, saved["log_history"]))
        self.trainer = PPOTrainer(args=args, processing_class=self.tokenizer, model=self.policy, ref_model=None,
                                  reward_model=self.reward_model, train_dataset=dataset,
                                  value_model=self.value_model, callbacks=callbacks,
                                  peft_config=lora_config(self.cfg))
        if self.trainer.accelerator.num_processes > 1:
            # TRL 1.12 reads `self.model.policy` on the DDP wrapper (reference pass with the adapter off)
            self.trainer.model.policy = self.unwrapped.policy
        if ckpt:
            load_checkpoint(ckpt, self.unwrapped, self.trainer.optimizer)
            log.info("resuming PPO from step %d of %d (%s)", start, self.cfg.steps, ckpt)
        self.start = start
        return start

    @property
    def accelerator(self):
        return self.trainer.accelerator

    @property
    def unwrapped(self):
        """TRL's PolicyAndValueWrapper without DDP: `.policy` (PeftModel) and `.value_model`."""
        return self.trainer.accelerator.unwrap_model(self.trainer.model)

    @property
    def peft_policy(self):
        return self.unwrapped.policy

    def train(self) -> List[dict]:
        """Train the remaining steps (none if the checkpoint is final) and save the adapter; returns log history."""
        start = self.start if self.trainer is not None else self.build()
        if start < self.cfg.steps:
            gc.freeze()  # TRL calls gc.collect() twice a step; frozen models and datasets make that cheap
            try:
                self.trainer.train()
            finally:
                gc.unfreeze()
        else:
            log.info("PPO run already finished (%d steps); reusing its checkpoint", start)
            self.trainer.state.log_history = read_state(latest_checkpoint(self.checkpoint_root))["log_history"]
            self.trainer.state.global_step = start
        self.save_adapter()
        return self.trainer.state.log_history

    def save_adapter(self) -> Path:
        """Save the LoRA adapter (PEFT format) atomically to ``work_dir/adapter`` (main process only)."""
        if self.trainer.accelerator.is_main_process:
            tmp = self.work_dir / ".adapter.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            self.peft_policy.save_pretrained(str(tmp))
            self.tokenizer.save_pretrained(str(tmp))
            shutil.rmtree(self.adapter_dir, ignore_errors=True)
            os.replace(tmp, self.adapter_dir)
            log.info("adapter saved to %s", self.adapter_dir)
        self.trainer.accelerator.wait_for_everyone()
        return self.adapter_dir


def load_value_and_reward(reward_path: str, value_init: Optional[str] = None, device: str | torch.device = "cpu"):
    """(reward_model, value_model): the trained reward model, and a value model initialised from ``value_init``
    (default: the reward model, as InstructGPT and TRL's examples do). Both have one output."""
    from transformers import AutoModelForSequenceClassification

    reward = AutoModelForSequenceClassification.from_pretrained(reward_path, num_labels=1, use_safetensors=True)
    value = AutoModelForSequenceClassification.from_pretrained(value_init or reward_path, num_labels=1,
                                                               use_safetensors=True)
    reward.eval().requires_grad_(False)
    return reward.to(device), value.to(device)
