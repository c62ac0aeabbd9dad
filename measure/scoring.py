"""Teacher-forced scoring: log p(candidate | context) of many candidate continuations of one context, exactly.

The counterpart of the sampling engine (``measure.sampling``): where the engine draws continuations, this scores
given ones, for the exact attribute distributions of ``measure.exact_attributes`` (pooled by
``measure.metrics.forced_choice``). By the chain rule, log p(y | context) = sum_t log p(y_t | context, y_<t).

``candidate_logprobs(model, context_ids, candidates)`` and, for several contexts that are prefixes of one sequence
(a card cut before each field), ``nested_candidate_logprobs``: the longest context is run once and its KV cache
kept; a candidate's first token is read off the logits at its context's end. The candidates' other tokens then run
over that cache, either as a trie of their proper prefixes packed side by side into one row under a block mask
(each node sees its context and its ancestors, at the position it would have alone; the default where the
attention takes a custom mask), or as right-padded rows batched over copies of the cache (a causal model's logits
at a real token never see the padding after it). A context of L tokens and K candidates of m tokens cost
L + (distinct prefixes) <= L + K(m - 1) token positions instead of K(L + m). Both paths equal scoring every
candidate on its own, up to float rounding (tests/test_forced_choice.py).
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

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
