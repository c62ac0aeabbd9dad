"""Per-input vs cross-input diversity (measure.metrics.cross_input) and the per-product persona prompts."""
from __future__ import annotations

import math

import numpy as np
import pytest

from measure.config import SamplingConfig
from measure.metrics.cross_input import STATISTICS, cross_input_metrics, per_input_cross_input
from measure.persona_parse import ATTRIBUTES, PERSONA_INSTRUCTION, format_card, parse_persona
from rlhf.config import DiversityConfig
from rlhf.world.text import PRODUCTS

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread on a shared CPU

CARD = dict(first_name="Anna", last_name="Smith", gender="Female", age=34, nationality="American",
            ethnicity="White", mbti="INTJ", review="I love it.")


def test_hand_computed_small_case():
    out = per_input_cross_input({"a": ["x", "x", "y"], "b": ["x", "y", "y", None]})
    h = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)  # 0.918 bits in each input
    assert out["n_per_input"] == 3 and out["n_inputs"] == 2
    assert out["per_input_entropy_bits"] == pytest.approx(h)
    assert out["pooled_entropy_bits"] == pytest.approx(1.0)  # 3 x and 3 y
    assert out["mutual_information_bits"] == pytest.approx(1.0 - h)
    assert out["within_input_match"] == pytest.approx(1 / 3)  # 1 matching pair of 3 in each input
    assert out["cross_input_match"] == pytest.approx((2 * 1 + 1 * 2) / 9)


def test_same_distribution_has_no_excess_information():
    rng = np.random.default_rng(0)
    p = np.array([0.4, 0.3, 0.2, 0.1])
    values = {f"in{k}": list(rng.choice(list("abcd"), size=300, p=p)) for k in range(4)}
    out = per_input_cross_input(values, seed=1)
    assert out["mutual_information_bits"] > 0  # the plug-in estimate is biased upwards ...
    assert out["mutual_information_null_bits"] > 0  # ... and the permutation null says by how much
    assert abs(out["mutual_information_excess_bits"]) < 0.01
    assert out["within_input_match"] == pytest.approx(float(p @ p), abs=0.02)  # 0.30
    assert out["cross_input_match"] == pytest.approx(out["within_input_match"], abs=0.02)


def test_one_name_for_every_input_is_cross_input_collapse():
    cards = {key: [format_card(**CARD)] * 5 for key in ("coffee_machine", "solar_backpack", "robot_vacuum")}
    out = cross_input_metrics(cards)
    assert out["cross_input/per_input_entropy_bits/first_name"] == 0.0
    assert out["cross_input/pooled_entropy_bits/first_name"] == 0.0
    assert out["cross_input/within_input_match/first_name"] == 1.0
    assert out["cross_input/cross_input_match/first_name"] == 1.0
    assert out["cross_input/identical_persona_share"] == 1.0
    assert out["cross_input/within_input_identical_persona_share"] == 1.0
    assert out["cross_input/n_inputs"] == 3.0
    assert set(out) == ({f"cross_input/{s}/{a}" for s in STATISTICS for a in ATTRIBUTES}
                        | {"cross_input/identical_persona_share", "cross_input/within_input_identical_persona_share",
                           "cross_input/n_inputs"})
    # one input's customers are a year older: the names still match across inputs, the whole personas do not
    cards["robot_vacuum"] = [format_card(**(CARD | {"age": 35}))] * 5
    out = cross_input_metrics(cards)
    assert out["cross_input/cross_input_match/first_name"] == 1.0
    assert out["cross_input/identical_persona_share"] == pytest.approx(1 / 3)  # 1 of 3 pairs of inputs agrees
    assert out["cross_input/cross_input_match/age"] == pytest.approx(1 / 3)


def test_disjoint_names_per_input_give_log2_k_bits():
    rng = np.random.default_rng(0)
    k = 4
    values = {f"in{i}": [f"name{i}_{j}" for j in rng.integers(0, 3, size=400)] for i in range(k)}
    out = per_input_cross_input(values, seed=0)
    assert out["mutual_information_bits"] == pytest.approx(math.log2(k))  # disjoint supports: exactly log2 K
    assert out["per_input_entropy_bits"] == pytest.approx(math.log2(3), abs=0.01)
    assert out["mutual_information_null_bits"] < 0.05
    assert out["mutual_information_excess_bits"] == pytest.approx(math.log2(k), abs=0.05)
    assert out["cross_input_match"] == 0.0
    assert out["within_input_match"] == pytest.approx(1 / 3, abs=0.02)


def test_inputs_are_compared_at_the_smallest_count():
    # "big" has 100 different names: at its full n its entropy is log2 100, at the matched n = 2 it is 1 bit
    out = per_input_cross_input({"small": ["a", "b", None, None], "big": [f"n{i}" for i in range(100)]}, draws=5)
    assert out["n_per_input"] == 2
    assert out["per_input_entropy_bits"] == pytest.approx(1.0)
    assert out["pooled_entropy_bits"] == pytest.approx(2.0)  # 4 different values at K * n = 4
    assert out["mutual_information_bits"] == pytest.approx(1.0)


def test_bad_inputs_raise_and_unreadable_attributes_are_nan():
    with pytest.raises(ValueError, match="2 inputs"):
        per_input_cross_input({"a": ["x", "y"]})
    with pytest.raises(ValueError, match="non-missing"):
        per_input_cross_input({"a": ["x", "y"], "b": ["x", None]})
    with pytest.raises(ValueError, match="not persona attributes"):
        cross_input_metrics({"a": ["x"], "b": ["y"]}, attributes=["review"])
    out = cross_input_metrics({"a": ["noise", "noise"], "b": ["more noise", "x"]})
    assert math.isnan(out["cross_input/per_input_entropy_bits/first_name"])
    assert math.isnan(out["cross_input/identical_persona_share"]) and out["cross_input/n_inputs"] == 2.0


def test_product_prompts_one_per_world_product():
    from rlhf.stages.products import product_prompts

    prompts = product_prompts()
    assert [p.key for p in prompts] == [f"persona@{k}" for k in PRODUCTS]
    assert len({p.text for p in prompts}) == len(PRODUCTS) and all(p.chat for p in prompts)
    assert prompts[0].key == "persona@coffee_machine" and prompts[0].text == PERSONA_INSTRUCTION
    for p, (description, *_) in zip(prompts, PRODUCTS.values()):
        assert description[1:] in p.text
    assert [p.key for p in product_prompts(["robot_vacuum"])] == ["persona@robot_vacuum"]
    with pytest.raises(ValueError, match="not world products"):
        product_prompts(["toaster"])


CFG = DiversityConfig(sampling=SamplingConfig(n_samples=3, batch_size=3, n_predict=8, seed=3, top_k=3), sbert=False,
                      ground_truth=None, exact_contexts=0)


def test_product_measurement_on_tiny_model(tiny_model):
    from rlhf.stages.products import product_measurement

    model, tokenizer = tiny_model
    products = ["coffee_machine", "robot_vacuum"]
    out = product_measurement(model, tokenizer, CFG, n_per_product=3, products=products)
    assert out["cross_input/n_inputs"] == 2.0
    assert set(out) >= {f"cross_input/{s}/{a}" for s in STATISTICS for a in ATTRIBUTES}
    assert all(isinstance(v, float) for v in out.values())  # a random model writes no card: NaN, not a sentinel
    with pytest.raises(ValueError, match="n_per_product"):
        product_measurement(model, tokenizer, CFG, n_per_product=1, products=products)


def test_product_measurement_scores_what_was_sampled(tiny_model, monkeypatch):
    """The cards the engine returns reach the metrics under their product keys: all finite for readable cards."""
    import rlhf.stages.products as products_module
    from measure.sampling import Generation

    model, tokenizer = tiny_model
    seen = []
    names = iter(["Anna", "Ben", "Cleo", "Dan", "Eva", "Finn"])

    def fake_draw(policy, tok, prompts, cfg, n=None):
        seen.append({"n": n, "seed": cfg.sampling.seed, "keys": [p.key for p in prompts]})
        return {p.key: [Generation(p.text, format_card(**(CARD | {"first_name": next(names)})), [], [], [], [], [],
                                   [], True) for _ in range(n)] for p in prompts}

    monkeypatch.setattr(products_module, "draw_samples", fake_draw)
    out = products_module.product_measurement(model, tokenizer, CFG, 3, ["coffee_machine", "kitchen_scale"], seed=7)
    # one draw per product, each with its own seed: one seed for all would give near-identical samples across
    # products that differ in a few words (common random numbers) and inflate every cross-input match
    assert seen == [{"n": 3, "seed": 7, "keys": ["persona@coffee_machine"]},
                    {"n": 3, "seed": 7 + 7919, "keys": ["persona@kitchen_scale"]}]
    assert all(math.isfinite(v) for v in out.values())
    assert out["cross_input/cross_input_match/first_name"] == 0.0  # the two products got disjoint names
    assert out["cross_input/mutual_information_bits/first_name"] == pytest.approx(1.0)
    assert out["cross_input/cross_input_match/last_name"] == 1.0
    assert parse_persona(format_card(**CARD)).ok
