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


CARD = ("Gender: Female\nAge: 32\nNationality: American\nEthnicity: White\nFirst name: Emily\nLast name: Wang\n"
        "Personality type: INTJ\nReview: I love it.")
TRUTH = {"gender": {"Male": 0.5, "Female": 0.5}, "mbti": {"INTJ": 0.5, "ENFP": 0.5},
         "nationality": {"American": 0.5, "German": 0.5}}


def test_callback_logs_exact_attributes_on_the_base_cards_and_kl_zero_for_the_base(tiny_model, tmp_path):
    """The policy here is the base itself (a plain model has no adapter to switch off): conditional KL 0, and the
    logged entropies equal the pooling functions on the same scores."""
    import json

    from measure.exact_attributes import ExactProbe, candidate_values, card_contexts, exact_blocks, score_contexts

    model, tokenizer = tiny_model
    (tmp_path / "truth.json").write_text(json.dumps(TRUTH))
    cfg = DiversityConfig(every=2, sampling=SamplingConfig(n_samples=3, batch_size=3, n_predict=8, seed=3, top_k=3),
                          sbert=False, ground_truth=str(tmp_path / "truth.json"), exact_contexts=2)
    logged = []
    cb = DiversityCallback(lambda: model, tokenizer, PROMPTS, cfg, log_fn=lambda m, s: logged.append((s, m)))
    # a random model writes no card keys: give the probe cards as if the base policy had written them
    ids = encode_prompt(tokenizer, PROMPTS[0].text, chat=True)
    values = candidate_values(TRUTH)
    cards = card_contexts([" " + CARD, CARD.replace("Female", "Male")], list(values))
    base = score_contexts(model, tokenizer, ids, cards, values, show_progress=False)
    cb._probe, cb._probe_ready = ExactProbe(tokenizer, ids, cards, values, base, truth=TRUTH), True
    cb.on_train_begin(TrainingArguments(output_dir="unused", report_to=[]), TrainerState(max_steps=2), TrainerControl())
    metrics = logged[0][1]
    blocks = exact_blocks(base, 100, 0)
    for attr in values:
        prefix = f"diversity/persona/exact/{attr}"
        assert metrics[f"{prefix}/conditional_kl_nats"] == pytest.approx(0.0, abs=1e-12)
        assert metrics[f"{prefix}/marginal_entropy_bits"] == pytest.approx(blocks[attr]["marginal_entropy_bits"]["mean"])
        assert 0 < metrics[f"{prefix}/covered_mass"] <= 1
    # top-k keys follow k (sampling.top_k = 3 here), never a hard-coded 5
    assert "diversity/top3_entropy_bits" in metrics and not any("top5" in k for k in metrics)
    assert 0 <= metrics["diversity/top3_entropy_bits"] <= math.log2(3) + 1e-9
    assert metrics["diversity/persona/attribute_entropy_chao_shen_bits/gender"] is not None


def test_exact_probe_needs_a_persona_prompt_a_truth_and_contexts(tiny_model, tmp_path):
    import json

    from rlhf.stages.callbacks import exact_probe

    model, tokenizer = tiny_model
    assert exact_probe(model, tokenizer, PROMPTS, CFG, 4) is None  # CFG has no ground truth
    (tmp_path / "truth.json").write_text(json.dumps(TRUTH))
    cfg = DiversityConfig(sampling=SamplingConfig(n_samples=2, batch_size=2, n_predict=6, seed=0), sbert=False,
                          ground_truth=str(tmp_path / "truth.json"))
    assert exact_probe(model, tokenizer, PROMPTS[1:], cfg, 4) is None  # no persona prompt
    assert exact_probe(model, tokenizer, PROMPTS, cfg, 0) is None  # off
    probe = exact_probe(model, tokenizer, PROMPTS, cfg, 2)  # noise without card keys: no context, nothing logged
    assert probe is not None and probe.measure(model) == ({}, {})


def test_kl_by_field_adds_up_to_the_sequence_kl_and_follows_the_card(tiny_model):
    from measure.sampling import Generation
    from rlhf.stages.ppo_stage import kl_by_field, sequence_kl_nats

    _, tokenizer = tiny_model
    texts = [" " + CARD, "Sure!\n" + CARD.replace("INTJ", "ENFP")]
    gens, ratios, rng = [], [], np.random.default_rng(0)
    for t in texts:
        ids = tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        gens.append(Generation(prompt="p", text=tokenizer.decode(ids, skip_special_tokens=True), token_ids=ids,
                               token_texts=[], token_probs=[], topk_ids=[], topk_probs=[], entropy_bits=[],
                               stopped_at_eos=True))
        ratios.append(rng.normal(size=len(ids)))
    by_field = kl_by_field(tokenizer, gens, ratios)
    assert sum(by_field.values()) == pytest.approx(sequence_kl_nats({"persona": ratios}))
    assert list(by_field)[:7] == ["first_name", "last_name", "gender", "age", "nationality", "ethnicity", "mbti"]
    assert by_field["end_of_text"] == pytest.approx(np.mean([r[-1] for r in ratios]))  # EOS adds no text
    assert by_field["preamble"] == pytest.approx(sum(ratios[1][:len(tokenizer("Sure!\n",
                                                                              add_special_tokens=False)["input_ids"])]) / 2)


def test_counted_attributes_of_policy_and_base_are_compared_at_equal_n():
    from measure.sampling import Generation
    from rlhf.stages.ppo_stage import equal_n_attributes

    def gens(cards):
        return {"persona": [Generation("p", c, [], [], [], [], [], [], True) for c in cards]}

    many = [CARD.replace("Emily", name) for name in ("Ann", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal")] * 5
    few = many[:10] + ["garbage"] * 30  # the policy broke the format: 10 cards parse
    policy, base = equal_n_attributes(gens(few), gens(many), seed=0)
    assert policy["persona/n_matched/first_name"] == base["persona/n_matched/first_name"] == 10
    assert policy["persona/equal_n/attribute_entropy_bits/gender"] == 0.0
    # the base's 40 cards (8 names, 3 bits) taken to n = 10 lose what a plug-in entropy loses at n = 10
    assert base["persona/equal_n/attribute_entropy_bits/first_name"] < 3.0 - 0.2
    assert set(policy) == set(base)
    same_policy, same_base = equal_n_attributes(gens(many), gens(many), seed=0)
    assert same_policy == same_base
