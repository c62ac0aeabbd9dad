"""Experiments 1 and 2, the attractor test and bring-your-own-texts: end to end on the tiny random pair, and
their pieces on hand-made texts with known answers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_app

from measure.config import (ConfigError, ExperimentConfig, MeasureConfig, ModelConfig, ModelPairConfig, SamplingConfig,
                            check_inputs)
from measure.experiments.attractor import early_late, perturb
from measure.experiments.diversity import compare_set_statistic, measure_sets, pair_order
from measure.experiments.texts import read_texts
from measure.prompts import chat_prompt_text, encode_prompt
from measure.sampling import read_generations, read_header

SMALL = dict(k_min=2, k_max=3, chunk_size=4, n_bootstrap=200, attractor_continuations=2)
GOOD_CARD = ("First name: {first}\nLast name: {last}\nGender: {gender}\nAge: {age}\nNationality: {nat}\n"
             "Ethnicity: {eth}\nPersonality type: {mbti}\nReview: {review}")
REVIEWS = ["I love this machine. It keeps my coffee warm! Highly recommend.",
           "The app crashed twice. Coffee was cold when I got back. Not worth it.",
           "As a busy professional, I need my coffee ready. This machine is a game changer."]


def _cfg(tiny_pair_dir: Path, name: str, **exp) -> MeasureConfig:
    pair = ModelPairConfig(base=ModelConfig(path=str(tiny_pair_dir / "base"), label="base", device="cpu"),
                           aligned=ModelConfig(path=str(tiny_pair_dir / "aligned"), label="aligned", device="cpu"))
    return MeasureConfig(model=pair, experiment=ExperimentConfig(name=name, **{**SMALL, **exp}),
                         sampling=SamplingConfig(n_samples=8, n_predict=12, batch_size=8))


def _cards(n: int, seed: int, diverse: bool) -> list:
    rng = np.random.default_rng(seed)
    firsts, lasts = ["Emily", "Samantha", "Ana", "Kenji", "Olu", "Lars"], ["Jones", "Wang", "Silva", "Sato", "Berg"]
    out = []
    for i in range(n):
        pick = (lambda xs: xs[rng.integers(len(xs))]) if diverse else (lambda xs: xs[0])
        out.append(GOOD_CARD.format(first=pick(firsts), last=pick(lasts), gender=pick(["Male", "Female"]),
                                    age=int(rng.integers(18, 80)) if diverse else 30,
                                    nat=pick(["American", "German", "Mexican", "Chinese"]),
                                    eth=pick(["White", "Asian", "Latino", "Black"]),
                                    mbti=pick(["INTJ", "ENFP", "ISTP", "ESFJ"]), review=pick(REVIEWS)))
    return out


# ---------------------------------------------------------------- pieces with known answers

def test_perturb_follows_the_paper_example():
    completion = "born on November 9, 1906 in New York City. She was a pioneering computer scientist."
    text, rule = perturb("Grace Hopper was", " " + completion)
    assert text == "Grace Hopper was born on November 9, 1906 in New York City. She was not"
    assert rule == "second_sentence"
    assert perturb("Grace Hopper was", "an admiral who was famous")[0] == "Grace Hopper was an admiral who was not"
    assert perturb("Grace Hopper was", "\u00e9\u00e8 noise")[0] == "Grace Hopper was not"


def test_early_late_climb():
    from measure.sampling import Generation

    probs = [0.1] * 4 + [0.5] * 12 + [0.9] * 4
    gen = Generation(prompt="", text="", token_ids=[1] * 20, token_texts=["x"] * 20, token_probs=probs,
                     topk_ids=[], topk_probs=[], entropy_bits=[], stopped_at_eos=False)
    el = early_late([gen])
    assert el["early_prob"][0] == pytest.approx(0.1)
    assert el["late_prob"][0] == pytest.approx(0.9)
    assert el["climb"][0] == pytest.approx(0.8)


def test_chat_template_for_a_llama2_style_tokenizer(tiny_model):
    _, tokenizer = tiny_model
    prompt = "Create a customer persona."
    templated = chat_prompt_text(tokenizer, prompt)
    assert "[INST] Create a customer persona. [/INST]" in templated
    saved = tokenizer.chat_template
    try:
        tokenizer.chat_template = None  # a Llama-2 tokenizer without a template gets the [INST] format
        assert chat_prompt_text(tokenizer, prompt) == f"{tokenizer.bos_token}[INST] {prompt} [/INST]"
        ids = encode_prompt(tokenizer, prompt, chat=True)
        assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    finally:
        tokenizer.chat_template = saved
    assert encode_prompt(tokenizer, prompt, chat=False) != encode_prompt(tokenizer, prompt, chat=True)


def test_compare_set_statistic():
    from measure.metrics.attributes import attribute_entropy_bits

    same = compare_set_statistic(["a", "b"] * 10, ["a", "b"] * 10, attribute_entropy_bits, 200, n_perm=200)
    assert same["diff"] == pytest.approx(0.0) and same["permutation_p"] > 0.5
    apart = compare_set_statistic(list("abcdefgh") * 4, ["a"] * 30 + ["b"] * 2, attribute_entropy_bits, 200,
                                  n_perm=200)
    assert apart["diff"] > 1.5 and apart["permutation_p"] < 0.01
    assert apart["diff_ci95"][0] > 0
    assert apart["n"] == [32, 32]


def test_pair_order():
    assert pair_order(["x", "aligned", "base"])[0] == ("base", "aligned")
    assert pair_order(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_read_texts_errors(tmp_path):
    good = tmp_path / "t.jsonl"
    good.write_text('{"model": "a", "text": "x"}\n\n{"model": "a", "text": "y"}\n{"model": "b", "text": "z"}\n'
                    '{"model": "b", "text": "w", "extra": 1}\n')
    assert read_texts(str(good)) == {"a": ["x", "y"], "b": ["z", "w"]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model": "a", "text": "x"}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2"):
        read_texts(str(bad))
    bad.write_text('{"model": "a", "text": "x"}\n{"model": "a", "text": "y"}\n{"model": "b", "text": "z"}\n')
    with pytest.raises(ConfigError, match="at least|>= 2"):
        read_texts(str(bad))


def test_config_ranges_fail_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="k_min"):
        ExperimentConfig(k_min=5, k_max=3)
    with pytest.raises(ConfigError, match="texts_file"):  # existence: check_inputs, at the entry point
        check_inputs(MeasureConfig(experiment=ExperimentConfig(name="texts",
                                                               texts_file=str(tmp_path / "missing.jsonl"))))
    with pytest.raises(ConfigError, match="ground_truth_file"):
        check_inputs(MeasureConfig(experiment=ExperimentConfig(name="personas",
                                                               ground_truth_file=str(tmp_path / "missing.json"))))
    with pytest.raises(ConfigError, match="source_dir"):
        check_inputs(MeasureConfig(experiment=ExperimentConfig(name="attractor", source_dir=str(tmp_path / "no"))))


def test_identical_texts_one_cluster_cosine_one_and_two_topics_two_clusters():
    exp = ExperimentConfig(name="semantic", k_min=2, k_max=5, chunk_size=4, n_bootstrap=200)
    same = ["Grace Hopper was a computer scientist and a rear admiral."] * 8
    topics = ([f"The coffee machine keeps my espresso hot, review number {i}." for i in range(6)]
              + [f"Grace Hopper wrote the first compiler for computers, fact {i}." for i in range(6)])
    results, sets = measure_sets({"same": same, "topics": topics}, exp)
    m = results["models"]
    assert m["same"]["clusters"]["k"] == 1
    assert m["same"]["tfidf_cosine"]["mean"] == pytest.approx(1.0)
    assert m["same"]["sbert_cosine"]["mean"] == pytest.approx(1.0, abs=1e-5)
    assert m["same"]["vendi_sbert"] == pytest.approx(1.0, abs=1e-3)
    assert m["topics"]["clusters"]["k"] == 2
    labels = sets["topics"].clustering.labels
    assert len(set(labels[:6])) == 1 and len(set(labels[6:])) == 1 and labels[0] != labels[6]
    assert m["topics"]["sbert_cosine"]["mean"] < m["same"]["sbert_cosine"]["mean"]
    comp = results["comparison"]
    assert comp["labels"] == ["same", "topics"]
    assert comp["sbert_cosine"]["mean_diff"] > 0 and comp["sbert_cosine"]["n"] == [2, 3]
    assert {"welch_p", "mannwhitney_p", "mean_diff_ci95"} <= set(comp["distinct_2"])


# ---------------------------------------------------------------- experiments in-process on the tiny pair

def _figures_written(out: Path, results: dict) -> None:
    for name in results["figures"].values():
        assert (out / name).stat().st_size > 1000, name


def test_semantic_run_on_tiny_pair(tiny_pair_dir, tmp_path):
    from measure.experiments import semantic

    results = semantic.run(_cfg(tiny_pair_dir, "semantic", prompt="Grace Hopper was"), tmp_path)
    _figures_written(tmp_path, results)
    assert set(results["figures"]) == {"fig10_tsne_similarity", "fig10_clusters"}
    for label in ("base", "aligned"):
        m = results["models"][label]
        assert m["n_completions"] == 8
        assert 0 <= m["tfidf_cosine"]["mean"] <= 1 and m["tfidf_cosine"]["std"] >= 0
        assert -1 <= m["sbert_cosine"]["mean"] <= 1
        assert 1 <= m["vendi_sbert"] <= 8
        # random weights write noise: k is None ("no cluster structure") unless the silhouette says otherwise
        assert m["clusters"]["k"] is None or 1 <= m["clusters"]["k"] <= 3
        assert 1 <= m["clusters"]["k_fitted"] <= 3 and m["clusters"]["note"]
        assert m["clusters"]["samples"][0]["texts"]
    assert results["comparison"]["tfidf_cosine"]["n"] == [2, 2]  # disjoint chunks of 4 completions
    assert len((tmp_path / "points.jsonl").read_text().splitlines()) == 16


def test_attractor_run_on_tiny_pair(tiny_pair_dir, tmp_path):
    from measure.experiments import attractor

    results = attractor.run(_cfg(tiny_pair_dir, "attractor", prompt="Grace Hopper was", k_max=2), tmp_path)
    _figures_written(tmp_path, results)
    assert (tmp_path / "fig14_attractor.html").read_text().count("<span style=") > 10
    n_prompts = len(results["perturbations"])
    assert n_prompts >= 1 and all(p["perturbed_prompt"].endswith(" not") for p in results["perturbations"])
    for label in ("base", "aligned"):
        m = results["models"][label]
        assert m["n_continuations"] == 2 * n_prompts
        assert 0 <= m["return_share"]["mean"] <= 1
        assert len(m["prob_by_position"]["mean"]) >= 1
    assert "same_cluster_share" in results["models"]["aligned"]
    assert {"climb", "late_prob", "return_share"} <= set(results["comparison"])


def test_reuse_from_takes_the_same_model_s_samples_and_redraws_the_other(tiny_pair_dir, tmp_path, caplog):
    """The demo's case: two runs share the base model (here: a copy of it at another path) and differ in the
    aligned one; `sampling.reuse_from` reuses the base model's samples only."""
    import dataclasses
    import logging
    import shutil

    from measure.experiments.common import sample_each_model

    first = _cfg(tiny_pair_dir, "semantic")
    drawn = sample_each_model(first, tmp_path / "run1", "Grace Hopper was")
    shutil.copytree(tiny_pair_dir / "base", tmp_path / "base_copy")
    second = _cfg(tiny_pair_dir, "semantic")
    second.model.base.path = str(tmp_path / "base_copy")
    second.model.aligned.path = str(tiny_pair_dir / "base")  # another "policy"
    second.sampling = dataclasses.replace(second.sampling, reuse_from=str(tmp_path / "run1"))
    with caplog.at_level(logging.INFO, logger="measure.sampling"):
        got = sample_each_model(second, tmp_path / "run2", "Grace Hopper was")
    lines = [r.getMessage() for r in caplog.records if r.name == "measure.sampling"]
    assert [l for l in lines if l.startswith("sampling base: reusing 1 of 1 batches")]
    assert [l for l in lines if l.startswith("sampling aligned: not reusing") and "model_fingerprint" in l]
    assert [g.token_ids for g in got["base"]] == [g.token_ids for g in drawn["base"]]
    assert read_header(tmp_path / "run2" / "generations_aligned.jsonl")["model_fingerprint"] != \
        read_header(tmp_path / "run1" / "generations_aligned.jsonl")["model_fingerprint"]


def test_attractor_reads_a_semantic_run_and_checks_its_prompt_and_models(tiny_pair_dir, tmp_path):
    from measure.experiments import attractor
    from measure.experiments.common import sample_each_model

    source = tmp_path / "semantic"
    sample_each_model(_cfg(tiny_pair_dir, "semantic"), source, "Grace Hopper was")
    cfg = _cfg(tiny_pair_dir, "attractor", prompt="Grace Hopper was", k_max=2, source_dir=str(source))
    results = attractor.run(cfg, tmp_path / "run")
    assert results["models"]["aligned"]["unperturbed"]["n"] == 8
    assert not list((tmp_path / "run").glob("generations_*.jsonl"))  # read, not sampled
    with pytest.raises(ConfigError, match="experiment.source_dir.*not of experiment.prompt"):
        attractor.run(_cfg(tiny_pair_dir, "attractor", prompt="Steve was", source_dir=str(source)), tmp_path / "x")
    swapped = _cfg(tiny_pair_dir, "attractor", prompt="Grace Hopper was", k_max=2, source_dir=str(source))
    swapped.model.aligned.path = str(tiny_pair_dir / "base")
    with pytest.raises(ConfigError, match="experiment.source_dir.*another model"):
        attractor.run(swapped, tmp_path / "y")


def test_personas_analysis_on_hand_made_cards(tmp_path):
    from measure.experiments.personas import analyse_personas

    broken = ["First name: Zed\nAge: ninety", "completely unparseable noise \x00", ""]
    texts = {"base": _cards(20, 0, diverse=True) + broken, "aligned": _cards(20, 1, diverse=False)}
    truth = {"gender": {"Male": 0.5, "Female": 0.5}, "mbti": {t: 0.25 for t in ("INTJ", "ENFP", "ISTP", "ESFJ")}}
    cfg = MeasureConfig(experiment=ExperimentConfig(name="personas", **{**SMALL, "chunk_size": 10}))
    results = analyse_personas(texts, cfg, tmp_path, truth=truth)
    base, aligned = results["models"]["base"], results["models"]["aligned"]
    assert base["n_outputs"] == 23 and base["n_unparsed"] == 3 and aligned["n_unparsed"] == 0
    assert base["parse_rate"] == pytest.approx(20 / 23)
    assert "Zed" in (tmp_path / "unparsed_base.txt").read_text()
    assert aligned["attributes"]["first_name"]["distinct"] == 1
    assert aligned["attributes"]["first_name"]["entropy_bits"] == pytest.approx(0.0)
    assert base["attributes"]["first_name"]["distinct"] > 3
    assert aligned["attributes"]["gender"]["tv_distance"] == pytest.approx(0.5)
    assert "tv_distance" not in aligned["attributes"]["nationality"]  # no truth for it
    comp = results["comparison"]
    assert comp["first_name_entropy_bits"]["diff"] > 1 and comp["first_name_entropy_bits"]["permutation_p"] < 0.05
    assert comp["age"]["n"] == [20, 20]  # "Age: ninety" is not a valid age
    sentences = results["review_sentences"]
    assert sentences["models"]["aligned"]["clusters"]["k"] <= 3  # three distinct reviews, repeated
    _figures_written(tmp_path, results)
    assert len(results["figures"]) == 9
    assert (tmp_path / "tables_2_3_review_clusters.md").exists()


def test_personas_run_on_tiny_pair_counts_unparsed(tiny_pair_dir, tmp_path):
    from measure.experiments import personas

    cfg = _cfg(tiny_pair_dir, "personas")
    cfg.model.aligned.chat = True  # the aligned model gets the instruction through its chat template
    results = personas.run(cfg, tmp_path)
    _figures_written(tmp_path, results)
    assert results["prompts"]["plain"] and results["prompts"]["chat"]
    assert results["prompt_format"]["base"] == "plain text"
    assert results["prompt_format"]["aligned"].startswith("chat template")
    first = read_generations(tmp_path / "generations_aligned.jsonl")[0]
    assert first.prompt == results["prompts"]["chat"]
    for label in ("base", "aligned"):  # random weights: noise, counted and shown, never a crash
        m = results["models"][label]
        assert m["n_outputs"] == 8 and m["n_unparsed"] + round(m["parse_rate"] * 8) == 8


def test_texts_run(tmp_path):
    from measure.experiments import texts as texts_exp

    path = tmp_path / "gen.jsonl"
    rows = [{"model": "api", "text": f"Grace Hopper was a pioneer of computing, version {i}."} for i in range(8)]
    rows += [{"model": "local", "text": t} for t in REVIEWS * 3]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = MeasureConfig(experiment=ExperimentConfig(name="texts", texts_file=str(path), **SMALL))
    results = texts_exp.run(cfg, tmp_path)
    assert results["labels"] == ["api", "local"]
    for label in ("api", "local"):
        assert {"mean", "std"} <= set(results["models"][label]["tfidf_cosine"])
        assert {"mean", "std"} <= set(results["models"][label]["sbert_cosine"])
    assert results["models"]["local"]["clusters"]["k"] == 3  # three distinct reviews
    _figures_written(tmp_path, results)


# ---------------------------------------------------------------- the app as a user runs it

@pytest.mark.slow
@pytest.mark.parametrize("experiment,extra", [
    ("semantic", []),
    ("attractor", ["experiment.attractor_continuations=3"]),
    ("personas", []),
])
def test_app_end_to_end(experiment, extra, tmp_path):
    out = tmp_path / "run"
    proc = run_app("measure", f"experiment={experiment}", "model=tiny_random", "wandb=disabled",
                   "sampling.n_samples=10", "sampling.batch_size=10", "sampling.n_predict=16", "experiment.k_max=3",
                   "experiment.chunk_size=5", "experiment.n_bootstrap=200", f"cache_dir={tmp_path / 'cache'}",
                   f"hydra.run.dir={out}", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"base", "aligned"} and "comparison" in results
    assert results["meta"]["experiment"] == experiment
    _figures_written(out, results)


@pytest.mark.slow
def test_app_texts_end_to_end(tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text("\n".join(json.dumps({"model": m, "text": f"{m} text {i} " + REVIEWS[i % 3]})
                              for m in ("a", "b") for i in range(10)))
    out = tmp_path / "run"
    proc = run_app("measure", "experiment=texts", f"experiment.texts_file={path}", "wandb=disabled",
                   "experiment.k_max=3", "experiment.chunk_size=5", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["comparison"]["labels"] == ["a", "b"]
    _figures_written(out, results)
