"""Documents to training batches for the tiny world's pretraining: encode, pack whole documents into rows,
collate with position ids that restart per document (block-diagonal attention), and the held-out loss."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch


def encode_documents(docs: List[dict], tokenizer, max_tokens: Optional[int] = None) -> List[List[int]]:
    """Token ids of each document as the model is trained on it: BOS text EOS, chat through the template."""
    plain = [d["text"] for d in docs if d["kind"] != "chat"]
    chats = [tokenizer.apply_chat_template(d["messages"], tokenize=False) for d in docs if d["kind"] == "chat"]
    plain_ids = iter(tokenizer(plain, add_special_tokens=True)["input_ids"]) if plain else iter(())
    chat_ids = iter(tokenizer(chats, add_special_tokens=False)["input_ids"]) if chats else iter(())
    eos = tokenizer.eos_token_id
    encoded = [next(chat_ids) if d["kind"] == "chat" else next(plain_ids) + [eos] for d in docs]
    return [ids[:max_tokens] for ids in encoded] if max_tokens else encoded


def pack_rows(lengths: Sequence[int], order: Sequence[int], block_size: int, lookahead: int = 64) -> List[List[int]]:
    """Whole documents (indices, in ``order``) packed into rows of at most ``block_size`` tokens.

    A row is filled from a window of the next ``lookahead`` documents, so little is left as padding while the
    kinds of document stay mixed. Documents longer than a row must be cut before (``encode_documents``).
    """
    if any(lengths[i] > block_size for i in order):
        raise ValueError(f"a document is longer than block_size={block_size}; cut documents first")
    upcoming, window, rows = iter(order), [], []
    while True:
        window += [j for _, j in zip(range(lookahead - len(window)), upcoming)]
        if not window:
            return rows
        row, room, k = [], block_size, 0
        while k < len(window):
            if lengths[window[k]] <= room:
                room -= lengths[window[k]]
                row.append(window.pop(k))
            else:
                k += 1
        rows.append(row)


class BatchSchedule:
    """Which rows of packed documents each step trains on. Each epoch is a seeded shuffle of the documents,
    packed into rows (``pack_rows``) and cut into batches of ``rows_per_batch``; a function of the step alone,
    so a resumed run sees exactly the batches it would have seen."""

    def __init__(self, lengths: Sequence[int], block_size: int, rows_per_batch: int, seed: int):
        self.lengths, self.block_size, self.rows_per_batch, self.seed = list(lengths), block_size, rows_per_batch, seed
        self._epoch, self._rows = -1, []
        self.per_epoch = len(self._epoch_rows(0)) // rows_per_batch
        if self.per_epoch == 0:
            raise ValueError(f"corpus fills fewer than batch_size={rows_per_batch} rows of {block_size} tokens")

    def _epoch_rows(self, epoch: int) -> List[List[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return pack_rows(self.lengths, torch.randperm(len(self.lengths), generator=g).tolist(), self.block_size)

    def batch(self, step: int) -> List[List[int]]:
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._rows = epoch, self._epoch_rows(epoch)
        return self._rows[index * self.rows_per_batch:(index + 1) * self.rows_per_batch]


def collate(rows: List[List[List[int]]], pad_id: int, block_size: int) -> dict:
    """Model inputs for rows of packed documents: ids, position ids restarting at 0 in every document, labels.

    Restarting positions makes transformers build a block-diagonal causal mask (no attention across documents,
    when the model is called without attention mask and without cache), so every document is seen as it is
    prompted later: BOS at position 0, nothing before it. Labels skip padding and each document's first token
    (the EOS -> BOS step between documents is not a thing to learn). ``n_tokens`` counts real tokens.
    """
    ids = torch.full((len(rows), block_size), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), block_size), dtype=torch.long)
    labels = torch.full((len(rows), block_size), -100, dtype=torch.long)
    n_tokens = 0
    for r, docs in enumerate(rows):
        at = 0
        for doc in docs:
            ids[r, at:at + len(doc)] = torch.tensor(doc)
            positions[r, at:at + len(doc)] = torch.arange(len(doc))
            labels[r, at + 1:at + len(doc)] = ids[r, at + 1:at + len(doc)]
            at += len(doc)
        positions[r, at:] = torch.arange(block_size - at)  # padding: a segment of its own
        n_tokens += at
    return {"input_ids": ids, "position_ids": positions, "labels": labels, "n_tokens": n_tokens}


def forward_loss(model, batch: dict) -> torch.Tensor:
    """Mean next-token loss of a collated batch (block-diagonal attention: no mask, no cache)."""
    return model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=batch["labels"],
                 use_cache=False).loss


@torch.no_grad()
def heldout_loss_nats(model, docs: List[List[int]], pad_id: int, block_size: int, rows_per_batch: int) -> float:
    """Mean next-token cross-entropy (nats/token) over every predicted token of ``docs``."""
    was_training = model.training
    model.eval()
    rows = [[docs[i] for i in row] for row in pack_rows([len(d) for d in docs], range(len(docs)), block_size)]
    total, count = 0.0, 0
    for k in range(0, len(rows), rows_per_batch):
        batch = collate(rows[k:k + rows_per_batch], pad_id, block_size)
        n = int((batch["labels"][:, 1:] != -100).sum())
        total, count = total + float(forward_loss(model, batch)) * n, count + n
    model.train(was_training)
    return total / count
