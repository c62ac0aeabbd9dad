"""The diversity callback logs exactly what the measurement functions give on the same samples."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from measure.config import SamplingConfig
from measure.embeddings import embed
from measure.metrics.attributes import attribute_entropy_bits, missing_share
from measure.metrics.entropy import entropy_bits, top_k_entropy_bits
from measure.metrics.lexical import distinct_n
from measure.metrics.sentiment import vader_compound
from measure.metrics.similarity import pairwise_cosine_stats, tfidf_vectors
from measure.persona_parse import PERSONA_INSTRUCTION, parse_persona
from measure.prompts import encode_prompt
from measure.sampling import sample
from rlhf.stages.callbacks import ATTRIBUTES, DiversityCallback, MetricsLogCallback
from rlhf.config import DiversityConfig, ProbePrompt

PROMPTS = [ProbePrompt("persona", PERSONA_INSTRUCTION, True),
           ProbePrompt("steve", "Steve is the CEO of a startup company", False)]
CFG = DiversityConfig(every=2, sampling=SamplingConfig(n_samples=6, batch_size=3, n_predict=12, seed=3), sbert=True,
                      ground_truth=None)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread on a shared CPU


@pytest.fixture(scope="module")
def measured(tiny_model):
    model, tokenizer = tiny_model
    logged = []
    cb = DiversityCallback(lambda: model, tokenizer, PROMPTS, CFG, log_fn=lambda m, s: logged.append((s, m)))
    state = TrainerState(max_steps=4)
    args = TrainingArguments(output_dir="unused", report_to=[])
    cb.on_train_begin(args, state, TrainerControl())
    return cb, logged, state, args


def test_callback_metrics_equal_the_measurement_functions_on_the_same_samples(measured, tiny_model):
    model, tokenizer = tiny_model
    cb, logged, _, _ = measured
    assert [s for s, _ in logged] == [0]
    metrics = logged[0][1]
    scfg = SamplingConfig(temperature=1.0, n_predict=12, n_samples=6, batch_size=3, top_k=5, seed=3)
    for p in PROMPTS:
        gens = sample(model, tokenizer, encode_prompt(tokenizer, p.text, chat=p.chat), scfg, show_progress=False)
        assert [g.text for g in gens] == [g.text for g in cb.last_samples[p.key]]  # the shared engine, same draw
        texts = [g.text for g in gens]
        full = np.mean([np.mean(g.entropy_bits) for g in gens])
        top5 = np.mean([np.mean(top_k_entropy_bits(np.array(g.topk_probs))) for g in gens])
        judged = [(parse_persona(t).review or "") for t in texts] if p.key == "persona" else texts
        compound = vader_compound(judged)
        expected = {
            "full_entropy_bits": full, "top5_entropy_bits": top5,
            "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "tfidf_cosine": pairwise_cosine_stats(tfidf_vectors(texts))["mean"],
            "sbert_cosine": pairwise_cosine_stats(embed(texts))["mean"],
            "vader_mean": compound.mean(), "vader_std": compound.std(ddof=1),
        }
        for name, value in expected.items():
            assert metrics[f"diversity/{p.key}/{name}"] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    cards = [parse_persona(g.text) for g in cb.last_samples["persona"]]
    for attr in ATTRIBUTES:
        values = [getattr(c, attr) for c in cards if getattr(c, attr) is not None]
        got = metrics[f"diversity/persona/attribute_entropy_bits/{attr}"]
        assert (math.isnan(got) and not values) or got == pytest.approx(attribute_entropy_bits(values))
        assert metrics[f"diversity/persona/missing_share/{attr}"] == missing_share(cards, attr)
    pooled = np.mean([metrics[f"diversity/{k}/top5_entropy_bits"] for k in ("persona", "steve")])
    assert metrics["diversity/top5_entropy_bits"] == pytest.approx(pooled)
    assert 0 <= metrics["diversity/top5_entropy_bits"] <= math.log2(5) + 1e-9


def test_full_entropy_is_the_engine_entropy_of_the_whole_distribution(tiny_model):
    """Known answer: the engine's per-token full entropy equals entropy_bits of the softmax of the logits."""
    model, tokenizer = tiny_model
    ids = encode_prompt(tokenizer, "Grace Hopper was")
    gen = sample(model, tokenizer, ids, SamplingConfig(n_predict=1, n_samples=1, batch_size=1, seed=0),
                 show_progress=False)[0]
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1).numpy()
    assert gen.entropy_bits[0] == pytest.approx(float(entropy_bits(probs)), rel=1e-4)


def test_callback_measures_every_n_steps_and_reports_its_cost(measured):
    cb, logged, state, args = measured
    for step in (1, 2, 3, 4):
        state.global_step = step
        cb.on_step_end(args, state, TrainerControl())
    assert [s for s, _ in logged] == [0, 2, 4]  # every 2 steps and at the last step
    last = logged[-1][1]
    assert last["diversity/seconds"] > 0 and last["diversity/cost_share"] > 0
    assert [r["step"] for r in state.log_history if "diversity/seconds" in r] == [0, 2, 4]


def test_trl_metrics_keep_their_names_in_the_log():
    seen = []
    cb = MetricsLogCallback(lambda m, s: seen.append((s, m)))
    state = TrainerState(global_step=3)
    cb.on_log(None, state, TrainerControl(), logs={"objective/kl": 0.5, "policy/entropy_avg": 2.0, "note": "x"})
    assert seen == [(3, {"objective/kl": 0.5, "policy/entropy_avg": 2.0})]
