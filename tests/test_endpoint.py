"""The endpoint backend without a model server: config checks, and the failure modes of a server that is not there
or never answers, on real loopback sockets (no mock). The client against a real vLLM server: test_endpoint_vllm.py
(slow)."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import run_app
from measure.config import ConfigError, ModelConfig
from measure.endpoint import EndpointModel, _top, api_key
from measure.samplers import model_source
from measure.sampling import batch_sizes, request_seed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_model_config_needs_no_path_and_checks_its_fields():
    spec = ModelConfig(path=None, label="base", base_url="http://127.0.0.1:8000/v1")
    assert model_source(spec) == {"base_url": "http://127.0.0.1:8000/v1", "model_name": None, "backend": "endpoint"}
    with pytest.raises(ConfigError, match=r"model\.base\.path"):
        ModelConfig(path=None, label="base")
    with pytest.raises(ConfigError, match=r"model\.base\.base_url.*http"):
        ModelConfig(path=None, label="base", base_url="127.0.0.1:8000")
    with pytest.raises(ConfigError, match=r"model\.aligned\.adapter.*lora-modules"):
        ModelConfig(path=None, label="aligned", base_url="http://x/v1", adapter="/some/adapter")
    for field, value in (("concurrency", 0), ("timeout_s", 0.0), ("max_retries", -1), ("auth_env", "not a name")):
        with pytest.raises(ConfigError, match=rf"model\.base\.{field}"):
            ModelConfig(path=None, label="base", base_url="http://x/v1", **{field: value})


def test_api_key_comes_from_the_named_variable_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-be-sent-to-a-local-server")
    assert api_key(ModelConfig(path=None, base_url="http://x/v1")) == "EMPTY"
    monkeypatch.setenv("RMC_TEST_KEY", "sk-abc")
    assert api_key(ModelConfig(path=None, base_url="http://x/v1", auth_env="RMC_TEST_KEY")) == "sk-abc"
    monkeypatch.delenv("RMC_TEST_KEY")
    with pytest.raises(ConfigError, match="RMC_TEST_KEY is not set"):
        api_key(ModelConfig(path=None, label="base", base_url="http://x/v1", auth_env="RMC_TEST_KEY"))


def test_request_seeds_and_sizes_follow_the_engine():
    assert batch_sizes(25, 10) == [10, 10, 5]
    assert request_seed(0, 3) == 3 and request_seed(1, 0) == 1_000_003
    assert 0 <= request_seed(10 ** 9, 7) < 2 ** 31


def test_top_k_entries_sorted_and_padded():
    ids, probs = _top([("a", -2.0), ("b", -0.1), ("c", -3.0)], 5)
    assert ids == [] and probs[:3] == pytest.approx([0.904837, 0.135335, 0.049787], rel=1e-5)
    assert probs[3:] == [0.0, 0.0]  # two tokens of the same text collapse in the completions API: p = 0
    ids, _ = _top([("token_id:7", -1.0), ("token_id:3", -0.5)], 2)
    assert ids == [3, 7]


def test_nothing_listening_fails_in_one_line_naming_the_url():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(ConfigError, match=rf"model\.base\.base_url: no OpenAI-compatible server answered at "
                                          rf"{url}"):
        EndpointModel(ModelConfig(path=None, label="base", base_url=url, timeout_s=5))


def test_a_server_that_never_answers_fails_within_the_timeout():
    """A loopback socket that accepts connections and never replies: the preflight gives up after timeout_s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    try:
        start = time.monotonic()
        with pytest.raises(ConfigError, match=rf"{url} within 1\.5 s"):
            EndpointModel(ModelConfig(path=None, label="base", base_url=url, timeout_s=1.5, max_retries=3))
        assert time.monotonic() - start < 1.5 + 3.0  # the preflight does not retry
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_app_with_unreachable_server_exits_2_in_one_line(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    proc = run_app("measure", "model=endpoint", "labels=[base]", f"model.base.base_url={url}", "wandb=disabled",
                   f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    err = proc.stderr + proc.stdout
    assert proc.returncode == 2, err[-2000:]
    assert len([line for line in err.splitlines() if url in line]) == 1, err[-2000:]
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "results.json").exists()

