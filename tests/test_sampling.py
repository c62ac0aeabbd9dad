import dataclasses
import json
import logging

import numpy as np
import pytest
import torch

import measure.sampling as engine
from measure.config import SamplingConfig
from measure.prompts import encode_prompt
from measure.sampling import read_generations, read_header, sample

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
    cfg = SamplingConfig(n_samples=4, batch_size=4, n_predict=7, seed=0)
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
    assert len(lines) == 1 + 7  # header + one line per completion
    # simulate a kill in the middle of batch 1: keep the header, batch 0 and half a line of batch 1
    path.write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])
    resumed = sample(model, tok, ids, cfg, progress_file=path, show_progress=False)
    assert [g.token_ids for g in resumed] == [g.token_ids for g in reference]
    assert len(path.read_text().splitlines()) == 1 + 7
    assert [g.token_ids for g in read_generations(path)] == [g.token_ids for g in reference]


def test_bad_arguments_raise(tiny_model):
    model, tok = tiny_model
    with pytest.raises(ValueError, match="prompt_ids"):
        sample(model, tok, [], SamplingConfig(), show_progress=False)
    with pytest.raises(ValueError, match="n: 0"):
        sample(model, tok, [1], SamplingConfig(), n=0, show_progress=False)


# ---------------------------------------------------------------- the resume file's header

FP = "f" * 64  # a model fingerprint (the engine only compares it)


def _count_batches(monkeypatch) -> list:
    """Record every batch the engine actually samples (resumed or reused batches are not sampled)."""
    calls, real = [], engine.sample_batch

    def counting(*args, **kwargs):
        calls.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "sample_batch", counting)
    return calls


def _engine_lines(caplog) -> list:
    return [r.getMessage() for r in caplog.records if r.name == "measure.sampling"]


def test_progress_file_header_records_what_the_samples_depend_on(tiny_model, tmp_path):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=5, batch_size=2, n_predict=4, temperature=0.7, top_k=3, seed=4)
    path = tmp_path / "gens.jsonl"
    sample(model, tok, ids, cfg, prompt=PROMPT, n=3, progress_file=path, show_progress=False, model_fingerprint=FP)
    header = json.loads(path.read_text().splitlines()[0])
    assert header == read_header(path)
    assert header["format"] == engine.HEADER_FORMAT
    assert header["sampling"] == {"temperature": 0.7, "n_predict": 4, "n_samples": 3, "batch_size": 2,
                                  "top_k": 3, "seed": 4}  # n_samples: what this call drew (n=3)
    assert header["prompt"] == PROMPT and header["prompt_ids"] == list(ids)
    assert header["model_fingerprint"] == FP and header["dtype"] == "float32" and header["device"] == "cpu"
    assert len(read_generations(path)) == 3


@pytest.mark.parametrize("change", [{"seed": 12}, {"temperature": 0.5}, {"n_predict": 5}])
def test_resume_with_another_config_resamples_and_says_why(tiny_model, tmp_path, caplog, change):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    old = SamplingConfig(n_samples=4, batch_size=2, n_predict=6, temperature=1.0, seed=11)
    new = dataclasses.replace(old, **change)
    path = tmp_path / "gens.jsonl"
    sample(model, tok, ids, old, progress_file=path, show_progress=False, model_fingerprint=FP)
    fresh = sample(model, tok, ids, new, show_progress=False)
    with caplog.at_level(logging.INFO, logger="measure.sampling"):
        rerun = sample(model, tok, ids, new, progress_file=path, show_progress=False, model_fingerprint=FP)
    assert [g.token_ids for g in rerun] == [g.token_ids for g in fresh]
    assert [g.token_probs for g in rerun] == [g.token_probs for g in fresh]
    (field, value), = change.items()
    discarded = [l for l in _engine_lines(caplog) if "discarding" in l]
    assert len(discarded) == 1 and f"sampling.{field}" in discarded[0] and repr(value) in discarded[0]
    assert read_header(path)["sampling"][field] == value
    assert [g.token_ids for g in read_generations(path)] == [g.token_ids for g in fresh]


def test_resume_with_another_model_or_prompt_resamples(tiny_model, tmp_path, caplog, monkeypatch):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=2, batch_size=2, n_predict=4, seed=1)
    path = tmp_path / "gens.jsonl"
    sample(model, tok, ids, cfg, progress_file=path, show_progress=False, model_fingerprint=FP)
    calls = _count_batches(monkeypatch)
    with caplog.at_level(logging.INFO, logger="measure.sampling"):
        sample(model, tok, ids, cfg, progress_file=path, show_progress=False, model_fingerprint="e" * 64)
        other = encode_prompt(tok, "Grace Hopper was")
        sample(model, tok, other, cfg, prompt="Grace Hopper was", progress_file=path, show_progress=False,
               model_fingerprint="e" * 64)
    assert len(calls) == 2  # both reruns sampled afresh
    lines = [l for l in _engine_lines(caplog) if "discarding" in l]
    assert len(lines) == 2 and "model_fingerprint ffffffffffff, now eeeeeeeeeeee" in lines[0]
    assert "prompt differs" in lines[1] and "prompt_ids differs" in lines[1]


def test_same_config_resumes_without_sampling(tiny_model, tmp_path, caplog, monkeypatch):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=5, batch_size=2, n_predict=6, seed=2)
    path = tmp_path / "gens.jsonl"
    first = sample(model, tok, ids, cfg, prompt=PROMPT, progress_file=path, show_progress=False, model_fingerprint=FP)
    calls = _count_batches(monkeypatch)
    with caplog.at_level(logging.INFO, logger="measure.sampling"):
        again = sample(model, tok, ids, cfg, prompt=PROMPT, progress_file=path, show_progress=False,
                       model_fingerprint=FP)
    assert calls == []
    assert [g.token_ids for g in again] == [g.token_ids for g in first]
    assert not [l for l in _engine_lines(caplog) if "discarding" in l]
    assert any("resuming, 3 of 3 batches" in l for l in _engine_lines(caplog))


def test_a_file_without_header_is_discarded(tiny_model, tmp_path, caplog):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    old = SamplingConfig(n_samples=4, batch_size=2, n_predict=6, seed=0)
    new = dataclasses.replace(old, seed=1)
    path = tmp_path / "gens.jsonl"
    sample(model, tok, ids, old, progress_file=path, show_progress=False)
    path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")  # as an older engine wrote it
    with caplog.at_level(logging.INFO, logger="measure.sampling"):
        rerun = sample(model, tok, ids, new, progress_file=path, show_progress=False)
    assert [g.token_ids for g in rerun] == [g.token_ids for g in sample(model, tok, ids, new, show_progress=False)]
    lines = [l for l in _engine_lines(caplog) if "discarding" in l]
    assert len(lines) == 1 and "no header" in lines[0]


# ---------------------------------------------------------------- sampling.reuse_from

def test_reuse_from_copies_a_matching_file_and_only_that(tiny_model, tmp_path, caplog, monkeypatch):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=5, batch_size=2, n_predict=6, seed=3)
    source = tmp_path / "beta0.1" / "generations_base.jsonl"
    drawn = sample(model, tok, ids, cfg, prompt=PROMPT, progress_file=source, show_progress=False,
                   model_fingerprint=FP)
    reuse = dataclasses.replace(cfg, reuse_from=str(source.parent))
    calls = _count_batches(monkeypatch)
    here = tmp_path / "beta1" / "generations_base.jsonl"
    with caplog.at_level(logging.INFO, logger="measure.sampling"):
        got = sample(model, tok, ids, reuse, prompt=PROMPT, progress_file=here, show_progress=False,
                     model_fingerprint=FP)
    assert calls == []
    assert [g.token_ids for g in got] == [g.token_ids for g in drawn]
    assert read_header(here) == read_header(source) and len(read_generations(here)) == 5
    assert [l for l in _engine_lines(caplog) if "reusing" in l and "3 of 3 batches" in l]
    # another model (the aligned policy of another beta) or another seed: not reused, sampled here
    for fingerprint, seed in (("e" * 64, 3), (FP, 4)):
        caplog.clear()
        other = tmp_path / f"other_{seed}_{fingerprint[0]}" / "generations_base.jsonl"
        with caplog.at_level(logging.INFO, logger="measure.sampling"):
            got = sample(model, tok, ids, dataclasses.replace(reuse, seed=seed), prompt=PROMPT, progress_file=other,
                         show_progress=False, model_fingerprint=fingerprint)
        fresh = sample(model, tok, ids, dataclasses.replace(cfg, seed=seed), show_progress=False)
        assert [g.token_ids for g in got] == [g.token_ids for g in fresh]
        assert [l for l in _engine_lines(caplog) if "not reusing" in l]
    assert len(calls) == 2 * (3 + 3)  # per config: 3 batches sampled here + 3 for the fresh reference


def test_reuse_from_a_run_that_was_killed_completes_it_exactly(tiny_model, tmp_path, monkeypatch):
    model, tok = tiny_model
    ids = encode_prompt(tok, PROMPT)
    cfg = SamplingConfig(n_samples=7, batch_size=3, n_predict=6, seed=5)
    reference = sample(model, tok, ids, cfg, show_progress=False)
    source = tmp_path / "a" / "g.jsonl"
    sample(model, tok, ids, cfg, progress_file=source, show_progress=False, model_fingerprint=FP)
    lines = source.read_text().splitlines()
    source.write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])  # killed in batch 1
    calls = _count_batches(monkeypatch)
    got = sample(model, tok, ids, dataclasses.replace(cfg, reuse_from=str(source.parent)),
                 progress_file=tmp_path / "b" / "g.jsonl", show_progress=False, model_fingerprint=FP)
    assert calls == [3, 1]  # batches 1 and 2 drawn here, batch 0 reused
    assert [g.token_ids for g in got] == [g.token_ids for g in reference]
