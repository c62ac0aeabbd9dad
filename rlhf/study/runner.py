"""Runs the study's steps as subprocesses, a few at a time, and records them (`manifest.json`).

A step starts once every step in its `after` is done; exclusive steps (they use every core) run alone, the
others up to `demo.jobs` at once with `cores // jobs` torch threads each. Each step's output goes to
`<step>/step.log`; the log shows its exact command. Where a step runs depends only on the config, never on
timing, so the same config gives the same numbers.

Reuse: `<step>/step.json` records the step's command, the hash of its resolved config and the content
fingerprint of everything in its `reads`. A step whose record matches (and whose results.json and output
artifacts exist) is reused; otherwise its folder is cleared and it runs again.

Children die with the runner (PR_SET_PDEATHSIG), so a `kill -9` of the demo leaves no orphans; a failing
step, or Ctrl-C, stops the steps still running.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

from hydra.errors import HydraException

from measure.config import ConfigError
from measure.errors import CONFIG_ERRORS, config_error_line
from measure.fingerprint import path_fingerprint
from measure.results import read_results
from measure.tiny import config_hash
from rlhf.proc import die_with_parent
from rlhf.study.steps import Step, compose_app, fill, placeholder

log = logging.getLogger("rlhf.study")
POLL_S = 0.5  # how often running steps are checked
STOP_GRACE_S = 10  # seconds a terminated step gets before it is killed


class StepFailed(RuntimeError):
    """A step exited non-zero; the message is one line naming the step, the error and its log."""


def validate(steps: List[Step]) -> None:
    """Compose every step's config (references as placeholders) so that a bad key or value in any step stops
    the study in one line naming the step and the field, before the first step runs."""
    for step in steps:
        try:
            compose_app(step.app, list(placeholder(step).overrides))
        except (*CONFIG_ERRORS, HydraException) as err:
            raise ConfigError(f"step {step.name}: {_error_line(err)}") from None


def _error_line(err: BaseException) -> str:
    """One line: the project's own message, or Hydra's first line plus its cause's ("Key 'x' is not in struct")."""
    line = config_error_line(err)
    cause = err.__cause__ or err.__context__
    if isinstance(err, HydraException) and cause is not None and str(cause).strip():
        line = f"{line} {str(cause).strip().splitlines()[0]}"
    return line


def reuse_key(step: Step) -> dict:
    """What the step's result depends on: its command, its resolved config and the content of what it reads."""
    resolved = compose_app(step.app, list(step.overrides), typed=False)
    return {"overrides": list(step.overrides), "config": config_hash(resolved),
            "inputs": {path: path_fingerprint(path) if os.path.exists(path) else None for path in step.reads}}


def output_fingerprints(step: Step, results: dict) -> dict:
    """{results key: content fingerprint} of the artifacts the step made outside its folder (None: missing)."""
    paths = {key: str(results.get(key, "")) for key in step.outputs}
    return {key: path_fingerprint(path) if path and os.path.exists(path) else None for key, path in paths.items()}


def _last_line(path: Path, pattern: Optional[str] = None) -> str:
    """The last non-empty line of a log (matching `pattern`, if given), progress bars included."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [re.sub(r"^(\[[^]]*\]){3} - ", "", line.strip()) for line in re.split(r"[\r\n]", tail) if line.strip()]
    if pattern:
        lines = [line for line in lines if re.search(pattern, line)] or lines
    return lines[-1] if lines else ""


class Runner:
    def __init__(self, steps: List[Step], out: Path, jobs: int, progress_every: float):
        self.steps, self.out, self.jobs, self.progress_every = steps, out, jobs, progress_every
        self.index = {step.name: i for i, step in enumerate(steps, 1)}
        self.results: Dict[str, dict] = {}  # name -> results.json of done steps (for {step:key} references)
        self.records: Dict[str, dict] = {}
        self.running: Dict[str, tuple] = {}  # name -> (step, Popen, start time, log file)

    # ---- the loop --------------------------------------------------------------------------------
    def run(self) -> List[dict]:
        pending = list(self.steps)
        last_progress = time.time()
        try:
            while pending or self.running:
                ready = self.next_ready(pending)
                if ready is not None:
                    pending.remove(ready)
                    self.start(ready)
                    continue
                if not self.running:
                    raise RuntimeError(f"steps {[s.name for s in pending]} wait for steps that never run")
                time.sleep(POLL_S)
                self.collect()
                if time.time() - last_progress >= self.progress_every:
                    self.report_progress()
                    last_progress = time.time()
        except BaseException:
            self.stop_all()
            raise
        return [self.records[step.name] for step in self.steps]

    def next_ready(self, pending: List[Step]) -> Optional[Step]:
        """The first pending step in order whose inputs are done, if it may start now."""
        for step in pending:
            if not all(dep in self.results for dep in step.after):
                continue
            if step.exclusive and self.running:
                return None  # wait for the running steps, then run it alone
            if self.running and (len(self.running) >= self.jobs or any(s.exclusive for s, *_ in self.running.values())):
                return None
            return step
        return None

    # ---- one step --------------------------------------------------------------------------------
    def start(self, step: Step) -> None:
        step = fill(step, self.results)
        folder = self.out / step.name
        key = reuse_key(step)
        if self.reusable(step, folder, key):
            self.finish(step, folder, 0.0, reused=True)
            return
        if folder.exists():
            shutil.rmtree(folder)  # a stale result must not survive next to the new one
        folder.mkdir(parents=True)
        (folder / "step.key.json").write_text(json.dumps(key, indent=2))
        env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        if not step.exclusive and self.jobs > 1:
            threads = str(max(1, _cores() // self.jobs))
            env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        log.info("[%d/%d] %s: %s", self.index[step.name], len(self.steps), step.name, step.printable(folder))
        log_file = open(folder / "step.log", "wb")
        proc = subprocess.Popen(step.command(folder), stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, preexec_fn=die_with_parent)
        self.running[step.name] = (step, proc, time.time(), log_file)

    def collect(self) -> None:
        for name, (step, proc, started, log_file) in list(self.running.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.running[name]
            log_file.close()
            folder = self.out / name
            if code != 0 or not (folder / "results.json").exists():
                error = _last_line(folder / "step.log", r"ERROR|Error|error") or f"exit {code}"
                raise StepFailed(f"pipeline stopped: step {name} failed (exit {code}: {error[:300]}); "
                                 f"log: {folder / 'step.log'}")
            key = json.loads((folder / "step.key.json").read_text())
            seconds = time.time() - started
            (folder / "step.json").write_text(json.dumps(
                {"name": name, "command": step.printable(folder), "key": key,
                 "outputs": output_fingerprints(step, read_results(folder)), "seconds": seconds}, indent=2))
            (folder / "step.key.json").unlink()
            self.finish(step, folder, seconds, reused=False)

    def reusable(self, step: Step, folder: Path, key: dict) -> bool:
        """Same command, resolved config and inputs, and its artifacts are still what it made (another study
        sharing the cache may have rebuilt one at the same path)."""
        marker = folder / "step.json"
        if not (marker.exists() and (folder / "results.json").exists()):
            return False
        record = json.loads(marker.read_text())
        return record.get("key") == key and record.get("outputs") == output_fingerprints(step, read_results(folder))

    def finish(self, step: Step, folder: Path, seconds: float, reused: bool) -> None:
        i = self.index[step.name]
        if reused:
            log.info("[%d/%d] %s: reusing %s (same config and inputs)", i, len(self.steps), step.name, folder)
        else:
            log.info("[%d/%d] %s: done in %.0f s", i, len(self.steps), step.name, seconds)
        self.results[step.name] = read_results(folder)
        self.records[step.name] = {"name": step.name, "command": step.printable(folder), "dir": str(folder),
                                   "seconds": seconds, "reused": reused}

    # ---- progress and stopping --------------------------------------------------------------------
    def report_progress(self) -> None:
        for name, (_, _, started, _) in self.running.items():
            log.info("  ... %s (%.0f s): %s", name, time.time() - started, _last_line(self.out / name / "step.log")[:150])

    def stop_all(self) -> None:
        """Terminate the running steps (their checkpoints stay, so a rerun resumes)."""
        for _, proc, _, _ in self.running.values():
            proc.terminate()
        deadline = time.time() + STOP_GRACE_S
        for _, proc, _, log_file in self.running.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_file.close()
        self.running.clear()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
