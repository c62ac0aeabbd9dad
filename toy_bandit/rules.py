"""Policy-update rules for a one-state bandit, as pure numpy functions (Section 5.2 of the paper).

Every rule acts on a batch of independent policies at once: ``logits`` has shape (n, k) for n
policies (seeds) over k actions, ``action`` (n,) holds the sampled action indices and ``reward`` (n,)
the rewards received. Functions never modify their inputs; they return new arrays.

The one state is terminal after the action, so v(s') = 0 and the advantage of Eq. 5.1,
A = E[R + gamma v(s')] - v(s), reduces to R - v(s) for every rule below.
"""
from __future__ import annotations

import numpy as np

LN2 = float(np.log(2.0))


def _reduce_last(ufunc: np.ufunc, x: np.ndarray) -> np.ndarray:
    """``ufunc.reduce`` over the last axis (keepdims), one column at a time: for the (n_seeds, k)
    arrays used here, with k of 2 or 3, numpy's reduction over a short last axis is ~50x slower than
    k - 1 elementwise operations."""
    out = x[..., 0].copy()
    for j in range(1, x.shape[-1]):
        ufunc(out, x[..., j], out=out)
    return out[..., None]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the max for stability."""
    e = np.exp(logits - _reduce_last(np.maximum, logits))
    return e / _reduce_last(np.add, e)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities (nats) over the last axis."""
    z = logits - _reduce_last(np.maximum, logits)
    return z - np.log(_reduce_last(np.add, np.exp(z)))


def entropy_bits(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits over the last axis; 0 log 0 counts as 0."""
    p = np.asarray(probs, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return 0.0 - terms.sum(axis=-1)  # 0.0 - x turns -0.0 into 0.0


def kl_nats(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """D_KL(p || q) in nats over the last axis (the paper's footnote definition, natural log)."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
    return terms.sum(axis=-1)


def _rows(n: int) -> np.ndarray:
    return np.arange(n)


def advantage_update(logits: np.ndarray, value: np.ndarray, action: np.ndarray, reward: np.ndarray,
                     lr: float = 1.0, value_lr: float = 1.0):
    """The paper's Table 1 rule: add the advantage A = R - v(s) (Eq. 5.1, v(s') = 0) to the logit of
    the taken action, then move v(s) towards R by ``value_lr`` (1.0: "the value jumps to the last
    reward", as in Table 1).

    Returns (new_logits, new_value, advantage); ``value`` has shape (n,).
    """
    rows = _rows(logits.shape[0])
    advantage = reward - value
    new_logits = logits.copy()
    new_logits[rows, action] += lr * advantage
    new_value = value + value_lr * (reward - value)
    return new_logits, new_value, advantage


def actde_update(logits: np.ndarray, q: np.ndarray, action: np.ndarray, reward: np.ndarray,
                 lr: float = 1.0, q_lr: float = 1.0):
    """ACTDE (TurnTrout & Einhorn 2023): action-conditioned TD error A = R + gamma v(s') - q(s, a),
    added to the taken action's logit; q(s, a) is learned per action and moves towards R by ``q_lr``.

    With deterministic rewards the advantages of one action telescope: their sum is R(a)/q_lr
    (q starting at 0), so once every action has been tried the logits settle at
    logits0 + (lr / q_lr) R, i.e. pi = softmax(logits0 + R) for lr = q_lr; there is no mode collapse.

    Returns (new_logits, new_q, advantage); ``q`` has shape (n, k).
    """
    rows = _rows(logits.shape[0])
    advantage = reward - q[rows, action]
    new_logits = logits.copy()
    new_logits[rows, action] += lr * advantage
    new_q = q.copy()
    new_q[rows, action] += q_lr * advantage
    return new_logits, new_q, advantage


def reinforce_update(logits: np.ndarray, baseline: np.ndarray, action: np.ndarray, reward: np.ndarray,
                     lr: float = 0.5, baseline_lr: float = 0.1):
    """REINFORCE with a learned baseline (Williams 1992): logits += lr (R - b) grad log pi(a), where
    grad_logits log pi(a) = onehot(a) - pi, and b moves towards R by ``baseline_lr``.

    Returns (new_logits, new_baseline, advantage); ``baseline`` has shape (n,).
    """
    n, k = logits.shape
    probs = softmax(logits)
    advantage = reward - baseline
    grad_logp = -probs
    grad_logp[_rows(n), action] += 1.0
    new_logits = logits + lr * advantage[:, None] * grad_logp
    new_baseline = baseline + baseline_lr * (reward - baseline)
    return new_logits, new_baseline, advantage


def kl_shaped_reward(reward: np.ndarray, logits: np.ndarray, logits0: np.ndarray, action: np.ndarray,
                     beta) -> np.ndarray:
    """Eq. 5.2 per sample: R - beta (log pi(a) - log pi0(a)), whose expectation under pi is
    E[R] - beta D_KL(pi || pi0) (the estimator used in RLHF PPO implementations). ``beta``: a float
    or one value per row."""
    rows = _rows(logits.shape[0])
    log_ratio = log_softmax(logits)[rows, action] - log_softmax(logits0)[rows, action]
    return reward - beta * log_ratio


def ppo_kl_update(logits: np.ndarray, logits0: np.ndarray, value: np.ndarray, action: np.ndarray,
                  reward: np.ndarray, beta=0.1, lr: float = 0.5, value_lr: float = 0.1,
                  clip_eps: float = 0.2, epochs: int = 4, scale_lr_with_beta: bool = True):
    """PPO-style clipped update with the KL penalty of Eq. 5.2 towards the initial policy pi0.

    The reward is shaped (``kl_shaped_reward``), A = R_shaped - v, and ``epochs`` gradient-ascent steps
    on the clipped surrogate min(rho A, clip(rho, 1 - eps, 1 + eps) A), rho = pi(a) / pi_old(a), are
    taken on the one sample; a policy whose ratio has left the clip range in the direction of A gets no
    gradient (the PPO clip). The value moves towards R_shaped by ``value_lr``. The expected first-epoch
    step is proportional to the exact gradient of E_pi[R] - beta D_KL(pi || pi0), whose maximiser is
    pi0 exp(R / beta) / Z (``kl_optimum``).

    ``beta`` is a float or one value per row (a beta sweep in one batch). With ``scale_lr_with_beta``
    the step is lr / (1 + beta): the KL term adds curvature proportional to beta, and a fixed step
    overshoots and diverges once lr * beta passes about 1 (lr = 0.5, beta = 10 ends near-deterministic
    instead of near pi0); dividing the objective by 1 + beta keeps its maximiser and makes the step stable.

    Returns (new_logits, new_value, advantage); ``value`` has shape (n,).
    """
    n, _ = logits.shape
    rows = _rows(n)
    shaped = kl_shaped_reward(reward, logits, logits0, action, beta)
    advantage = shaped - value
    step = lr / (1.0 + np.asarray(beta, dtype=float)) if scale_lr_with_beta else lr
    p_old = softmax(logits)[rows, action]
    new_logits = logits.copy()
    for _ in range(epochs):
        probs = softmax(new_logits)
        ratio = probs[rows, action] / p_old
        clipped = ((advantage > 0) & (ratio > 1.0 + clip_eps)) | ((advantage < 0) & (ratio < 1.0 - clip_eps))
        # d/dlogits of rho A = A rho (onehot(a) - pi)
        grad = -probs
        grad[rows, action] += 1.0
        scale = np.where(clipped, 0.0, step * advantage * ratio)
        new_logits = new_logits + scale[:, None] * grad
    new_value = value + value_lr * (shaped - value)
    return new_logits, new_value, advantage


def kl_optimum(logits0: np.ndarray, rewards: np.ndarray, beta: float) -> np.ndarray:
    """Closed-form maximiser of E_pi[R] - beta D_KL(pi || pi0): pi*(a) = pi0(a) exp(R(a) / beta) / Z.

    beta = 0 is the limit beta -> 0+: all mass on the best reward(s) within the support of pi0,
    split in proportion to pi0 among ties.
    """
    if beta < 0:
        raise ValueError(f"beta: {beta} is out of range; accepted beta >= 0")
    logp0 = log_softmax(np.asarray(logits0, dtype=float))
    rewards = np.asarray(rewards, dtype=float)
    if beta == 0:
        best = rewards == rewards.max(axis=-1, keepdims=True)
        return softmax(np.where(best, logp0, -np.inf))
    return softmax(logp0 + rewards / beta)
