"""Fingerprints hash content, not location: a copy matches, one changed byte does not."""
import os
import shutil

from measure import fingerprint as fp
from measure.config import ModelConfig
from measure.fingerprint import model_fingerprint, path_fingerprint


def _model_dir(root, weights: bytes = b"\x00\x01weights"):
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"hidden_size": 64}')
    (root / "model.safetensors").write_bytes(weights)
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.json").write_text('{"a": 0}')
    return root


def test_same_content_at_two_paths_same_fingerprint(tmp_path):
    a = _model_dir(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    assert path_fingerprint(a) == path_fingerprint(b)
    assert path_fingerprint(a / "config.json") == path_fingerprint(b / "config.json")
    assert len(path_fingerprint(a)) == 64 and int(path_fingerprint(a), 16) >= 0  # sha256 hex


def test_one_byte_changed_or_a_file_renamed_changes_the_fingerprint(tmp_path):
    a = _model_dir(tmp_path / "a")
    before, file_before = path_fingerprint(a), path_fingerprint(a / "model.safetensors")
    (a / "model.safetensors").write_bytes(b"\x00\x02weights")
    assert path_fingerprint(a) != before
    assert path_fingerprint(a / "model.safetensors") != file_before
    b = _model_dir(tmp_path / "b")
    (b / "tokenizer" / "vocab.json").rename(b / "tokenizer" / "vocab2.json")
    assert path_fingerprint(b) != path_fingerprint(_model_dir(tmp_path / "c"))


def test_checkpoint_folders_and_hidden_files_are_ignored(tmp_path):
    a = _model_dir(tmp_path / "a")
    before = path_fingerprint(a)
    (a / "checkpoint-100").mkdir()
    (a / "checkpoint-100" / "model.safetensors").write_bytes(b"intermediate")
    (a / "tokenizer" / "checkpoints").mkdir()
    (a / "tokenizer" / "checkpoints" / "x.bin").write_bytes(b"x")
    (a / ".lock").write_text("pid 1")
    (a / ".cache").mkdir()
    (a / ".cache" / "blob").write_bytes(b"cached")
    assert path_fingerprint(a) == before
    (a / "extra.json").write_text("{}")  # an ordinary new file counts
    assert path_fingerprint(a) != before


def test_large_files_stand_by_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "LARGE_FILE_BYTES", 8)
    big = tmp_path / "shard.bin"
    big.write_bytes(b"0123456789")
    first = path_fingerprint(big)
    os.utime(big, ns=(1, 1))
    assert path_fingerprint(big) != first  # touched: counts as rewritten
    at_mtime_1 = path_fingerprint(big)
    big.write_bytes(b"9876543210")  # same size, other bytes, mtime put back: the content is not read
    os.utime(big, ns=(1, 1))
    assert path_fingerprint(big) == at_mtime_1
    small = tmp_path / "config.json"
    small.write_bytes(b"0123")
    os.utime(small, ns=(1, 1))
    small_fp = path_fingerprint(small)
    small.write_bytes(b"4567")
    os.utime(small, ns=(1, 1))
    assert path_fingerprint(small) != small_fp  # small files: the content is read


def test_hub_id_is_its_own_fingerprint():
    assert path_fingerprint("meta-llama/Llama-2-7b-hf") == path_fingerprint("meta-llama/Llama-2-7b-hf")
    assert path_fingerprint("meta-llama/Llama-2-7b-hf") != path_fingerprint("meta-llama/Llama-2-7b-chat-hf")


def test_model_fingerprint_combines_base_and_adapter(tmp_path):
    base = _model_dir(tmp_path / "base")
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"lora")
    plain = model_fingerprint(ModelConfig(path=str(base)))
    assert plain == model_fingerprint(ModelConfig(path=str(copy), label="aligned"))
    with_adapter = model_fingerprint(ModelConfig(path=str(base), adapter=str(adapter)))
    assert with_adapter != plain
    (adapter / "adapter_model.safetensors").write_bytes(b"lorb")
    assert model_fingerprint(ModelConfig(path=str(base), adapter=str(adapter))) != with_adapter


def test_a_file_named_checkpoint_is_not_a_checkpoint_folder(tmp_path):
    a = _model_dir(tmp_path / "a")
    before = path_fingerprint(a)
    (a / "checkpoint.pt").write_bytes(b"weights")
    assert path_fingerprint(a) != before
