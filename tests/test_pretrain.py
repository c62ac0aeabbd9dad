"""Stage `pretrain` at test size: tokenizer, save/load through the Auto classes, cache, resume, quality metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from measure.persona_parse import PERSONA_CARD_PROMPT, PERSONA_INSTRUCTION, format_card
from measure.prompts import encode_prompt
from rlhf.world import cache
from rlhf.world import pretrain as P
from rlhf.config import PretrainConfig, RlhfConfig, register_configs
from rlhf.world.quality import card_quality
from rlhf.world.pretrain_data import pack_rows
from rlhf.world.corpus import generate_documents
from conftest import REPO, run_app

TEST_SIZE = ("world=test", "pretrain=test", "wandb=disabled")


def compose(*overrides: str) -> RlhfConfig:
    """The app's config as `python -m rlhf <overrides>` would see it."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return OmegaConf.to_object(hydra_compose(config_name="rlhf", overrides=list(overrides)))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A test-size build (world, tokenizer, 6 training steps, a small quality sample) in a fresh cache."""
    root = tmp_path_factory.mktemp("tinyworld")
    cfg = compose(*TEST_SIZE, f"cache_dir={root / 'cache'}")
    results = P.run_stage(cfg, out=root / "run1")
    return cfg, results, root


def test_results_json_and_build_layout(built):
    cfg, results, root = built
    directory = Path(results["build_dir"])
    assert not results["cache_hit"] and directory.parent == root / "cache" / "tinyworld"
    written = json.loads((root / "run1" / "results.json").read_text())
    q = written["quality"]
    for key in ("parse_rate", "tv_distance", "mbti_types_seen", "distinct_ages", "vader_neg_share",
                "vader_pos_share", "checks", "chat_parse_rate"):
        assert key in q
    assert set(q["token_entropy_bits"]) >= {"persona_card", "grace_hopper", "steve"}
    assert all({"top5", "full"} <= set(v) for v in q["token_entropy_bits"].values())
    assert 0 <= q["token_entropy_bits"]["steve"]["top5"] <= 2.33  # log2(5) bounds Eq. 3.2
    for name in ("grace_hopper.txt", "steve.txt", "persona_cards.jsonl"):
        assert (root / "run1" / "samples" / name).exists() and (directory / "samples" / name).exists()
    assert (root / "run1" / "pretrain_loss.png").exists()
    assert (directory / "world" / "ground_truth.json").exists() and not (directory / "checkpoints").exists()
    assert os.path.realpath(cache.current_link(cfg.cache_dir)) == str(directory)
    history = json.loads((directory / "train.json").read_text())["history"]
    assert history[-1]["loss"] < history[0]["loss"]  # training moved the weights the right way


def test_save_load_round_trip_through_auto_classes(built):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from measure.config import ModelConfig
    from measure.loading import load_model

    cfg, results, _ = built
    path = cache.current_link(cfg.cache_dir) / "model"
    assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    ids = torch.tensor([encode_prompt(tok, PERSONA_CARD_PROMPT)])
    assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))
    loaded, _ = load_model(ModelConfig(path=str(path), device="cpu"))
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert model.generation_config.eos_token_id == tok.eos_token_id


def test_tokenizer_round_trip_and_special_tokens(built):
    from transformers import AutoTokenizer

    cfg, _, _ = built
    tok = AutoTokenizer.from_pretrained(cache.current_link(cfg.cache_dir) / "model")
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    text = format_card("José", "García", "Male", 45, "Mexican", "Latino", "ISTP", "Très bien! 10/10 ☕")
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.eos_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                                   tokenize=False)
    assert chat == "<s>[INST] hi [/INST] yo</s>"


def test_paper_prompts_are_prefixes_of_training_sequences(built):
    """The persona prompts tokenize exactly as the start of the documents the model was trained on."""
    from transformers import AutoTokenizer

    cfg, _, _ = built
    tok = AutoTokenizer.from_pretrained(cache.current_link(cfg.cache_dir) / "model")
    docs = list(generate_documents(seed=0, n_docs=300, mix={"persona": 0.5, "chat": 0.5}))
    card = next(d for d in docs if d["kind"] == "persona" and d["text"].startswith(PERSONA_CARD_PROMPT))
    chat = next(d for d in docs if d["kind"] == "chat" and d["messages"][0]["content"] == PERSONA_INSTRUCTION)
    for doc, prompt in ((card, encode_prompt(tok, PERSONA_CARD_PROMPT)),
                        (chat, encode_prompt(tok, PERSONA_INSTRUCTION, chat=True))):
        trained = P.encode_documents([doc], tok)[0]
        assert trained[:len(prompt)] == prompt and trained[-1] == tok.eos_token_id


def test_cache_hit_then_config_change_rebuilds(built, tmp_path):
    cfg, first, _ = built
    directory = Path(first["build_dir"])
    stamp = (directory / "train.json").stat().st_mtime_ns
    again = P.run_stage(cfg, out=tmp_path / "run2")
    assert again["cache_hit"] and again["build_dir"] == first["build_dir"]
    assert (directory / "train.json").stat().st_mtime_ns == stamp  # nothing was retrained
    assert json.loads((tmp_path / "run2" / "results.json").read_text())["quality"] == first["quality"]
    changed = compose(*TEST_SIZE, f"cache_dir={cfg.cache_dir}", "pretrain.steps=4")
    rebuilt = P.run_stage(changed, out=tmp_path / "run3")
    assert not rebuilt["cache_hit"] and rebuilt["build_dir"] != first["build_dir"]
    assert rebuilt["train"]["steps"] == 4
    assert os.path.realpath(cache.current_link(cfg.cache_dir)) == rebuilt["build_dir"]


@pytest.mark.slow  # two start-ups of the whole app (every stage's imports): ~70 s on a busy 2-core machine
def test_cli_reuses_the_cache_and_rejects_bad_values(built, tmp_path):
    cfg, first, _ = built
    proc = run_app("rlhf", "stage=pretrain", *TEST_SIZE, f"cache_dir={cfg.cache_dir}",
                   f"hydra.run.dir={tmp_path / 'cli'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "cli" / "results.json").read_text())["cache_hit"]
    bad = run_app("rlhf", "stage=pretrain", *TEST_SIZE, "pretrain.lr=-1", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 2 and "pretrain.lr" in bad.stderr + bad.stdout


def test_two_builds_into_one_empty_cache_both_succeed_and_share_one_model(tmp_path):
    """Started together, one build trains while the other waits on the build lock, then reuses its model."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", PYTHONUNBUFFERED="1")
    commands = [[sys.executable, "-m", "rlhf", "stage=pretrain", *TEST_SIZE, f"cache_dir={tmp_path / 'cache'}",
                 f"hydra.run.dir={tmp_path / f'run{i}'}"] for i in range(2)]
    procs = [subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
    first, second = (json.loads((tmp_path / f"run{i}" / "results.json").read_text()) for i in range(2))
    assert first["build_dir"] == second["build_dir"]
    assert sorted([first["cache_hit"], second["cache_hit"]]) == [False, True]  # trained once, reused once
    assert first["train"] == second["train"] and first["quality"] == second["quality"]


def test_killed_training_resumes_to_the_same_weights(built, tmp_path, monkeypatch):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    cfg, _, _ = built
    tok = AutoTokenizer.from_pretrained(cache.current_link(cfg.cache_dir) / "model")
    docs = P.encode_documents(list(generate_documents(seed=0, n_docs=80, mix={"persona": 1.0})), tok, 128)
    small = PretrainConfig(vocab_size=400, hidden_size=32, num_layers=1, num_heads=2, block_size=128, batch_size=4,
                           steps=4, seed=0, warmup_steps=1, checkpoint_every=2, eval_every=100, log_every=1,
                           processes=1)
    P.train_model(tmp_path / "straight", small, tok, docs, docs[:4])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after training, before saving")

    (tmp_path / "resumed").mkdir()
    monkeypatch.setattr(P, "_save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        P.train_model(tmp_path / "resumed", small, tok, docs, docs[:4])
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    monkeypatch.undo()
    record = P.train_model(tmp_path / "resumed", small, tok, docs, docs[:4])
    assert [h["step"] for h in record["history"]] == [1, 2, 3, 4]
    a = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow  # spawns a process that imports torch + transformers: ~30 s on a busy 2-core machine
def test_two_processes_train_the_same_weights_as_one(built, tmp_path):
    """Data parallel (rows split over 2 gloo processes, gradients summed) equals one process on the batch."""
    from dataclasses import replace

    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    cfg, _, _ = built
    tok = AutoTokenizer.from_pretrained(cache.current_link(cfg.cache_dir) / "model")
    docs = P.encode_documents(list(generate_documents(seed=1, n_docs=60, mix={"persona": 1.0})), tok, 128)
    small = PretrainConfig(vocab_size=400, hidden_size=32, num_layers=1, num_heads=2, block_size=128, batch_size=4,
                           steps=3, seed=0, warmup_steps=1, checkpoint_every=100, eval_every=100, log_every=1,
                           processes=1)
    one = P.train_model(tmp_path / "one", small, tok, docs, docs[:4])
    two = P.train_model(tmp_path / "two", replace(small, processes=2), tok, docs, docs[:4])
    assert two["processes"] == 2 and two["tokens"] == one["tokens"]
    assert [h["loss"] for h in two["history"]] == pytest.approx([h["loss"] for h in one["history"]], rel=1e-5)
    a = load_file(tmp_path / "one" / "model" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_lr_schedule():
    cfg = PretrainConfig(lr=1e-3, warmup_steps=10, steps=100, min_lr_ratio=0.1)
    lrs = [P.lr_at(s, cfg) for s in range(100)]
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] >= 1e-4


def test_packing_covers_every_document_once_and_is_deterministic():
    lengths = torch.randint(40, 160, (500,), generator=torch.Generator().manual_seed(0)).tolist()  # like documents
    rows = pack_rows(lengths, range(len(lengths)), block_size=256)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 256 for row in rows)
    assert sum(lengths) / (256 * len(rows)) > 0.9  # the look-ahead leaves little padding
    lengths = [5, 60, 17, 33, 100, 2, 64, 64, 9, 41] * 5
    schedule = P.BatchSchedule(lengths, block_size=100, rows_per_batch=2, seed=3)
    epoch = [i for s in range(schedule.per_epoch) for row in schedule.batch(s) for i in row]
    assert len(epoch) == len(set(epoch))
    again = P.BatchSchedule(lengths, block_size=100, rows_per_batch=2, seed=3)
    assert again.batch(schedule.per_epoch + 1) == schedule.batch(schedule.per_epoch + 1)  # resumable mid-epoch 2
    with pytest.raises(ValueError):
        pack_rows([101], [0], block_size=100)


def test_packed_documents_do_not_see_each_other():
    """Position ids restarting per document give block-diagonal attention: a packed document's logits equal
    its logits alone, and the step from one document's EOS to the next's BOS is not trained."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    first, second = [1, 5, 6, 7, 2], [1, 8, 9, 10, 11, 2]
    batch = P.collate([[first, second]], pad_id=0, block_size=16)
    assert batch["n_tokens"] == 11 and batch["labels"][0, 5] == -100 and batch["labels"][0, 11:].eq(-100).all()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone = model(input_ids=torch.tensor([second])).logits[0]
    assert torch.allclose(packed[5:11], alone, atol=1e-5)
    assert torch.isfinite(P.forward_loss(model, batch))


def test_card_quality_on_hand_made_cards():
    truth = {"gender": {"Male": 0.5, "Female": 0.5}, "nationality": {"American": 1.0},
             "ethnicity": {"White": 1.0}, "mbti": {"INTJ": 0.5, "ENFP": 0.5}, "age": {"30": 0.5, "40": 0.5},
             "review_vader": {"coffee_machine": {"vader_neg_share": 0.5, "vader_pos_share": 0.5}}}
    card = dict(first_name="Ann", last_name="Lee", nationality="American", ethnicity="White")
    texts = [
        format_card(**card, gender="Male", age=30, mbti="INTJ", review="I love it, it is wonderful and amazing!"),
        format_card(**card, gender="Female", age=30, mbti="INTJ", review="Great machine, I am so happy!"),
        format_card(**card, gender="Male", age=40, mbti="ENFP", review="Terrible, awful, I hate it."),
        format_card(**card, gender="Female", age=41, mbti="ISTP", review="It is a machine."),
        format_card(**card, gender="Female", age=50, mbti="QQQQ", review="Fine."),  # invalid type: a failure
        "Sure! I can't help with that.",  # unparseable: a failure
    ]
    q = card_quality(texts, truth)
    assert q["n_samples"] == 6 and q["parse_rate"] == pytest.approx(4 / 6)
    assert q["tv_distance"]["gender"] == pytest.approx(0.1)  # 2 M / 3 F among the 5 readable genders
    assert q["tv_distance"]["nationality"] == 0.0 and q["tv_distance"]["ethnicity"] == 0.0
    assert q["tv_distance"]["mbti"] == pytest.approx(0.25)  # INTJ .5, ENFP .25, ISTP .25 vs .5/.5
    assert q["mbti_types_seen"] == 3 and q["distinct_ages"] == 4
    assert q["missing_share"]["mbti"] == pytest.approx(2 / 6) and q["missing_share"]["review"] == pytest.approx(1 / 6)
    assert q["vader_neg_share"] == pytest.approx(1 / 5) and q["vader_pos_share"] == pytest.approx(2 / 5)
    assert q["checks"]["tv_distance.nationality"] and not q["checks"]["parse_rate"]
    assert not q["checks"]["mbti_types_seen"] and not q["passed"]
    assert card_quality(["garbage"], truth)["tv_distance"]["gender"] is None  # nothing readable, no crash
