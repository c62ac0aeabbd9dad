import numpy as np
import pytest
import torch

from measure.config import SamplingConfig
from measure.prompts import encode_prompt
from measure.sampling import sample

PROMPT = "Steve is the CEO of a startup company"


def test_recorded_probabilities_match_one_plain_forward_pass(tiny_model):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=6, batch_size=3, n_predict=12, temperature=1.0, seed=3)
    gens = sample(model, tok, ids, cfg, prompt=PROMPT, show_progress=False)
    assert len(gens) == 6
    for g in gens:
        full = torch.tensor([ids + g.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(full).logits[0].float(), dim=-1)
        steps = logp[len(ids) - 1: len(ids) - 1 + len(g.token_ids)]
        probs = steps.exp()
        expected_p = probs.gather(1, torch.tensor(g.token_ids)[:, None]).squeeze(1)
        assert np.allclose(g.token_probs, expected_p.numpy(), atol=1e-5)
        top = probs.topk(5, dim=-1).values.numpy()
        assert np.allclose(g.topk_probs, top, atol=1e-5)
        ent = (torch.special.entr(probs).sum(-1) / np.log(2)).numpy()
        assert np.allclose(g.entropy_bits, ent, atol=1e-4)


def test_temperature_probabilities_are_after_temperature(tiny_model):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=2, batch_size=2, n_predict=4, temperature=0.5, seed=0)
    g = sample(model, tok, ids, cfg, show_progress=False)[0]
    with torch.no_grad():
        logits = model(torch.tensor([ids + g.token_ids])).logits[0, len(ids) - 1].float()
    p = torch.softmax(logits / 0.5, -1)[g.token_ids[0]].item()
    assert g.token_probs[0] == pytest.approx(p, abs=1e-5)


def test_same_seed_same_samples_other_seed_differs(tiny_model):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=5, batch_size=2, n_predict=10, seed=7)
    a = sample(model, tok, ids, cfg, show_progress=False)
    b = sample(model, tok, ids, cfg, show_progress=False)
    c = sample(model, tok, ids, SamplingConfig(n_samples=5, batch_size=2, n_predict=10, seed=8), show_progress=False)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert [g.token_ids for g in a] != [g.token_ids for g in c]


def test_stops_at_eos_and_at_n_predict(tiny_model):
    model, tok = tiny_model
    eos = tok.eos_token_id
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=4, batch_size=4, n_predict=7)
    for g in sample(model, tok, ids, cfg, show_progress=False):
        assert 1 <= len(g.token_ids) <= 7
        assert g.stopped_at_eos == (g.token_ids[-1] == eos)
        assert eos not in g.token_ids[:-1]

    def favour_eos(module, inputs, output):  # EOS becomes near-certain at every step
        output[..., eos] += 50.0
        return output

    handle = model.lm_head.register_forward_hook(favour_eos)
    try:
        forced = sample(model, tok, ids, cfg, show_progress=False)
    finally:
        handle.remove()
    assert all(g.stopped_at_eos and g.token_ids == [eos] for g in forced)
    assert all(g.text == "" for g in forced)


def test_resume_from_progress_file_loses_and_duplicates_nothing(tiny_model, tmp_path):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=7, batch_size=3, n_predict=6, seed=11)
    reference = sample(model, tok, ids, cfg, show_progress=False)
    path = tmp_path / "gens.jsonl"
    sample(model, tok, ids, cfg, progress_file=path, show_progress=False)
    lines = path.read_text().splitlines()
    assert len(lines) == 7
    # simulate a kill in the middle of batch 1: keep batch 0 and half a line of batch 1
    path.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])
    resumed = sample(model, tok, ids, cfg, progress_file=path, show_progress=False)
    assert [g.token_ids for g in resumed] == [g.token_ids for g in reference]
    assert len(path.read_text().splitlines()) == 7


def test_bad_arguments_raise(tiny_model):
    model, tok = tiny_model
    with pytest.raises(ValueError, match="prompt_ids"):
        sample(model, tok, [], SamplingConfig(), show_progress=False)
    with pytest.raises(ValueError, match="n: 0"):
        sample(model, tok, [1], SamplingConfig(), n=0, show_progress=False)
