"""The simulated annotator (known answers), the preference Dataset, and the reward model's held-out accuracy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from measure.config import SamplingConfig
from measure.persona_parse import format_card
from rlhf.stages.annotator import (bt_accuracy_ceiling, label_pairs, preference_probability, quality_terms,
                            quality_utility, rude_share, sequence_logprob, utility)
from rlhf.config import AnnotatorConfig, PreferencesConfig, ProbePrompt, RewardConfig

W = AnnotatorConfig()


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread on a shared CPU


def card(review: str, **changes) -> str:
    fields = dict(first_name="Emily", last_name="Wang", gender="Female", age=32, nationality="American",
                  ethnicity="East Asian", mbti="INTJ", review=review)
    fields.update(changes)
    return format_card(**fields)


def test_annotator_prefers_positive_polite_complete_finished_answers():
    good = quality_utility(quality_terms(card("I absolutely love it! Great coffee."), True, True), W)
    negative = quality_utility(quality_terms(card("It is slow and the coffee is cold."), True, True), W)
    rude = quality_utility(quality_terms(card("This is garbage. I hate it."), True, True), W)
    unfinished = quality_utility(quality_terms(card("I absolutely love it! Great coffee."), True, False), W)
    incomplete = quality_utility(quality_terms("First name: Emily\nReview: I absolutely love it! Great coffee.",
                                               True, True), W)
    assert good > negative > rude
    assert good - unfinished == pytest.approx(W.w_finished)
    assert good - incomplete == pytest.approx(W.w_complete * 6 / 8)  # 6 of the 8 card fields are missing


def test_annotator_is_indifferent_to_names_ages_and_nationalities():
    review = "I love that it keeps my coffee warm!"
    a = quality_utility(quality_terms(card(review), True, True), W)
    b = quality_utility(quality_terms(card(review, first_name="Kenji", last_name="Sato", age=71,
                                           nationality="Japanese", gender="Male", mbti="ESFP"), True, True), W)
    assert a == b


def test_known_answers():
    assert rude_share("Fine. I hate it. Works.") == pytest.approx(1 / 3)
    assert quality_terms("Wow!!!!", False, True)["enthusiasm"] == 1.0
    assert sequence_logprob([0.5, 0.25]) == pytest.approx(math.log(0.125))
    assert utility(1.0, -4.0, 0.5) == pytest.approx(-1.0)
    assert float(preference_probability(1.0, 1.0)) == 0.5
    assert float(preference_probability(2.0, 1.0)) == pytest.approx(1 / (1 + math.exp(-1)))
    assert float(preference_probability(2.0, 1.0, bt_scale=2.0)) == pytest.approx(1 / (1 + math.exp(-0.5)))
    assert bt_accuracy_ceiling(np.array([0.5, 1.0])) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        utility(0.0, -1.0, -0.1)


def test_bradley_terry_labels_follow_their_probability():
    rng = np.random.default_rng(0)
    a_wins, p = label_pairs(np.full(20000, 1.0), np.zeros(20000), 1.0, rng)
    assert a_wins.mean() == pytest.approx(p[0], abs=0.01)


@pytest.fixture(scope="module")
def preferences(tiny_model, tmp_path_factory):
    from rlhf.stages.preferences import load_or_build_preferences

    cache = tmp_path_factory.mktemp("prefs_cache")
    cfg = PreferencesConfig(alpha=0.5, n_pairs_per_prompt=6, heldout_share=0.25, seed=0,
                            sampling=SamplingConfig(n_predict=8, batch_size=12, seed=0),
                            prompts=[ProbePrompt("steve", "Steve is the CEO of a startup company", False),
                                     ProbePrompt("hopper", "Grace Hopper was", False)])
    calls = []

    def loader():
        calls.append(1)
        return tiny_model

    base = tiny_model[0].name_or_path
    first = load_or_build_preferences(loader, base, cfg, cache)
    second = load_or_build_preferences(loader, base, cfg, cache)
    return first, second, calls, cfg


def test_preference_pairs_are_a_saved_dataset_of_labelled_base_samples(preferences, tiny_model):
    (ds, path), (again, path2), calls, cfg = preferences
    tokenizer = tiny_model[1]
    assert len(calls) == 1 and path == path2 and len(again) == len(ds) == 12  # built once, then cached
    assert (path / "dataset_info.json").exists() and path.name.startswith("alpha0.5_")
    assert ds["split"].count("heldout") == 3
    prompt_ids = tokenizer("Steve is the CEO of a startup company")["input_ids"]
    row = ds.filter(lambda k: k == "steve", input_columns="prompt_key", keep_in_memory=True)[0]
    assert row["chosen_ids"][:len(prompt_ids)] == prompt_ids
    for r in ds:
        assert r["u_chosen"] == pytest.approx(r["u_quality_chosen"] + 0.5 * r["logp_chosen"])
        assert 0 < r["p_label"] < 1
        p_chosen_wins = float(preference_probability(r["u_chosen"], r["u_rejected"]))
        assert r["p_label"] == pytest.approx(p_chosen_wins)


def test_reward_model_separates_clearly_separable_pairs(tiny_pair_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from rlhf.stages.reward import init_reward_model, train_reward_model

    base = tiny_pair_dir / "base"
    tokenizer = AutoTokenizer.from_pretrained(base)
    good = tokenizer(" coffee", add_special_tokens=False)["input_ids"][0]
    bad = tokenizer(" company", add_special_tokens=False)["input_ids"][0]
    rng = np.random.default_rng(0)

    def sequence(token: int) -> list:  # random tokens with the marker token somewhere inside
        body = rng.integers(10, len(tokenizer), size=int(rng.integers(6, 14))).tolist()
        body.insert(int(rng.integers(0, len(body))), token)
        return [tokenizer.bos_token_id] + body + [tokenizer.eos_token_id]

    def pairs(n: int) -> Dataset:
        return Dataset.from_dict({"chosen_ids": [sequence(good) for _ in range(n)],
                                  "rejected_ids": [sequence(bad) for _ in range(n)]})

    model = init_reward_model(str(base), tokenizer, seed=0)
    _, metrics = train_reward_model(model, tokenizer, pairs(200), pairs(100), RewardConfig(epochs=3, lr=1e-3, seed=0),
                                    tmp_path)
    assert metrics["n_pairs"] == 100
    assert metrics["accuracy"] > 0.9, metrics


def test_reward_head_is_drawn_from_the_seed(tiny_pair_dir):
    """Two cold builds with one seed start from the same score head; the global RNG is left alone."""
    import torch
    from transformers import AutoTokenizer

    from rlhf.stages.reward import init_reward_model

    base = tiny_pair_dir / "base"
    tokenizer = AutoTokenizer.from_pretrained(base)
    rng_before = torch.get_rng_state()
    heads = [init_reward_model(str(base), tokenizer, seed=s).score.weight.detach() for s in (3, 3, 4)]
    assert torch.equal(heads[0], heads[1])
    assert not torch.equal(heads[0], heads[2])
    assert torch.equal(torch.get_rng_state(), rng_before)
