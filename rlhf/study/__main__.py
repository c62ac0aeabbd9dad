"""Entry point of the one-command study: `python -m rlhf.study demo=<default|fast|test>` (`make demo`).

Plans the steps (rlhf/study/steps.py), composes and validates every step's config (one line and exit 2 on a
bad key or value, naming the step and the field, before anything runs), runs them (rlhf/study/runner.py),
then writes manifest.json and the report into `demo.out_dir`.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig

from measure.config import ConfigError
from measure.errors import CONFIG_ERRORS, INTERRUPTED, command_line_app, config_error_line, typed_config
from rlhf.study.config import StudyConfig, register_configs

register_configs()
log = logging.getLogger("rlhf.study")


def run_study(cfg: StudyConfig) -> dict:
    """Plan, validate, run; then manifest.json and report.html/report.md in `demo.out_dir`."""
    from rlhf.study.report import write_report
    from rlhf.study.runner import Runner, validate
    from rlhf.study.steps import plan

    out = Path(cfg.demo.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = plan(cfg, out)
    validate(steps)
    log.info("demo=%s: %d steps into %s, up to %d at once; rerunning reuses the steps whose config and inputs "
             "match", cfg.demo.name, len(steps), out, cfg.demo.jobs)
    started = time.time()
    records = Runner(steps, out, cfg.demo.jobs, cfg.demo.progress_every).run()
    manifest = {"demo": cfg.demo.name, "steps": records, "jobs": cfg.demo.jobs,
                "total_seconds": sum(r["seconds"] for r in records), "wall_seconds": time.time() - started}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    html, md = write_report(out, manifest)
    log.info("per-step times (s): %s", ", ".join(f"{r['name']} {r['seconds']:.0f}{' (reused)' if r['reused'] else ''}"
                                                 for r in records))
    log.info("total %.0f s. Report: %s (summary: %s)", manifest["wall_seconds"], html, md)
    return manifest


# absolute, so that the console script (rmc-*) finds conf/ as `python -m` does
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@command_line_app("rlhf.study")
@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="study")
def main(dcfg: DictConfig) -> None:
    from rlhf.study.runner import StepFailed

    try:
        cfg: StudyConfig = typed_config(dcfg)
        run_study(cfg)
    except (*CONFIG_ERRORS, HydraException) as err:
        log.error("config error: %s", config_error_line(err) if not isinstance(err, ConfigError) else err)
        sys.exit(2)
    except StepFailed as err:
        log.error("%s", err)
        sys.exit(1)
    except KeyboardInterrupt:
        log.error("%s (finished steps are reused)", INTERRUPTED)
        sys.exit(130)


if __name__ == "__main__":
    main()
