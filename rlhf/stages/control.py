"""The positive control: an annotator term that rewards one attribute value directly, and its closed form.

The control's utility is ``u(y) = w * [card(y).<attribute> == value]`` (a card that does not parse, or names
another value, scores 0). Under the KL-regularised objective ``E[u] - beta * KL(pi || pi0)`` the optimum is
``pi*(y) ~ pi0(y) exp(u(y) / beta)``, so the share of the value has the closed form

    pi*(value) = p0 e^{w/beta} / (p0 e^{w/beta} + 1 - p0),         p0 = the base model's share of the value.

PPO is given this utility itself (``ppo.reward=control``: an oracle reward, no reward model), so the control
checks the optimiser and the training regime: a run that cannot reach this target cannot be read when it leaves
an attribute alone. Whether a *learned* reward model carries what the annotator asked is checked separately
(the reward stage's calibration and implied alpha).
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import List, Sequence

import numpy as np
import torch

from measure.persona_parse import ATTRIBUTES, parse_persona


def closed_form_share(p0: float, weight: float, beta: float) -> float:
    """pi*(value) = p0 e^{w/beta} / (p0 e^{w/beta} + 1 - p0) (beta > 0; beta = 0 is the argmax: 1 if p0 > 0)."""
    if not 0.0 <= p0 <= 1.0:
        raise ValueError(f"p0: {p0} is out of range; accepted 0 <= p0 <= 1")
    if beta <= 0:
        return 1.0 if p0 > 0 else 0.0
    if p0 in (0.0, 1.0):
        return p0
    logit = math.log(p0) - math.log1p(-p0) + weight / beta
    return 1.0 / (1.0 + math.exp(-logit))


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple:
    """The Wilson score interval of a binomial share (0, 1 for n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def has_value(text: str, attribute: str, value: str) -> bool:
    return getattr(parse_persona(text), attribute) == value


def control_utility(texts: Sequence[str], attribute: str, value: str, weight: float) -> np.ndarray:
    return np.array([weight * has_value(t, attribute, value) for t in texts], dtype=np.float64)


class ControlReward(torch.nn.Module):
    """The control's utility as a reward model TRL's PPO can call (``trl.experimental.utils.get_reward`` reads
    ``getattr(model, model.base_model_prefix)(...).hidden_states[-1]`` then ``model.score``): the "backbone"
    decodes each sequence's response (the tokens after a known prompt; pads dropped) and returns the utility at
    every position, ``score`` is the identity. ``model(input_ids, attention_mask).logits`` gives the same
    utilities as a (batch, 1) tensor, like a sequence-classification reward model."""

    base_model_prefix = "backbone"

    def __init__(self, tokenizer, prompt_ids: Sequence[Sequence[int]], attribute: str, value: str, weight: float):
        super().__init__()
        if attribute not in ATTRIBUTES:
            raise ValueError(f"control.attribute: {attribute!r} is not a card attribute; accepted {' | '.join(ATTRIBUTES)}")
        self.tokenizer, self.attribute, self.value, self.weight = tokenizer, attribute, value, float(weight)
        self.prompts: List[List[int]] = sorted((list(p) for p in prompt_ids), key=len, reverse=True)
        self.score = torch.nn.Identity()
        self._anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # gives the module a device

    @property
    def backbone(self):
        return self._backbone

    def _backbone(self, input_ids, attention_mask=None, **_):
        u = self.utilities(input_ids, attention_mask)
        hidden = u[:, None, None].expand(input_ids.shape[0], input_ids.shape[1], 1)
        return SimpleNamespace(hidden_states=(hidden,))

    def response_text(self, ids: List[int]) -> str:
        for p in self.prompts:
            if ids[:len(p)] == p:
                ids = ids[len(p):]
                break
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def utilities(self, input_ids, attention_mask=None) -> torch.Tensor:
        mask = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        texts = [self.response_text(row[m].tolist()) for row, m in zip(input_ids, mask)]
        u = control_utility(texts, self.attribute, self.value, self.weight)
        return torch.tensor(u, dtype=torch.float32, device=input_ids.device)

    def forward(self, input_ids, attention_mask=None, **_):
        return SimpleNamespace(logits=self.utilities(input_ids, attention_mask)[:, None])
