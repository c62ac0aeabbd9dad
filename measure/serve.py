"""A local vLLM server for one model directory, started and stopped from Python (the slow tests, bench/): the same
command as `make serve MODEL=<dir> PORT=<port>`, which builds the server's own venv (.venv-vllm) when it is missing.

    with vllm_server(model_dir, port) as base_url:   # http://127.0.0.1:<port>/v1 once /v1/models answers
        ...

The server binds 127.0.0.1 only. ``threads_bind`` is ``VLLM_CPU_OMP_THREADS_BIND`` (``"0"``: one thread on core 0,
for a shared machine; ``"auto"``: vLLM's choice). Its log goes to ``log_path``; a server that exits or does not
answer within ``start_timeout_s`` is one ConfigError with the log's last lines.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

from measure.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:  # loopback only: our own server
            return reply.status == 200
    except OSError:
        return False


def _tail(path: Path, n: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


@contextlib.contextmanager
def vllm_server(model_dir: str | os.PathLike, port: Optional[int] = None, log_path: Optional[Path] = None,
                threads_bind: str = "0", start_timeout_s: float = 900.0) -> Iterator[str]:
    """``make serve`` in the background until the block ends; yields the server's base URL."""
    port = port or free_port()
    log_path = Path(log_path or REPO / "outputs" / f"vllm-{port}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, VLLM_CPU_OMP_THREADS_BIND=threads_bind, OMP_NUM_THREADS="1")
    url = f"http://127.0.0.1:{port}/v1"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["make", "--no-print-directory", "serve", f"MODEL={model_dir}", f"PORT={port}"],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not _answers(url):
            if proc.poll() is not None:
                raise ConfigError(f"vLLM server for {model_dir} exited ({proc.returncode}): {_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ConfigError(f"vLLM server for {model_dir} did not answer at {url} within "
                                  f"{start_timeout_s:g} s: {_tail(log_path)}")
            time.sleep(1.0)
        yield url
    finally:
        if proc.poll() is None:  # the server's own process group (make, then the exec'd api_server and its workers)
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
