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


def test_metric_names_and_top_k_come_from_the_registry(tmp_path):
    """An entropy run at top_k = 3 is reported as top-3 (never a hard-coded top-5); persona attributes are reported
    exact (teacher-forced) and at equal n, with units and directions from the registry."""
    out = tmp_path / "pipe"
    folder = out / "measure" / "entropy" / "alpha0_beta0_seed0"
    _write(folder, {"top_k": 3, "models": {"base": {"top3_entropy_bits": {"mean": 1.2, "ci95": [1.1, 1.3]}},
                                           "aligned": {"top3_entropy_bits": {"mean": 0.7, "ci95": [0.6, 0.8]}}},
                    "comparison": {"welch_p": 1e-5, "mean_diff_ci95": [0.4, 0.6]}})
    exact = lambda h: {"marginal_entropy_bits": {"mean": h, "ci95": [h - .1, h + .1], "n_contexts": 200}}  # noqa: E731
    _write(out / "measure" / "personas" / "alpha0_beta0_seed0", {
        "models": {"base": {"attributes_exact": {"first_name": exact(7.9)}, "attributes": {"first_name": {"entropy_bits": 5.9}}},
                   "aligned": {"attributes_exact": {"first_name": exact(6.2)}, "attributes": {"first_name": {"entropy_bits": 4.8}}}},
        "comparison": {"attributes_exact": {"first_name": {"conditional_kl_nats": {"mean": 0.8, "ci95": [0.7, 0.9]},
                                                           "marginal_entropy_diff_bits": {"mean": -1.7, "ci95": [-1.8, -1.6]}}},
                       "first_name_entropy_bits": {"diff": 0.2, "values_at_n_matched": [5.0, 4.8], "n_matched": 33,
                                                   "permutation_p": 0.3, "null_diff_95": [-0.3, 0.3]}}})
    page = write_report(out, {"steps": []})[0].read_text()
    assert "top-3 entropy (bits)" in page and "top-5" not in page and "top5" not in page
    assert "first_name exact marginal entropy (bits) [bits; more diverse: higher]" in page
    assert "exact KL to base" in page and "0 (reference)" in page
    assert "at n=33" in page and "chance range" in page
    assert "first_name 7.90→6.20 (less diverse, KL 0.80 nats)" in page
    assert "first_name 5.00→4.80 at n=33" in page
