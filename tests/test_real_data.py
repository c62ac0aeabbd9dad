"""Real answers (AlpacaEval, Phi-2 SFT vs its DPO twin; ../shared/data/real/README.md beside the checkout) through
`experiment=texts`: the aligned answers are far longer, and what whole-text lexical metrics call a loss of
diversity shrinks once every answer is cut to a common length."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from measure.config import ExperimentConfig, MeasureConfig, WandbConfig

REPO = Path(__file__).resolve().parents[1]
PHI2 = REPO / ".." / "shared" / "data" / "real" / "alpacaeval_phi2_sft_vs_dpo.jsonl"
SLICE = 60  # answers per model: the first ones of the file


@pytest.fixture(scope="module")
def phi2_slice(tmp_path_factory) -> Path:
    if not PHI2.is_file():
        pytest.skip(f"real data not found at {PHI2} (the shared data folder beside the repository)")
    rows = [json.loads(line) for line in PHI2.read_text(encoding="utf-8").splitlines() if line.strip()]
    picked = [r for label in ("phi-2-sft", "phi-2-dpo") for r in [r for r in rows if r["model"] == label][:SLICE]]
    path = tmp_path_factory.mktemp("phi2") / "slice.jsonl"
    path.write_text("\n".join(json.dumps({"model": r["model"], "text": r["text"]}) for r in picked))
    return path


def test_phi2_slice_through_experiment_texts(phi2_slice, tmp_path):
    from measure.experiments import texts as texts_exp

    cfg = MeasureConfig(experiment=ExperimentConfig(name="texts", texts_file=str(phi2_slice), k_max=6,
                                                    n_bootstrap=200, n_permutations=100, equal_n_draws=5),
                        wandb=WandbConfig(mode="disabled"))
    results = texts_exp.run(cfg, tmp_path)
    assert results["labels"] == ["phi-2-sft", "phi-2-dpo"]
    sft, dpo = results["models"]["phi-2-sft"], results["models"]["phi-2-dpo"]
    assert sft["n_texts"] == dpo["n_texts"] == SLICE
    comp = results["comparison"]
    assert comp["mean_length"]["differ"] and dpo["length_words"]["mean"] > 1.3 * sft["length_words"]["mean"]
    assert dpo["sbert_truncated"]["share"] > sft["sbert_truncated"]["share"] > 0  # long answers are cut by SBERT
    matched = comp["length_matched"]
    assert sft["length_matched"]["tokens"] == dpo["length_matched"]["tokens"] == matched["tokens"] > 50
    assert {"equal_n", "permutation_p"} <= set(matched["distinct_2"])
    assert matched["mean_length"]["relative_difference"] < comp["mean_length"]["relative_difference"]
    assert sft["clusters"]["k"] is None  # answers to 60 different prompts: no cluster structure


def test_phi2_length_matched_distinct_2_gap_is_under_half_the_raw_gap():
    """The bar of issue 13 on the whole file (805 answers each), lexical metrics only (no SBERT): at equal n,
    whole answers give SFT a distinct-2 lead; cut to the shorter model's median length it mostly goes."""
    import numpy as np

    from measure.experiments.set_compare import length_matched
    from measure.experiments.set_metrics import SetFeatures
    from measure.experiments.texts import read_texts
    from measure.stats import equal_n_values

    if not PHI2.is_file():
        pytest.skip(f"real data not found at {PHI2} (the shared data folder beside the repository)")
    by_label = read_texts(str(PHI2))
    sft, dpo = by_label["phi-2-sft"], by_label["phi-2-dpo"]
    assert len(sft) == len(dpo) == 805
    exp = ExperimentConfig(name="semantic")
    features = SetFeatures.build(sft + dpo, None, exp.ead_vocab_size, exp.self_bleu_references)

    class Set:  # what length_matched reads of a TextSet
        def __init__(self, index):
            self.index = index

    sets = {"sft": Set(np.arange(805)), "dpo": Set(np.arange(805, 1610))}
    raw = equal_n_values(lambda i: features.values(i, ["distinct_2"]), sets["sft"].index, sets["dpo"].index)
    matched = length_matched(sets, features, exp)
    cut = equal_n_values(lambda i: matched.features.values(i, ["distinct_2"]), matched.index["sft"],
                         matched.index["dpo"])
    raw_gap = raw["a"]["distinct_2"] - raw["b"]["distinct_2"]
    cut_gap = cut["a"]["distinct_2"] - cut["b"]["distinct_2"]
    assert matched.tokens == 200  # SFT's median answer length in tokens
    assert raw_gap > 0.02
    assert abs(cut_gap) < 0.5 * raw_gap, (raw_gap, cut_gap)
