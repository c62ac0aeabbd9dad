"""The report is built from results.json files alone: every section present, figures embedded, text from numbers."""
import base64
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rlhf.study.report import write_report  # noqa: E402


def _png(path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)


def _write(path, obj):
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps(obj))


def _pipeline(tmp_path, aligned_entropy):
    out = tmp_path / "pipe"
    for run, ent in aligned_entropy.items():
        folder = out / "measure" / "entropy" / run
        _write(folder, {"models": {"base": {"top5_entropy_bits": {"mean": 1.5, "ci95": [1.4, 1.6]}},
                                   "aligned": {"top5_entropy_bits": {"mean": ent, "ci95": [ent - .1, ent + .1]}}},
                        "comparison": {"welch_p": 1e-6 if ent < 1.3 else 0.4, "mean_diff_ci95": [0.1, 0.3]}})
        _png(folder / "fig11_entropy_boxplot.png")
    _write(out / "summary", {"by_beta": [{"alpha": 0, "beta": 0.0, "n_seeds": 2, "reward": {"mean": 2.0, "ci95": [1.5, 2.5]},
                                          "attribute_entropy_bits": {"age": {"mean": 3.0, "ci95": [2.5, 3.5]}}}],
                             "findings": ["beta 0 hacked the reward"]})
    _write(out / "pretrain", {"quality": {"parse_rate": 0.97, "tv_distance": {"gender": 0.05}}})
    _write(out / "bandit" / "table1", {"table1": {"rows": [{"t": 4, "action": "Jeepiti", "p_jeepiti": 0.9,
                                                            "paper_p_jeepiti": 0.93, "matches_paper": False}]}})
    return out


def test_report_has_every_section_embedded_figures_and_numbers(tmp_path):
    out = _pipeline(tmp_path, {"alpha0_beta0_seed0": 0.9, "alpha0_beta0.5_seed0": 1.45})
    manifest = {"steps": [{"name": "pretrain", "command": "python -m rlhf stage=pretrain", "seconds": 12.0,
                           "reused": False}], "demo": "fast"}
    html_path, md_path = write_report(out, manifest)
    page = html_path.read_text()
    for section in ("What this run shows", "Metrics against beta", "RLHF across beta", "Tiny world vs ground truth",
                    "Experiment 3: token entropy", "Toy bandit: Table 1", "Step times"):
        assert section in page and section in md_path.read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 2
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "0.900" in page and "0.97" in page and "beta 0 hacked the reward" in page
    assert "<b>no</b>" in page  # Table 1 row that does not match the paper


def test_what_this_run_shows_follows_the_numbers(tmp_path):
    low = write_report(_pipeline(tmp_path / "a", {"alpha0_beta0_seed0": 0.9}), {"steps": []})[0].read_text()
    high = write_report(_pipeline(tmp_path / "b", {"alpha0_beta0_seed0": 1.7}), {"steps": []})[0].read_text()
    assert "lower (significant" in low and "higher (not significant" in high
