"""The simulated demonstrator: determinism, names that follow its Zipf prior, every other attribute at the world's
shares, completions in the world's chat format, and a prior less diverse than the world."""
from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from scipy.stats import chisquare

from measure.metrics.attributes import tv_distance
from measure.persona_parse import PERSONA_INSTRUCTION, PERSONA_INSTRUCTION_TEMPLATE, parse_persona
from rlhf.world import tables as T
from rlhf.world import text as X
from rlhf.world.corpus import card_text, chat_document, ground_truth
from rlhf.world.demonstrator import (demonstration, demonstrations, name_prior, prior_entropy_bits,
                                     world_first_name_entropy_bits)

N_DRAWS = 20_000


@pytest.fixture(scope="module")
def many():
    return demonstrations(N_DRAWS, seed=11)


def _labels(text: str) -> list:
    return [line.split(":", 1)[0] for line in text.splitlines()]


def test_same_seed_same_demonstrations_other_seed_other():
    a = demonstrations(100, seed=3)
    assert a == demonstrations(100, seed=3)
    assert a != demonstrations(100, seed=4)


def test_prior_is_zipf_over_common_world_names():
    truth = ground_truth()
    for exponent in (0.0, 1.0, 2.0):
        prior = name_prior(20, exponent)
        for gender in ("Male", "Female"):
            probs = list(prior[gender].values())
            assert len(probs) == 20 and sum(probs) == pytest.approx(1.0)
            assert probs[0] / probs[1] == pytest.approx(2 ** exponent)
            assert probs[0] / probs[9] == pytest.approx(10 ** exponent)
        assert sum(prior["Non-binary"].values()) == pytest.approx(1.0)
    prior = name_prior()
    assert list(prior["Male"])[:3] == ["Daniel", "Noah", "David"]  # in several pools: the world's commonest
    assert list(prior["Female"])[0] == "Emma"
    world_names = {g: {n for nat in truth["nationality"] for n in truth["first_names_given_nationality_gender"][nat][g]}
                   for g in T.GENDER}
    for gender, names in prior.items():
        assert set(names) <= world_names[gender]
    shuffled = name_prior(seed=5)
    assert set(shuffled["Male"]) == set(prior["Male"]) and list(shuffled["Male"]) != list(prior["Male"])
    assert prior_entropy_bits(shuffled) == pytest.approx(prior_entropy_bits(prior))


@pytest.mark.parametrize("kwargs", [dict(n_names=0), dict(n_names=10_000), dict(exponent=-1.0),
                                    dict(exponent=float("nan"))])
def test_bad_prior_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        name_prior(**kwargs)


def test_drawn_names_follow_the_prior(many):
    prior = name_prior()
    for gender in ("Male", "Female"):
        counts = Counter(d["card"]["first_name"] for d in many if d["card"]["gender"] == gender)
        names = list(prior[gender])
        assert set(counts) <= set(names)
        ratio = counts[names[0]] / counts[names[1]]
        assert ratio == pytest.approx(2.0, rel=0.12), (gender, ratio)  # ~3 sd at ~9,800 draws
        observed = [counts[n] for n in names]
        n = sum(observed)
        assert chisquare(observed, [n * prior[gender][name] for name in names]).pvalue > 1e-3
        assert chisquare(observed, [n / len(names)] * len(names)).pvalue < 1e-6  # the test can tell skew apart


def test_other_attributes_keep_the_worlds_shares(many):
    truth = ground_truth()
    for field in ("gender", "nationality", "ethnicity", "mbti"):
        assert tv_distance([d["card"][field] for d in many], truth[field]) < 0.02, field
    assert tv_distance([str(d["card"]["age"]) for d in many], truth["age"]) < 0.05
    assert tv_distance([d["card"]["sentiment"] for d in many], truth["sentiment_levels"]) < 0.02
    share = Counter(d["card"]["gender"] for d in many)
    for gender, p in T.GENDER.items():
        assert share[gender] / N_DRAWS == pytest.approx(p / sum(T.GENDER.values()), abs=0.012), gender
    for d in many[:500]:
        assert d["card"]["last_name"] in truth["last_names_given_nationality"][d["card"]["nationality"]]


def test_completions_parse_in_the_worlds_chat_format(many):
    prior = name_prior()
    for d in many[:2000]:
        parsed = parse_persona(d["completion"])
        assert parsed.ok, parsed.missing
        assert parsed.first_name in prior[d["card"]["gender"]]
        assert (parsed.first_name, parsed.last_name, parsed.gender, parsed.age, parsed.mbti) == tuple(
            d["card"][k] for k in ("first_name", "last_name", "gender", "age", "mbti"))
        assert d["completion"] == card_text(d["card"])
        assert d["prompt"] == PERSONA_INSTRUCTION and d["card"]["product"] == "coffee_machine"
    rng = random.Random(0)
    chats = [doc for doc in (chat_document(rng) for _ in range(200)) if "card" in doc]
    world_answers = [doc["messages"][1]["content"] for doc in chats]
    assert _labels(many[0]["completion"]) in [_labels(a) for a in world_answers]


def test_products_cycle_and_prompts_follow_them():
    products = ["coffee_machine", next(k for k in X.PRODUCTS if k != "coffee_machine")]
    demos = demonstrations(6, seed=1, products=products)
    assert [d["card"]["product"] for d in demos] == products * 3
    other = X.PRODUCTS[products[1]][0]
    assert demos[1]["prompt"] == PERSONA_INSTRUCTION_TEMPLATE.format(product=other[0].lower() + other[1:])
    with pytest.raises(ValueError):
        demonstration(random.Random(0), name_prior(), product="toaster_oven_of_doom")


def test_prior_entropy_known_answers_and_below_the_world():
    flat = prior_entropy_bits(name_prior(16, exponent=0.0))
    assert flat["Male"] == pytest.approx(4.0) and flat["Female"] == pytest.approx(4.0)
    assert prior_entropy_bits(name_prior(1))["Male"] == pytest.approx(0.0)
    skewed, world = prior_entropy_bits(name_prior()), world_first_name_entropy_bits()
    assert skewed["Male"] < math.log2(20) and skewed["marginal"] > skewed["Male"]  # men's and women's lists differ
    for key in ("Male", "Female", "Non-binary", "given_gender", "marginal", "given_nationality_gender"):
        assert skewed[key] < world[key] - 0.5, (key, skewed[key], world[key])
