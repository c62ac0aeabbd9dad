"""Exact attribute distributions by teacher forcing: a forced choice over a known set of values.

Given a context that ends where an attribute's value begins (a persona card up to "Nationality:") and the
candidate values written as the model would write them (" American\\n", " German\\n", ...: the value and the
token that ends the field), the chain rule gives each candidate's probability exactly,
log p(y | context) = sum_t log p(y_t | context, y_<t). Renormalised over the candidates it is the model's
distribution over the value set, with no sampling error; the mass the model puts on the set before
renormalising is the *covered mass* (1: the model writes nothing but known values).

Two halves, as everywhere in ``measure.metrics``:

- scoring, ``candidate_logprobs(model, context_ids, candidates)`` and, for several contexts that are prefixes of
  one sequence (a card cut before each field), ``nested_candidate_logprobs``: the longest context is run once and
  its KV cache kept; the candidates' tokens then run over that cache, as a trie of their prefixes packed side by
  side into one row under a block mask (each node sees its context and its ancestors, at the position it would
  have alone), or batched over copies of the cache where the attention takes no custom mask. A context of L tokens
  and K candidates of m tokens cost L + (distinct prefixes) <= L + K(m - 1) token positions instead of K(L + m);
  a candidate's first token is read off the context's last logits.
- pooling, pure functions of the (contexts x candidates) matrix of log-probabilities: covered mass, the entropy of
  each context's distribution (``conditional_entropy_bits``, averaged over contexts), the entropy of the
  context-averaged distribution (``marginal_entropy_bits``), KL(model || base) per context in nats, each with a
  percentile bootstrap over contexts; two models on the same contexts are compared by resampling the same
  contexts for both (a paired bootstrap), so a model against itself gives a difference and a KL of exactly 0.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy.special import logsumexp

from measure.metrics.entropy import entropy_bits

PACKED_TOKENS = 512  # trie nodes packed into one row over the cached context (attention costs its square)
SCORE_BATCH = 256  # candidates per batch where packing does not apply (batch x length x vocab logits)
PACKABLE = ("sdpa", "eager")  # attention implementations that take a custom 4-D additive mask


def candidate_logprobs(model, context_ids: Sequence[int], candidates: Sequence[Sequence[int]],
                       packed: Optional[bool] = None) -> np.ndarray:
    """log p(candidate | context) in nats for every candidate token sequence (float64, one per candidate).

    ``context_ids`` are the token ids the model has seen (BOS or chat template included); each candidate is the
    full token sequence of one value, the token that ends the field included. See ``nested_candidate_logprobs``.
    """
    return nested_candidate_logprobs(model, context_ids, [(len(context_ids), candidates)], packed)[0]


@torch.no_grad()
def nested_candidate_logprobs(model, ids: Sequence[int], groups: Sequence[tuple],
                              packed: Optional[bool] = None) -> List[np.ndarray]:
    """log p(candidate | ids[:cut]) (nats) for each group ``(cut, candidates)`` of contexts that are prefixes of one
    token sequence (a card cut before each of its fields): one array per group.

    ``ids[:max cut]`` is run once and its KV cache kept; a candidate's first token is read off the logits at its
    cut. The candidates' other tokens then run over that cache, either ``packed`` (the default where the attention
    takes a custom mask): the candidates' proper prefixes form a trie whose nodes (one token each, a shared prefix
    once) sit side by side in one row, each attending to its context ``ids[:cut]``, its ancestors and itself, at
    the position it would have alone; or as a batch of right-padded rows over copies of the cache cut to the
    context (a causal model's logits at a real token never see the padding after it). Both equal scoring each
    candidate alone, up to float rounding.
    """
    if not groups:
        return []
    cuts = [int(cut) for cut, _ in groups]
    if min(cuts) < 1 or max(cuts) > len(ids):
        raise ValueError(f"cuts {cuts} must lie in 1..{len(ids)} (a context needs at least one token, BOS)")
    for _, candidates in groups:
        if len(candidates) == 0 or any(len(c) == 0 for c in candidates):
            raise ValueError("candidates must be a non-empty list of non-empty token sequences")
    if packed is None:
        packed = getattr(model.config, "_attn_implementation", None) in PACKABLE
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        context = torch.tensor([list(ids[:max(cuts)])], device=device)
        out = model(input_ids=context, use_cache=True)
        first = torch.log_softmax(out.logits[0].double(), -1)
        scores = [first[cut - 1, torch.tensor([c[0] for c in cands], device=device)].cpu().numpy()
                  for cut, cands in groups]
        rows = sorted(((g, i) for g, (_, cands) in enumerate(groups) for i, c in enumerate(cands) if len(c) > 1),
                      key=lambda gi: (gi[0], tuple(groups[gi[0]][1][gi[1]])))
        if packed:
            for chunk in _subtree_chunks(rows, groups):
                sums = _packed_logprobs(model, out.cache, [(cuts[g], groups[g][1][i]) for g, i in chunk], device)
                for (g, i), value in zip(chunk, sums):
                    scores[g][i] += value
        else:
            for g, (cut, cands) in enumerate(groups):
                mine = [i for gg, i in rows if gg == g]
                for start in range(0, len(mine), SCORE_BATCH):
                    chunk = mine[start:start + SCORE_BATCH]
                    scores[g][chunk] += _batched_logprobs(model, out.cache, [cands[i] for i in chunk], cut,
                                                          max(cuts), device)
    finally:
        model.train(was_training)
    return scores


def _subtree_chunks(rows: List[tuple], groups) -> List[List[tuple]]:
    """(group, candidate) rows, sorted by group and tokens, cut into chunks of about PACKED_TOKENS trie nodes; rows of
    one group sharing a first token stay together (they share trie nodes)."""
    chunks, current, nodes, last = [], [], 0, None
    for g, i in rows:
        c = groups[g][1][i]
        if current and (g, c[0]) != last and nodes + len(c) - 1 > PACKED_TOKENS:
            chunks.append(current)
            current, nodes = [], 0
        current.append((g, i))
        nodes += len(c) - 1  # an upper bound: shared prefixes are one trie node
        last = (g, c[0])
    return chunks + ([current] if current else [])


def _trie(rows: List[tuple]):
    """Trie of the proper prefixes of (cut, tokens) rows (rows with different cuts share no node): per node its
    token, cut, depth (0 = a first token) and parent (-1 at depth 0), and per (row, t >= 1) the node of
    tokens[:t] and the target tokens[t]."""
    index: Dict[tuple, int] = {}
    token, cut, depth, parent, pair_node, pair_target, pair_row = [], [], [], [], [], [], []
    for j, (c, r) in enumerate(rows):
        for t in range(1, len(r)):
            prefix = (c,) + tuple(r[:t])
            if prefix not in index:
                index[prefix] = len(token)
                token.append(r[t - 1])
                cut.append(c)
                depth.append(t - 1)
                parent.append(index[prefix[:-1]] if t > 1 else -1)
            pair_node.append(index[prefix])
            pair_target.append(r[t])
            pair_row.append(j)
    return token, cut, depth, parent, pair_node, pair_target, pair_row


def _packed_logprobs(model, context_cache, rows: List[tuple], device) -> np.ndarray:
    """Sum of log p(y_t | ids[:cut], y_<t) for t >= 1 of each (cut, y) row: the trie of the rows' prefixes in one
    sequence after the cached context, each node attending to ids[:cut], its ancestors and itself."""
    token, cut, depth, parent, pair_node, pair_target, pair_row = _trie(rows)
    n, cached = len(token), context_cache.get_seq_length()
    allowed = torch.zeros((n, cached + n), dtype=torch.bool)
    allowed[:, :cached] = torch.arange(cached)[None, :] < torch.tensor(cut)[:, None]
    depths, parents = torch.tensor(depth), torch.tensor(parent)
    for d in range(int(depths.max()) + 1):  # a node sees what its parent sees, and itself
        level = torch.nonzero(depths == d).squeeze(1)
        if d > 0:
            allowed[level, cached:] = allowed[parents[level], cached:]
        allowed[level, cached + level] = True
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min).to(device)
    positions = (torch.tensor(cut) + torch.tensor(depth)).to(device)[None, :]
    logits = model(input_ids=torch.tensor([token], device=device), position_ids=positions,
                   attention_mask=mask[None, None], cache=copy.deepcopy(context_cache), use_cache=True).logits[0]
    node = torch.tensor(pair_node, device=device)
    logp = (logits[node, torch.tensor(pair_target, device=device)].double()
            - torch.logsumexp(logits.float(), -1).double()[node])
    return torch.zeros(len(rows), dtype=torch.float64, device=device).index_add_(
        0, torch.tensor(pair_row, device=device), logp).cpu().numpy()


def _batched_logprobs(model, context_cache, rows: List[Sequence[int]], cut: int, cached: int, device) -> np.ndarray:
    """Sum of log p(y_t | ids[:cut], y_<t) for t >= 1 of each row, the rows batched over copies of the cache cut to
    the context."""
    width = max(len(r) for r in rows) - 1
    inputs = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for j, r in enumerate(rows):
        inputs[j, :len(r) - 1] = torch.tensor(r[:-1])
        targets[j, :len(r) - 1] = torch.tensor(r[1:])
        mask[j, :len(r) - 1] = True
    cache = copy.deepcopy(context_cache)
    if cut < cached:
        cache.crop(cut - cached)  # a negative count: drop that many positions from the end
    cache.batch_repeat_interleave(len(rows))
    logits = model(input_ids=inputs.to(device), cache=cache, use_cache=True).logits.double()
    logp = logits.gather(2, targets.to(device)[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (logp * mask.to(device)).sum(1).cpu().numpy()


# ---------------------------------------------------------------- pooling: pure functions of log-probabilities

def _matrix(logprobs) -> np.ndarray:
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] == 0 or lp.shape[1] == 0:
        raise ValueError(f"logprobs must be a non-empty (contexts, candidates) matrix; got shape {lp.shape}")
    if np.isnan(lp).any() or np.isposinf(lp).any():
        raise ValueError("logprobs must be log-probabilities (<= 0, no NaN)")
    return lp


def renormalise(logprobs) -> tuple[np.ndarray, np.ndarray]:
    """(log q, covered mass): log of each context's distribution renormalised over the candidates, and the
    probability the model put on the candidate set before renormalising (both per row of ``logprobs``)."""
    lp = _matrix(logprobs)
    total = logsumexp(lp, axis=1)
    if np.isneginf(total).any():
        raise ValueError("a context gives every candidate probability 0; nothing to renormalise")
    return lp - total[:, None], np.exp(total)


def kl_nats(log_p, log_q) -> np.ndarray:
    """KL(p || q) = sum_k p_k (log p_k - log q_k) in nats, per row of two matrices of log-probabilities."""
    log_p, log_q = np.asarray(log_p, dtype=np.float64), np.asarray(log_q, dtype=np.float64)
    if log_p.shape != log_q.shape:
        raise ValueError(f"KL needs matrices of one shape; got {log_p.shape} and {log_q.shape}")
    p = np.exp(log_p)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (log_p - log_q), 0.0)
    return terms.sum(axis=1)


def bootstrap_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) resampling weights: row b holds how often each of n items is drawn in resample b, over n."""
    if n < 1 or n_boot < 1:
        raise ValueError(f"bootstrap_weights needs n >= 1 and n_boot >= 1; got {n} and {n_boot}")
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    return counts / n


def _interval(point: float, boots: np.ndarray, n: int, basic: bool = False) -> dict:
    """{mean, ci95, n_contexts}: the percentile interval of ``boots``; or, with ``basic``, for a statistic biased
    under resampling, the basic (reverse percentile) interval [2 point - q97.5, 2 point - q2.5] and the
    ``bias_corrected`` estimate 2 point - mean(boots) it is centred on."""
    lo, hi = float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))
    if not basic:
        return {"mean": float(point), "ci95": [lo, hi], "n_contexts": int(n)}
    return {"mean": float(point), "bias_corrected": float(2 * point - np.mean(boots)),
            "ci95": [float(2 * point - hi), float(2 * point - lo)], "ci95_method": "basic bootstrap",
            "n_contexts": int(n)}


def exact_summary(logprobs, n_boot: int = 2000, seed: int = 0) -> Dict[str, object]:
    """One model's forced-choice statistics over contexts, each ``{mean, ci95, n_contexts}`` (bootstrap over contexts).

    ``marginal_entropy_bits``: entropy of the context-averaged distribution (``mean`` is its value on all contexts).
    The entropy of a mixture of n contexts is biased low (fewer contexts mix less: O(1/n)), and a resample, which
    repeats contexts, more so; so it comes with ``bias_corrected`` (2 mean - mean of the resamples) and the basic
    bootstrap interval centred on it, which may lie a little above ``mean``. ``conditional_entropy_bits``: mean
    over contexts of each context's entropy; ``covered_mass``: mean mass on the candidate set before renormalising
    (plus its ``min`` over contexts). Percentile intervals for the means.
    """
    log_q, covered = renormalise(logprobs)
    q = np.exp(log_q)
    n = q.shape[0]
    conditional = entropy_bits(q, axis=1)
    w = bootstrap_weights(n, n_boot, seed)
    return {
        "marginal_entropy_bits": _interval(entropy_bits(q.mean(0)), entropy_bits(w @ q, axis=1), n, basic=True),
        "conditional_entropy_bits": _interval(conditional.mean(), w @ conditional, n),
        "covered_mass": {**_interval(covered.mean(), w @ covered, n), "min": float(covered.min())},
        "n_candidates": int(q.shape[1]),
    }


def paired_comparison(logprobs_model, logprobs_base, n_boot: int = 2000, seed: int = 0) -> Dict[str, object]:
    """Model vs base on the same contexts and candidates: KL(model || base) per context (``conditional_kl_nats``,
    mean over contexts) and the differences model - base of marginal and conditional entropy (bits), with
    intervals from one bootstrap over contexts shared by both models (paired)."""
    lm, _ = renormalise(logprobs_model)
    lb, _ = renormalise(logprobs_base)
    if lm.shape != lb.shape:
        raise ValueError(f"paired_comparison needs the same contexts and candidates; got {lm.shape} and {lb.shape}")
    qm, qb = np.exp(lm), np.exp(lb)
    n = qm.shape[0]
    w = bootstrap_weights(n, n_boot, seed)
    kl = np.maximum(kl_nats(lm, lb), 0.0)  # >= 0 in exact arithmetic; float noise below 0 is clipped
    cond = entropy_bits(qm, axis=1) - entropy_bits(qb, axis=1)
    marg_point = entropy_bits(qm.mean(0)) - entropy_bits(qb.mean(0))
    marg_boot = entropy_bits(w @ qm, axis=1) - entropy_bits(w @ qb, axis=1)
    return {"conditional_kl_nats": _interval(kl.mean(), w @ kl, n),
            "marginal_entropy_diff_bits": _interval(marg_point, marg_boot, n, basic=True),
            "conditional_entropy_diff_bits": _interval(cond.mean(), w @ cond, n),
            "direction": "model - base"}


def marginal_top(logprobs, values: Sequence[str], k: int = 10) -> List[tuple]:
    """The ``k`` most probable values of the context-averaged distribution, as (value, probability)."""
    log_q, _ = renormalise(logprobs)
    if len(values) != log_q.shape[1]:
        raise ValueError(f"values: {len(values)} names for {log_q.shape[1]} candidates")
    marginal = np.exp(log_q).mean(0)
    order = np.argsort(-marginal, kind="stable")[:k]
    return [(str(values[i]), float(marginal[i])) for i in order]
