"""Exact attribute distributions by teacher forcing: hand computations on a micro model, the fast paths against a
plain loop, the pooling's known answers, and a model against itself (KL 0, equal entropies)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from measure.exact_attributes import (ExactProbe, candidate_token_ids, candidate_values, card_contexts,
                                      contexts_per_attribute, exact_blocks, exact_comparison, flat_metrics,
                                      score_contexts)
from measure.metrics.forced_choice import exact_summary, kl_nats, marginal_top, paired_comparison, renormalise
from measure.scoring import candidate_logprobs, nested_candidate_logprobs
from measure.persona_parse import PERSONA_CARD_PROMPT, field_prefixes, field_spans, format_card
from measure.prompts import encode_prompt

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread on a shared CPU

CARD = format_card("Emily", "Wang", "Female", 32, "American", "East Asian", "INTJ", "I love it. Great coffee!")
TRUTH = {"gender": {"Male": 0.5, "Female": 0.4, "Non-binary": 0.1}, "mbti": {"INTJ": 0.5, "ENFP": 0.5},
         "nationality": {"American": 0.75, "German": 0.25},
         "first_names_given_nationality": {"American": {"Emily": 0.5, "John": 0.5}, "German": {"Lars": 1.0}}}


@pytest.fixture(scope="module")
def uniform_model(tiny_pair_dir):
    """A micro Llama whose logits are 0 whatever the input (final norm weight 0): every next token has
    probability 1/V, so a candidate of m tokens has probability V^-m exactly."""
    from measure.config import ModelConfig
    from measure.loading import load_model

    model, tokenizer = load_model(ModelConfig(path=str(tiny_pair_dir / "base"), device="cpu"))
    with torch.no_grad():
        model.model.norm.weight.zero_()
    return model, tokenizer


def loop_logprobs(model, context, candidates):
    """log p(candidate | context) by running every candidate after the whole context on its own (no cache)."""
    out = []
    for c in candidates:
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([list(context) + list(c)])).logits[0].double(), -1)
        out.append(sum(float(logp[len(context) - 1 + t, c[t]]) for t in range(len(c))))
    return np.array(out)


@pytest.mark.parametrize("packed", [True, False])
def test_forced_choice_equals_the_hand_computation_on_a_uniform_model(uniform_model, packed):
    model, tokenizer = uniform_model
    vocab = model.config.vocab_size
    candidates = [[5, 6], [5, 7], [8, 9, 10]]  # two of 2 tokens, one of 3 (sharing the prefix [5])
    lp = candidate_logprobs(model, [1, 2, 3], candidates, packed=packed)
    assert lp == pytest.approx([-2 * math.log(vocab), -2 * math.log(vocab), -3 * math.log(vocab)], abs=1e-6)
    log_q, covered = renormalise(lp[None, :])
    # by hand: q is proportional to V^-2, V^-2, V^-3, i.e. to V, V, 1
    assert np.exp(log_q[0]) == pytest.approx([vocab / (2 * vocab + 1)] * 2 + [1 / (2 * vocab + 1)], rel=1e-6)
    assert covered[0] == pytest.approx((2 * vocab + 1) / vocab ** 3, rel=1e-6)


@pytest.mark.parametrize("packed", [True, False])
def test_cached_paths_equal_a_plain_loop_on_a_random_model(tiny_model, packed):
    model, _ = tiny_model
    rng = np.random.default_rng(0)
    context = [1] + rng.integers(3, 400, 20).tolist()
    stems = [rng.integers(3, 400, k).tolist() for k in (1, 2, 3)]
    candidates = [stems[i % 3] + rng.integers(3, 400, int(rng.integers(1, 4))).tolist() for i in range(40)]
    candidates += [[7], [7, 8]]  # a one-token candidate and one that extends it
    fast = candidate_logprobs(model, context, candidates, packed=packed)
    assert fast == pytest.approx(loop_logprobs(model, context, candidates), abs=2e-4)
    # several contexts that are prefixes of one sequence, scored in one call
    groups = [(len(context), candidates[:10]), (12, candidates[10:20]), (5, candidates[:3])]
    nested = nested_candidate_logprobs(model, context, groups, packed=packed)
    for (cut, cands), got in zip(groups, nested):
        assert got == pytest.approx(loop_logprobs(model, context[:cut], cands), abs=2e-4)


def test_scoring_rejects_what_it_cannot_score(tiny_model):
    model, _ = tiny_model
    with pytest.raises(ValueError):
        candidate_logprobs(model, [], [[1]])
    with pytest.raises(ValueError):
        candidate_logprobs(model, [1], [[]])
    with pytest.raises(ValueError):
        nested_candidate_logprobs(model, [1, 2], [(3, [[4]])])


def test_pooling_known_answers():
    # context 1 puts 0.2 and 0.2 on the two values, context 2 puts 0.3 and 0.1
    lp = np.log([[0.2, 0.2], [0.3, 0.1]])
    s = exact_summary(lp, n_boot=500, seed=0)
    h2 = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert s["conditional_entropy_bits"]["mean"] == pytest.approx((1.0 + h2) / 2)
    assert s["marginal_entropy_bits"]["mean"] == pytest.approx(-(0.625 * math.log2(0.625) + 0.375 * math.log2(0.375)))
    assert s["covered_mass"]["mean"] == pytest.approx(0.4) and s["covered_mass"]["min"] == pytest.approx(0.4)
    assert s["marginal_entropy_bits"]["n_contexts"] == 2 and s["n_candidates"] == 2
    lo, hi = s["conditional_entropy_bits"]["ci95"]
    assert h2 - 1e-12 <= lo <= hi <= 1.0 + 1e-12
    assert marginal_top(lp, ["a", "b"]) == [("a", pytest.approx(0.625)), ("b", pytest.approx(0.375))]
    kl = kl_nats(np.log([[0.5, 0.5]]), np.log([[0.9, 0.1]]))
    assert kl[0] == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1))
    with pytest.raises(ValueError):
        exact_summary(np.zeros((0, 3)))
    with pytest.raises(ValueError):
        paired_comparison(lp, lp[:1])


def test_intervals_hold_their_estimates_and_the_marginal_is_bias_corrected():
    """The entropy of a mixture of few contexts is biased low: the bias-corrected marginal lies above the plug-in one,
    in its basic bootstrap interval, and nearer the entropy of the mixture of many contexts."""
    rng = np.random.default_rng(2)
    population = np.log(rng.dirichlet(np.full(40, 0.3), size=20000))
    truth = exact_summary(population, n_boot=10, seed=0)["marginal_entropy_bits"]["mean"]
    s = exact_summary(population[:60], n_boot=1000, seed=0)
    m = s["marginal_entropy_bits"]
    assert m["mean"] < m["bias_corrected"] and m["ci95"][0] <= m["bias_corrected"] <= m["ci95"][1]
    assert abs(m["bias_corrected"] - truth) < abs(m["mean"] - truth)
    for key in ("conditional_entropy_bits", "covered_mass"):
        assert s[key]["ci95"][0] <= s[key]["mean"] <= s[key]["ci95"][1], key


def test_a_model_against_itself_gives_kl_zero_and_equal_entropies():
    rng = np.random.default_rng(1)
    lp = np.log(rng.dirichlet(np.ones(30), size=50) * 0.9)
    out = paired_comparison(lp, lp, n_boot=300, seed=0)
    for key in ("conditional_kl_nats", "marginal_entropy_diff_bits", "conditional_entropy_diff_bits"):
        assert out[key]["mean"] == 0.0 and out[key]["ci95"] == [0.0, 0.0]
    other = paired_comparison(np.log(rng.dirichlet(np.ones(30), size=50)), lp, n_boot=300, seed=0)
    assert other["conditional_kl_nats"]["mean"] > 0 and other["conditional_kl_nats"]["ci95"][0] > 0


def test_contexts_are_card_prefixes_up_to_each_value():
    prefixes = field_prefixes(CARD)
    assert prefixes["nationality"] == "Gender: Female\nAge: 32\nNationality:"
    assert prefixes["gender"] == "Gender:" and prefixes["review"].endswith("Review:")
    assert field_prefixes("**Name:** Emily Wang\n- Age - 40")["first_name"] == "**Name:**"
    cards = card_contexts([CARD, "no keys here", "Age: 20\nNationality: German"], ["age", "nationality", "mbti"])
    assert len(cards) == 2 and cards[1] == {"age": "Age:", "nationality": "Age: 20\nNationality:"}
    assert contexts_per_attribute(cards) == {"age": 2, "nationality": 2, "mbti": 1}
    spans = field_spans("Here you go.\n" + CARD)
    assert spans[0] == ("preamble", 0, len("Here you go.\n"))
    assert [s[0] for s in spans[1:]] == ["gender", "age", "nationality", "ethnicity", "first_name", "last_name",
                                          "mbti", "review"]
    assert all(a[2] == b[1] for a, b in zip(spans, spans[1:])) and spans[-1][2] == len("Here you go.\n" + CARD)


def test_candidates_come_from_the_truth_or_from_config(tiny_model):
    _, tokenizer = tiny_model
    values = candidate_values(TRUTH)
    assert values["gender"] == ["Male", "Female", "Non-binary"]  # most probable first
    assert values["first_name"] == ["Emily", "John", "Lars"]  # marginalised over nationality: .375, .375, .25
    assert "last_name" not in values  # no truth for it
    listed = candidate_values(TRUTH, {"gender": ["Woman", "Man"], "age": [30, 40]})
    assert listed["gender"] == ["Woman", "Man"] and listed["age"] == ["30", "40"]
    ids, merged = candidate_token_ids(tokenizer, "Gender:", ["Male", "Female"])
    assert merged == 0
    for value, c in zip(["Male", "Female"], ids):  # the tokens after "Gender:" in "Gender: Male\n"
        full = tokenizer("Gender: " + value + "\n", add_special_tokens=False)["input_ids"]
        assert full[-len(c):] == c and tokenizer.decode(c) == " " + value + "\n"


def test_probe_scores_a_model_against_the_base_on_the_same_contexts(tiny_model, tiny_pair_dir):
    from measure.config import ModelConfig
    from measure.loading import load_model

    model, tokenizer = tiny_model
    ids = encode_prompt(tokenizer, PERSONA_CARD_PROMPT)
    values = candidate_values(TRUTH)
    cards = card_contexts([CARD, CARD.replace("Female", "Male").replace("American", "German")], list(values))
    base = score_contexts(model, tokenizer, ids, cards, values, show_progress=False)
    assert set(base) == {"gender", "nationality", "first_name", "mbti"}
    assert base["first_name"].logprobs.shape == (2, 3)
    probe = ExactProbe(tokenizer, ids, cards, values, base, truth=TRUTH)
    blocks, comparison = probe.measure(model, n_boot=200)
    for a in base:  # the base against itself
        assert comparison[a]["conditional_kl_nats"]["mean"] == pytest.approx(0.0, abs=1e-12)
        assert comparison[a]["marginal_entropy_diff_bits"]["mean"] == pytest.approx(0.0, abs=1e-12)
        assert blocks[a]["marginal_entropy_bits"]["mean"] == pytest.approx(
            exact_blocks(base, 200, 0)[a]["marginal_entropy_bits"]["mean"])
        assert 0 < blocks[a]["covered_mass"]["mean"] <= 1
    assert blocks["gender"]["truth_entropy_bits"] == pytest.approx(
        -sum(p * math.log2(p) for p in TRUTH["gender"].values()))
    other, _ = load_model(ModelConfig(path=str(tiny_pair_dir / "aligned"), device="cpu"))
    _, against = probe.measure(other, n_boot=200)
    assert all(against[a]["conditional_kl_nats"]["mean"] > 0 for a in against)
    flat = flat_metrics(blocks, comparison, prefix="exact")
    assert flat["exact/gender/conditional_kl_nats"] == pytest.approx(0.0, abs=1e-12)
    assert set(flat) >= {f"exact/{a}/{m}" for a in base for m in ("marginal_entropy_bits", "covered_mass")}
    assert exact_comparison(base, base, 100, 0).keys() == base.keys()


def test_experiment_1_scores_both_models_on_the_base_cards_with_the_base_in_each_format(tiny_pair_dir, tmp_path,
                                                                                         monkeypatch):
    """The same weights as 'aligned' (chat format) and 'base' (plain): the aligned model's KL to the base scored in
    the chat format is exactly 0, its entropies are the base's in that format; results carry n_contexts."""
    from measure.config import ExperimentConfig, MeasureConfig, ModelConfig, ModelPairConfig, SamplingConfig
    from measure.experiments import personas

    path = str(tiny_pair_dir / "base")
    pair = ModelPairConfig(base=ModelConfig(path=path, label="base", device="cpu"),
                           aligned=ModelConfig(path=path, label="aligned", chat=True, device="cpu"))
    cfg = MeasureConfig(model=pair, sampling=SamplingConfig(n_samples=4, n_predict=8, batch_size=4),
                        experiment=ExperimentConfig(name="personas", n_bootstrap=200, k_max=3, chunk_size=4,
                                                    n_contexts=2, attribute_values={"gender": ["Male", "Female"],
                                                                                    "mbti": ["INTJ", "ENFP"]}))
    cards = card_contexts([CARD, CARD.replace("INTJ", "ENFP")], ["gender", "mbti"])
    monkeypatch.setattr(personas.ExactRun, "_draw_contexts", lambda self, *args: cards)
    results = personas.run(cfg, tmp_path)
    assert results["attributes_exact"]["n_contexts"] == {"gender": 2, "mbti": 2}
    assert results["attributes_exact"]["candidates_from"]["gender"] == "experiment.attribute_values"
    comp = results["comparison"]["attributes_exact"]
    for attr in ("gender", "mbti"):
        assert comp[attr]["conditional_kl_nats"]["mean"] == pytest.approx(0.0, abs=1e-12)
        assert "chat" in comp[attr]["reference"]
        for label in ("base", "aligned"):
            block = results["models"][label]["attributes_exact"][attr]
            assert block["marginal_entropy_bits"]["n_contexts"] == 2 and block["n_candidates"] == 2
    assert (tmp_path / results["figures"]["fig_exact_attributes"]).exists()
    skipped = personas.ExactRun(cfg.__class__(model=pair, labels=["aligned"]), {"gender": ["Male"]}, ["aligned"])
    assert "base" in skipped.skipped
