"""`experiment=texts` reads the formats users have: JSONL with common field names, NoveltyBench's one record per
prompt, a JSON list, a `datasets` save_to_disk folder; `experiment.group_by=prompt` measures per input."""
from __future__ import annotations

import json

import pytest

from measure.config import ConfigError, ExperimentConfig, MeasureConfig, check_inputs
from measure.texts_io import read_records

ROWS = [{"prompt": "p1", "model": "base", "generations": ["a b c d", "e f g h", "i j k l"], "temperature": 1.0},
        {"prompt": "p2", "model": "base", "generations": ["m n o p", "q r s t"], "temperature": 1.0},
        {"prompt": "p1", "model": "aligned", "generations": ["a b c d", "a b c d"], "temperature": 0.7},
        {"prompt": "p2", "model": "aligned", "generations": ["m n o p", "m n o q", "m n o p"], "temperature": 0.7}]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_noveltybench_records_give_texts_prompts_and_settings(tmp_path):
    records = read_records(str(_jsonl(tmp_path / "nb.jsonl", ROWS)))
    assert records.texts["base"] == ["a b c d", "e f g h", "i j k l", "m n o p", "q r s t"]
    assert records.prompts["aligned"] == ["p1", "p1", "p2", "p2", "p2"]
    assert records.known_settings() == {"base": {"temperature": 1.0, "seed": None},
                                        "aligned": {"temperature": 0.7, "seed": None}}


def test_common_field_names_json_list_and_datasets_folder_read_alike(tmp_path):
    import datasets

    flat = [{"generator": r["model"], "response": t, "input": r["prompt"]} for r in ROWS for t in r["generations"]]
    expected = read_records(str(_jsonl(tmp_path / "nb.jsonl", ROWS))).texts
    assert read_records(str(_jsonl(tmp_path / "flat.jsonl", flat))).texts == expected
    (tmp_path / "list.json").write_text(json.dumps([{"label": r["generator"], "output": r["response"]} for r in flat]))
    assert read_records(str(tmp_path / "list.json")).texts == expected
    datasets.DatasetDict({"train": datasets.Dataset.from_list(flat[:6]),
                          "test": datasets.Dataset.from_list(flat[6:])}).save_to_disk(str(tmp_path / "ds"))
    from_disk = read_records(str(tmp_path / "ds"))
    assert from_disk.source_format == "datasets"
    assert from_disk.texts == expected and from_disk.prompts["base"] == ["p1", "p1", "p1", "p2", "p2"]
    check_inputs(MeasureConfig(experiment=ExperimentConfig(name="texts", texts_file=str(tmp_path / "ds"))))


def test_unlabelled_records_take_the_file_name_and_bad_records_name_their_line(tmp_path):
    path = _jsonl(tmp_path / "mine.jsonl", [{"text": "x y"}, {"text": "z w"}])
    assert read_records(str(path)).texts == {"mine": ["x y", "z w"]}
    _jsonl(path, [{"model": "a", "text": "x"}, {"model": "a", "answer": "y"}])
    with pytest.raises(ConfigError, match="line 2 needs a text string"):
        read_records(str(path))
    _jsonl(path, [{"model": "a", "text": "x"}, {"generator": None, "text": "y"}])
    with pytest.raises(ConfigError, match='line 2: "generator" is null'):
        read_records(str(path))
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="not a `datasets` save_to_disk folder"):
        read_records(str(tmp_path / "folder"))


def test_group_by_is_checked_and_needs_prompts(tmp_path):
    with pytest.raises(ConfigError, match="experiment.group_by.*pooled | prompt"):
        ExperimentConfig(group_by="input")
    from measure.experiments.per_prompt import measure_per_prompt

    records = read_records(str(_jsonl(tmp_path / "t.jsonl", [{"model": "a", "text": "x y"}, {"model": "a",
                                                                                          "text": "z w"}])))
    with pytest.raises(ConfigError, match="group_by: 'prompt' needs every record to name its prompt"):
        measure_per_prompt(records, ExperimentConfig(n_bootstrap=100))


def test_per_prompt_sets_at_equal_n_and_paired_comparison(tmp_path):
    from measure.experiments.per_prompt import measure_per_prompt

    records = read_records(str(_jsonl(tmp_path / "nb.jsonl", ROWS)))
    out = measure_per_prompt(records, ExperimentConfig(n_bootstrap=100), seed=0)
    assert [row["n"] for row in out["per_prompt"]] == [2, 2]  # p1: aligned has 2, p2: base has 2
    assert out["models"]["base"]["n_prompts"] == 2
    # base's texts share no word within a prompt; aligned repeats itself
    assert out["models"]["base"]["distinct_1"]["mean"] == pytest.approx(1.0)
    assert out["models"]["aligned"]["distinct_1"]["mean"] < 1.0
    assert out["comparison"]["distinct_1"]["paired_diff"]["mean"] > 0
