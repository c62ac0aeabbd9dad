"""Runs the pipeline's steps in order, side by side where their inputs allow (`demo.jobs`).

A step starts once every step in its `after` is done. Exclusive steps (they use every core themselves) run
alone in this process; with `jobs` > 1 the others run in that many spawned worker processes of
`cores // jobs` torch threads each, each step's output going to `<step>/step.log`. Where a step runs depends
only on the config, never on timing, so the same config gives the same numbers. A failing step, or Ctrl-C,
stops the steps still running and the pipeline, with one line naming the step and its log.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import re
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

log = logging.getLogger("rlhf.study.steps")


class Scheduler:
    def __init__(self, pipeline, log_file: Optional[Path]):
        self.pipeline, self.log_file = pipeline, log_file
        self.jobs, self.progress_every = pipeline.demo.jobs, pipeline.demo.progress_every
        self.specs = pipeline.specs()
        self.index = {spec.name: i for i, spec in enumerate(self.specs, 1)}
        self.records: Dict[str, dict] = {}
        self.pending = list(self.specs)
        self.running: Dict[cf.Future, Tuple[object, float]] = {}  # future -> (spec, start time)
        self.pool: Optional[cf.ProcessPoolExecutor] = None

    def run(self) -> List[dict]:
        """Every step, done or reused; returns their records in the specs' order."""
        try:
            while self.pending or self.running:
                if self.launch_next():
                    continue
                if not self.running:  # nothing ready and nothing running: a step waits for one not in the list
                    raise RuntimeError(f"steps {[s.name for s in self.pending]} wait for steps that never run")
                self.collect()
        except BaseException:  # a failed step, Ctrl-C: stop the steps still running (their checkpoints stay)
            if self.pool is not None:
                for process in list(getattr(self.pool, "_processes", {}).values()):  # no public terminate < 3.14
                    process.terminate()
            raise
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
        return [self.records[spec.name] for spec in self.specs]

    def launch_next(self) -> bool:
        """Start (or reuse) the first step in order whose inputs are ready, if it may start now."""
        for spec in self.pending:
            if not all(dep in self.records for dep in spec.after):
                continue
            if spec.exclusive and self.running:
                return False  # wait for the running steps to finish, then run it alone
            if not spec.exclusive and self.jobs > 1 and len(self.running) >= self.jobs:
                return False
            self.pending.remove(spec)
            self.start(spec)
            return True
        return False

    def start(self, spec) -> None:
        try:
            step = spec.build()  # may read earlier results (an adapter path): a missing one names this step
            if self.pipeline.reusable(step):
                self.finish(spec, 0.0, reused=True)
                return
            if spec.exclusive or self.jobs == 1:
                log.info("[%d/%d] %s: running", self.index[spec.name], len(self.specs), spec.name)
                self.finish(spec, self.pipeline.execute(step), reused=False)
                return
        except Exception as err:
            log.exception("step %s failed", spec.name)
            self.stop(spec.name, _one_line(err), self.log_file)
        self.pool = self.pool or self.worker_pool()
        log.info("[%d/%d] %s: running in a worker (log: %s)", self.index[spec.name], len(self.specs), spec.name,
                 self.pipeline.out / spec.name / "step.log")
        future = self.pool.submit(_worker_run, self.pipeline.cfg, str(self.pipeline.out), spec.name)
        self.running[future] = (spec, time.time())

    def collect(self) -> None:
        """Wait for a worker step to end (printing progress meanwhile) and record it; a failure stops all."""
        done, _ = cf.wait(self.running, timeout=self.progress_every, return_when=cf.FIRST_COMPLETED)
        if not done:
            self.report_progress()
        for future in done:
            spec, _ = self.running.pop(future)
            try:
                outcome = future.result()
            except Exception as err:  # the worker process died (killed, out of memory)
                outcome = {"error": f"worker process died: {_one_line(err)}"}
            if "error" in outcome:
                self.stop(spec.name, outcome["error"], self.pipeline.out / spec.name / "step.log")
            self.finish(spec, outcome["seconds"], reused=False)

    def finish(self, spec, seconds: float, reused: bool) -> None:
        folder = self.pipeline.out / spec.name
        if reused:
            log.info("[%d/%d] %s: reusing %s", self.index[spec.name], len(self.specs), spec.name, folder)
        else:
            log.info("[%d/%d] %s: done in %.0f s", self.index[spec.name], len(self.specs), spec.name, seconds)
        self.records[spec.name] = {"step": spec.name, "dir": str(folder), "seconds": seconds, "reused": reused}

    @staticmethod
    def stop(name: str, err: str, where: Optional[Path]) -> None:
        log.error("pipeline stopped: step %s failed (%s); log: %s", name, err, where)
        sys.exit(1)

    def worker_pool(self) -> cf.ProcessPoolExecutor:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores // self.jobs)
        os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
        log.info("running up to %d steps at once, %d torch thread(s) each", self.jobs, threads)
        return cf.ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_worker_init, initargs=(threads,))

    def report_progress(self) -> None:
        """One line per step running in a worker: its elapsed time and the last progress line of its log."""
        for spec, started in self.running.values():
            last = _last_line(self.pipeline.out / spec.name / "step.log")
            last = re.sub(r"^(\[[^]]*\]){3} - ", "", last)  # the log record's prefix
            log.info("  ... %s (%.0f s): %s", spec.name, time.time() - started, last[:150])


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _last_line(path: Path) -> str:
    """The last non-empty line of a log, progress bars included (tqdm rewrites its line with carriage returns)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in re.split(r"[\r\n]", tail) if line.strip()]
    return lines[-1] if lines else ""


def _worker_init(threads: int) -> None:
    """A fresh worker: its torch threads, logging to stderr (redirected to each step's log), Hydra's config dir."""
    import torch
    from hydra import initialize_config_dir

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"), version_base="1.3",
                          job_name="rlhf")


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr (Python and C level: progress bars, warnings) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 1), os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        os.close(saved[0]), os.close(saved[1])


def _worker_run(cfg, out_dir: str, name: str) -> dict:
    """In a worker process: build the named step afresh and run it, its output going to `<step>/step.log`.
    Errors come back as one line (an exception of a library may not survive pickling)."""
    from rlhf.study.steps import Pipeline

    pipeline = Pipeline(cfg, Path(out_dir))
    with _output_to(pipeline.out / name / "step.log"):
        try:
            spec = next(spec for spec in pipeline.specs() if spec.name == name)
            return {"seconds": pipeline.execute(spec.build())}
        except BaseException as err:  # noqa: B036 -- SystemExit from a config check included
            log.exception("step %s failed", name)
            return {"error": _one_line(err)}
