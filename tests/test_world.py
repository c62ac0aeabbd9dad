"""The tiny world generator: determinism, the truth it claims, and the paper's prompts in distribution."""
from __future__ import annotations

import json
import math

import pytest

from measure.metrics.attributes import tv_distance
from measure.persona_parse import PERSONA_CARD_PROMPT, PERSONA_INSTRUCTION, parse_persona
from rlhf.world.corpus import (GRACE_HOPPER_PROMPT, KINDS, STEVE_PROMPT, document_plain_text, generate_documents,
                        ground_truth, write_world)
from rlhf.world.people import PEOPLE

MIX = {"persona": 0.45, "chat": 0.2, "bio": 0.2, "story": 0.15}


@pytest.fixture(scope="module")
def docs():
    return list(generate_documents(seed=7, n_docs=3000, mix=MIX))


@pytest.fixture(scope="module")
def truth():
    return ground_truth()


def test_same_seed_same_corpus_other_seed_other_corpus():
    a = list(generate_documents(seed=1, n_docs=200, mix=MIX))
    assert a == list(generate_documents(seed=1, n_docs=200, mix=MIX))
    assert a != list(generate_documents(seed=2, n_docs=200, mix=MIX))
    assert a != list(generate_documents(seed=1, n_docs=200, mix=MIX, stream=1))  # held-out stream differs


def test_ground_truth_is_broad_and_normalised(truth):
    for key in ("gender", "age", "nationality", "ethnicity", "mbti", "sentiment_levels"):
        assert sum(truth[key].values()) == pytest.approx(1.0)
    assert len(truth["mbti"]) == 16 and len(truth["nationality"]) >= 10
    assert min(map(int, truth["age"])) == 18 and max(map(int, truth["age"])) == 80
    for nat in truth["nationality"]:
        assert sum(truth["last_names_given_nationality"][nat].values()) == pytest.approx(1.0)
        assert len(truth["last_names_given_nationality"][nat]) >= 24  # dozens of names per nationality
        for gender, names in truth["first_names_given_nationality_gender"][nat].items():
            assert len(names) >= 24 and sum(names.values()) == pytest.approx(1.0), (nat, gender)
    assert len(truth["people"]) >= 21 and truth["people"][0] == "Grace Hopper"


def test_cards_parse_and_match_the_truth(docs, truth):
    cards = [d for d in docs if "card" in d]
    texts = [d["text"] if d["kind"] == "persona" else d["messages"][1]["content"] for d in cards]
    parsed = [parse_persona(t) for t in texts]
    assert all(p.ok for p in parsed)
    for field in ("gender", "nationality", "ethnicity", "mbti"):
        assert tv_distance([getattr(p, field) for p in parsed], truth[field]) < 0.05, field
    assert tv_distance([p.age for p in parsed], truth["age"]) < 0.15  # 63 ages, ~1,900 cards
    for p, d in zip(parsed, cards):
        assert p.first_name == d["card"]["first_name"] and p.age == d["card"]["age"]
        assert p.first_name in truth["first_names_given_nationality"][p.nationality]
        assert p.last_name in truth["last_names_given_nationality"][p.nationality]
    levels = [d["card"]["sentiment"] for d in cards]
    assert tv_distance(levels, truth["sentiment_levels"]) < 0.05


def test_paper_prompts_are_in_distribution(docs):
    kinds = {k: [d for d in docs if d["kind"] == k] for k in KINDS}
    assert all(kinds.values())
    assert any(d["text"].startswith(PERSONA_CARD_PROMPT) for d in kinds["persona"])
    assert any(d["messages"][0]["content"] == PERSONA_INSTRUCTION for d in kinds["chat"])
    assert all(d["text"].startswith(STEVE_PROMPT) for d in kinds["story"])
    names = tuple(p["name"] + " was " for p in PEOPLE)
    assert all(d["text"].startswith(names) for d in kinds["bio"])
    hopper = [d["text"] for d in kinds["bio"] if d["text"].startswith(GRACE_HOPPER_PROMPT)]
    assert len(hopper) > 50 and len(set(hopper)) == len(hopper)  # recombined, never repeated
    assert len({d["text"][:80] for d in kinds["story"]}) > 100  # many branches
    chat = document_plain_text(kinds["chat"][0])
    assert chat.startswith("[INST] ") and " [/INST] " in chat


def test_write_world_files_and_review_polarity(tmp_path):
    out = write_world(seed=0, n_docs=600, n_heldout_docs=20, mix=MIX, out_dir=tmp_path / "world")
    truth = json.loads((out / "ground_truth.json").read_text())
    assert sum(1 for _ in open(out / "corpus.jsonl")) == 600 and sum(1 for _ in open(out / "heldout.jsonl")) == 20
    vader = truth["review_vader"]["coffee_machine"]
    assert vader["vader_neg_share"] >= 0.15 and vader["vader_pos_share"] >= 0.15  # both ends are in the truth
    assert truth["corpus"]["n_docs"] == 600 and math.isclose(sum(truth["nationality"].values()), 1.0)
    with pytest.raises(ValueError):
        list(generate_documents(seed=0, n_docs=1, mix={"poems": 1.0}))
