"""The study's report: one self-contained HTML file (figures embedded, nothing fetched) and a Markdown summary.

Built only from the `results.json` files and figures that each pipeline step wrote (never private state):
the metric table against beta with CIs, the paper's figure set for base vs each beta, the tiny world's
ground-truth comparison, Table 1 with recomputed values, per-step times, and a "what this run shows"
paragraph assembled from the numbers.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import math
import re
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from measure.metrics.registry import metric, topk_key
from measure.results import flatten
from rlhf.stages.summary import headline

log = logging.getLogger(__name__)

# (experiment, registry key, path inside models.<label>, path of the comparison block); "{k}" is the entropy run's
# top_k, "{attr}" each persona attribute of ATTRIBUTE_ROWS. Labels, units and directions come from the registry.
ATTRIBUTE_ROWS = ("first_name", "age", "nationality", "mbti")
KEY_METRICS = [
    ("entropy", "top{k}_entropy_bits", "top{k}_entropy_bits.mean", "comparison"),
    ("entropy", "full_entropy_bits", "full_entropy_bits.mean", "comparison.full_entropy_bits"),
    ("semantic", "sbert_cosine", "sbert_cosine.mean", "comparison.sbert_cosine"),
    ("semantic", "tfidf_cosine", "tfidf_cosine.mean", "comparison.tfidf_cosine"),
    ("semantic", "distinct_2", "distinct_2", "comparison.distinct_2"),
    ("semantic", "vendi_sbert", "vendi_sbert", "comparison.vendi_sbert"),
    ("semantic", "clusters_k", "clusters.k", None),
    ("personas", "parse_ok_share", "parse_rate", None),
    ("personas", "attribute_entropy_bits", "attributes.{attr}.entropy_bits", "comparison.{attr}_entropy_bits"),
    ("personas", "marginal_entropy_bits", "attributes_exact.{attr}.marginal_entropy_bits",
     "comparison.attributes_exact.{attr}.marginal_entropy_diff_bits"),
    ("personas", "conditional_kl_nats", None, "comparison.attributes_exact.{attr}.conditional_kl_nats"),
    ("personas", "vader_mean", "review_vader_compound.mean", "comparison.review_vader_compound"),
    ("attractor", "return_share", "return_share.mean", "comparison.return_share"),
    ("attractor", "climb", "climb.mean", "comparison.climb"),
]


def top_k(runs: List[Tuple[str, Path, dict]]) -> int:
    """The k of the entropy experiment's top-k entropy (its results' ``top_k``; the paper's 5 when absent)."""
    return int(next((res["top_k"] for _, _, res in runs if "top_k" in res), 5))


def expanded_metrics(out: Path) -> List[tuple]:
    """KEY_METRICS with their parameters filled in: (experiment, label, value path, comparison path)."""
    k = top_k(measure_runs(out, "entropy"))
    rows = []
    for experiment, key, path, comp in KEY_METRICS:
        params = [{"k": k, "attr": a} for a in ATTRIBUTE_ROWS] if "{attr}" in (path or "") + (comp or "") \
            else [{"k": k}]
        for p in params:
            label = f"{metric(key).title(**p)} [{metric(key).unit}; more diverse: {metric(key).direction}]"
            rows.append((experiment, label, path.format(**p) if path else None, comp.format(**p) if comp else None))
    return rows


def dig(obj, path: Optional[str]):
    """``obj`` at a dotted ``path`` (None when any part is missing)."""
    if path is None:
        return None
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool) or isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.{digits}f}"
    if isinstance(x, dict) and "mean" in x:
        ci = x.get("ci95")
        return fmt(x["mean"]) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")
    return html.escape(str(x))


def _read(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


class Doc:
    """Accumulates the same content as HTML and as Markdown."""

    def __init__(self):
        self.html: List[str] = []
        self.md: List[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.html.append(f"<h{level} id='{_anchor(text)}'>{html.escape(text)}</h{level}>")
        self.md.append("#" * level + " " + text + "\n")

    def para(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md.append(text + "\n")

    def table(self, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        rows = [list(r) for r in rows]
        self.html.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
                         + "</table>")
        self.md.append("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
                       + "".join("| " + " | ".join(html.unescape(str(c)) for c in r) + " |\n" for r in rows))

    def figures(self, paths: Iterable[Path], caption: str = "") -> None:
        paths = [p for p in paths if p.suffix == ".png" and p.exists()]
        if not paths:
            return
        imgs = "".join(f"<figure><img alt='{html.escape(p.name)}' src='data:image/png;base64,"
                       f"{base64.b64encode(p.read_bytes()).decode()}'><figcaption>{html.escape(p.name)}"
                       "</figcaption></figure>" for p in paths)
        self.html.append(f"<div class='figs'>{imgs}</div>" + (f"<p class='cap'>{html.escape(caption)}</p>" if caption else ""))
        self.md.append("".join(f"![{p.name}]({p})\n" for p in paths))


def _run_order(folder: Path):
    """Sort run folders `alpha<a>_beta<b>_seed<s>` numerically (beta 0, 0.05, 0.5 ...), others by name."""
    numbers = re.findall(r"(alpha|beta|seed)([0-9.eE+-]+)", folder.name)
    try:
        return (0, tuple(float(v) for _, v in numbers), folder.name)
    except ValueError:
        return (1, (), folder.name)


def _anchor(text: str) -> str:
    return "".join(c.lower() if c.isalnum() else "-" for c in text).strip("-")


def measure_runs(out: Path, experiment: str) -> List[Tuple[str, Path, dict]]:
    """(run name, folder, results) of one experiment across the PPO models, in folder order."""
    runs = []
    for folder in sorted((out / "measure" / experiment).glob("*"), key=_run_order):
        res = _read(folder / "results.json")
        if res:
            runs.append((folder.name, folder, res))
    return runs


def comparison_text(comp) -> str:
    """The interval and p-value of a comparison block, whichever test made it: Welch (``measure.stats.compare``),
    permutation (``compare_at_equal_n``: n_matched and the range chance gives) or a paired bootstrap ({mean, ci95})."""
    if not isinstance(comp, dict):
        return ""
    if "mean_diff_ci95" in comp:
        ci, p = comp["mean_diff_ci95"], comp.get("welch_p")
        return f" (Δ CI [{fmt(ci[0])}, {fmt(ci[1])}], p={fmt(p, 2)})"
    if "permutation_p" in comp:
        at = f" at n={comp['n_matched']}" if "n_matched" in comp else ""
        band = comp.get("null_diff_95") or comp.get("diff_ci95")
        what = "chance range" if "null_diff_95" in comp else "CI"
        return (f" (Δ{at} {fmt(comp.get('diff'))}" + (f", {what} [{fmt(band[0])}, {fmt(band[1])}]" if band else "")
                + f", permutation p={fmt(comp['permutation_p'], 2)})")
    if "ci95" in comp and "mean" in comp:
        return f" (Δ {fmt(comp)}, paired over contexts)"
    return ""


def metric_rows(out: Path) -> List[List[str]]:
    """One row per key metric: base, then aligned at each beta (mean [CI]) with its comparison."""
    rows = []
    for experiment, name, path, comp_path in expanded_metrics(out):
        runs = measure_runs(out, experiment)
        if not runs:
            continue
        if path is None:  # a distance to the base: the comparison is the value
            cells = [experiment, html.escape(name), "0 (reference)"] + [fmt(dig(res, comp_path)) for _, _, res in runs]
        else:
            cells = [experiment, html.escape(name), fmt(dig(runs[0][2], f"models.base.{path}"))]
            cells += [fmt(dig(res, f"models.aligned.{path}")) + comparison_text(dig(res, comp_path))
                      for _, _, res in runs]
        if any(c not in ("–", "0 (reference)") for c in cells[2:]):
            rows.append(cells)
    return rows


def _direction_words(key: str, base: float, aligned: float) -> str:
    more = metric(key).more_diverse(aligned, base)
    return {True: "more diverse", False: "less diverse", None: "no change in diversity"}[more]


def findings(out: Path, summary: Optional[dict]) -> List[str]:
    """Sentences built from the numbers: what fell, what did not, and how it moved with beta."""
    said = []
    runs = measure_runs(out, "entropy")
    key = topk_key(top_k(runs))
    for name, _, res in runs:
        base, aligned = dig(res, f"models.base.{key}.mean"), dig(res, f"models.aligned.{key}.mean")
        p = dig(res, "comparison.welch_p")
        if base is None or aligned is None:
            continue
        verdict = "lower" if aligned < base else "higher"
        sig = "significant" if p is not None and p < 0.05 else "not significant"
        said.append(f"{name}: {metric(key).title(k=top_k(runs))} {fmt(aligned)} vs base {fmt(base)} — {verdict} "
                    f"({sig}, Welch p = {fmt(p, 2)}).")
    for name, _, res in measure_runs(out, "semantic"):
        base, aligned = dig(res, "models.base.sbert_cosine.mean"), dig(res, "models.aligned.sbert_cosine.mean")
        if base is not None and aligned is not None:
            said.append(f"{name}: mean pairwise SBERT cosine {fmt(aligned)} vs base {fmt(base)} "
                        f"({'more similar, less semantic diversity' if aligned > base else 'not more similar'}).")
    for name, _, res in measure_runs(out, "personas"):
        said += _persona_findings(name, res)
    if summary:
        for line in summary.get("findings", [])[:6]:
            said.append(str(line))
    return said


def _persona_findings(name: str, res: dict) -> List[str]:
    """Persona attribute entropy: exact (teacher-forced, no n to match) where measured, and counted at equal n."""
    said, exact, counted = [], [], []
    for attr in ATTRIBUTE_ROWS:
        b = dig(res, f"models.base.attributes_exact.{attr}.marginal_entropy_bits.mean")
        a = dig(res, f"models.aligned.attributes_exact.{attr}.marginal_entropy_bits.mean")
        kl = dig(res, f"comparison.attributes_exact.{attr}.conditional_kl_nats.mean")
        if a is not None and b is not None:
            exact.append(f"{attr} {fmt(b, 2)}→{fmt(a, 2)} ({_direction_words('marginal_entropy_bits', b, a)}"
                         + (f", KL {fmt(kl, 2)} nats" if kl is not None else "") + ")")
        comp = dig(res, f"comparison.{attr}_entropy_bits")
        if isinstance(comp, dict) and "values_at_n_matched" in comp:
            vb, va = comp["values_at_n_matched"]
            p = comp.get("permutation_p")
            counted.append(f"{attr} {fmt(vb, 2)}→{fmt(va, 2)} at n={comp['n_matched']} (p={fmt(p, 2)})")
        elif isinstance(comp, dict) or dig(res, f"models.base.attributes.{attr}.entropy_bits") is not None:
            b = dig(res, f"models.base.attributes.{attr}.entropy_bits")
            a = dig(res, f"models.aligned.attributes.{attr}.entropy_bits")
            if a is not None and b is not None and b > 0:
                counted.append(f"{attr} {fmt(b, 2)}→{fmt(a, 2)}")
    if exact:
        said.append(f"{name}: exact persona attribute entropy (bits, base→aligned, teacher-forced on the base's "
                    f"cards): {', '.join(exact)}.")
    if counted:
        said.append(f"{name}: persona attribute entropy counted over parsed cards (bits, base→aligned, at equal n): "
                    f"{', '.join(counted)}.")
    return said


CSS = ("body{font-family:system-ui,sans-serif;max-width:75em;margin:auto;padding:1em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}td,th{border:1px solid #ccc;"
       "padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
       ".figs{display:flex;flex-wrap:wrap;gap:.5em}figure{margin:0;max-width:48%}figure img{max-width:100%}"
       "figcaption,.cap{font-size:.8em;color:#666}nav a{margin-right:1em}")


ANSWER_ATTRIBUTES = ("nationality", "first_name", "gender", "mbti")


def answer_section(doc: "Doc", out: Path, summary: Optional[dict]) -> None:
    """The opening: the frontier figure, three generated sentences, then the cells against their predictions,
    the positive control and the reward models."""
    if not summary or "cells" not in summary:
        doc.para("The RLHF summary has not run: no answer yet.")
        return
    doc.figures([p for p in [out / "summary" / "frontier.png"] if p.exists()],
                caption="Trained models (mean, 95% t-CI over seeds) against the predicted optimum of the "
                        "KL-regularised objective (solid: annotator's true utility; dashed: the reward model) and "
                        "best-of-n (dotted); right: the positive control against its closed form.")
    for line in summary.get("headline", []):
        doc.para(line)
    rows = []
    for c in summary["cells"]:
        a, p, q = c["achieved"], c.get("predicted") or {}, c.get("predicted_reward_model") or {}
        pred = (lambda block, key: "beyond resolution" if block.get("beyond_resolution") else fmt(block.get(key)))
        row = [c["method"], c.get("reward_arm") or "model", fmt(c["alpha"]),
               ", ".join(f"{k} {v:g}" for k, v in (c.get("setting") or {"beta": c["beta"]}).items()),
               str(c["n_seeds"]), fmt(a["kl_nats"]), pred(p, "kl_nats"),
               pred(q, "kl_nats"), fmt(a["true_utility"]), pred(p, "true_utility"), pred(q, "true_utility")]
        for attr in ANSWER_ATTRIBUTES:
            got = (p.get("attribute_entropy_bits") or {}).get(attr)
            row.append(f"{fmt(a['attribute_entropy_bits'][attr])} / "
                       f"{'beyond resolution' if p.get('beyond_resolution') else fmt(got)}")
        rows.append(row)
    doc.table(["method", "reward", "alpha", "setting", "seeds", "KL achieved", "KL predicted", "KL predicted (RM)",
               "true utility achieved", "predicted", "predicted (RM)"]
              + [f"H({a}) achieved / predicted" for a in ANSWER_ATTRIBUTES], rows)
    base = summary.get("base") or {}
    if base.get("true_utility") is not None:
        doc.para(f"Base model: true utility {fmt(base['true_utility'])}; "
                 + ", ".join(f"H({a}) {fmt((base.get('attribute_entropy_bits') or {}).get(a))}"
                             for a in ANSWER_ATTRIBUTES)
                 + f" bits at n = {base.get('entropy_n')} cards (the cells' n).")
    control = summary.get("positive_control") or []
    if control:
        doc.table(["control beta", "seeds", "base share", "predicted share [CI]", "achieved share (t-CI over seeds)",
                   "within CI", "pooled share CI (all samples)", "within pooled CI", "achieved KL"],
                  [[fmt(c["beta"]), str(c["n_seeds"]), fmt(c["base_share"]),
                    f"{fmt(c['predicted_share'])} [{', '.join(fmt(v) for v in c['predicted_share_ci95'] or [])}]",
                    fmt(c["achieved_share"]),
                    {True: "yes", False: "<b>no</b>", None: "n/a (one seed)"}[c["within_ci"]],
                    f"[{', '.join(fmt(v) for v in c.get('achieved_share_pooled_ci95') or [])}]",
                    {True: "yes", False: "<b>no</b>", None: "n/a"}[c.get("within_pooled_ci")],
                    fmt(c["achieved_kl_nats"])] for c in control])
    rms = {}
    for c in summary["cells"]:
        rm = c.get("reward_model") or {}
        if rm.get("path"):
            rms[rm["path"]] = (c["alpha"], rm)
    if rms:
        keys = ("accuracy", "bt_ceiling", "calibration_slope", "implied_alpha", "score_sd")

        def with_ci(rm, k):
            ci = rm.get(f"{k}_ci95")
            return fmt(rm.get(k)) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")

        doc.table(["reward model alpha", "held-out accuracy", "Bradley-Terry ceiling", "calibration slope",
                   "implied alpha", "score sd"],
                  [[fmt(alpha)] + [with_ci(rm, k) for k in keys] for alpha, rm in rms.values()])


def _ci_text(block: Optional[dict], digits: int = 2) -> str:
    if not block or block.get("mean") is None:
        return "n/a"
    ci = block.get("ci95")
    return f"{block['mean']:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else " (1 seed)")


def methods_section(doc: "Doc", out: Path, summary: Optional[dict]) -> None:
    """The alignment methods at matched KL (the summary's ``methods`` block) and each cell against the frontier."""
    block = (summary or {}).get("methods") or {}
    cells = [c for c in (summary or {}).get("cells", []) if c["method"] != "ppo"]
    if not cells:
        doc.para("Only PPO ran (demo.methods adds RLOO, GRPO, DPO, best-of-n, RFT and curated SFT).")
        return
    doc.figures([p for p in [out / "summary" / "methods.png"] if p.exists()],
                caption="Every method's cells (mean, 95% t-CI over seeds) against the optimum of the KL-regularised "
                        "objective under the annotator's true utility; entropies exact (teacher-forced over the "
                        "truth's values), the optimum's at n -> infinity.")
    doc.para(f"Matched KL: {block.get('method', '')} (tolerance: a factor {block.get('tolerance_nearest')} in KL; the "
             f"'how' column says which, 'seeds' how many seeds were read).")
    rows = []
    for r in block.get("matched", []):
        front = next(iter((r.get("frontier") or {}).values()), None) or {}
        for arm in r["arms"]:
            rows.append([fmt(r["kl_nats"]), arm["method"], arm["reward_arm"], "/".join(arm["how"]), str(arm["n_seeds"]),
                         _ci_text(arm["true_utility"]), fmt(front.get("true_utility")),
                         _ci_text(arm["exact_entropy_bits/first_name"]),
                         _ci_text(arm["exact_entropy_bits/nationality"]),
                         fmt((front.get("attribute_entropy_bits_infinite_n") or {}).get("nationality")),
                         _ci_text(arm["cross_input/per_input_entropy_bits/first_name"]),
                         _ci_text(arm["cross_input/cross_input_match/first_name"], 3),
                         _ci_text(arm["cross_input/mutual_information_excess_bits/first_name"]),
                         _ci_text(arm["cross_input/identical_persona_share"], 3)])
    if rows:
        doc.table(["KL (nats)", "method", "reward", "how", "seeds", "true utility", "optimum's",
                   "H(first name) exact", "H(nationality) exact", "optimum's H(nat.)", "per-input H(first name)",
                   "cross-input match (first name)", "MI(product; first name) excess", "identical personas across "
                   "products"], rows)
    doc.table(["method", "reward", "setting", "seeds", "KL", "true utility", "optimum's at this KL", "gap"],
              [[c["method"], c["reward_arm"], ", ".join(f"{k} {v:g}" for k, v in c["setting"].items()),
                str(c["n_seeds"]), _ci_text(c["achieved"]["kl_nats"]), _ci_text(c["achieved"]["true_utility"]),
                fmt((c.get("on_frontier") or {}).get("true_utility")),
                fmt(None if not c.get("on_frontier") or c["achieved"]["true_utility"]["mean"] is None else
                    c["achieved"]["true_utility"]["mean"] - c["on_frontier"]["true_utility"])]
               for c in (summary or {}).get("cells", [])])


def write_report(out: Path, manifest: dict) -> Tuple[Path, Path]:
    """Write `report.html` and `report.md` into ``out`` (the pipeline folder); returns their paths."""
    out = Path(out)
    doc = Doc()
    sections = ["The answer", "Methods at matched KL", "What this run shows", "Metrics against beta", "RLHF across beta", "Tiny world vs ground truth",
                "Experiment 3: token entropy", "Experiment 2: semantic clusters", "Experiment 1: personas",
                "Attractor test", "Toy bandit: Table 1", "Toy bandit: simulations", "Step times"]
    doc.html.append("<nav>" + "".join(f"<a href='#{_anchor(s)}'>{html.escape(s)}</a>" for s in sections) + "</nav>")
    summary = _read(out / "summary" / "results.json")
    pretrain = _read(out / "pretrain" / "results.json")

    doc.heading(sections[0])
    answer_section(doc, out, summary)

    doc.heading(sections[1])
    methods_section(doc, out, summary)

    doc.heading(sections[2])
    lines = findings(out, summary)
    doc.para(" ".join(lines) if lines else "No measurement finished yet: nothing to conclude.")

    doc.heading(sections[3])
    runs = measure_runs(out, "entropy") or measure_runs(out, "semantic")
    doc.table(["experiment", "metric", "base"] + [f"aligned {name}" for name, _, _ in runs], metric_rows(out))

    doc.heading(sections[4])
    if summary:
        rows = summary.get("by_beta", [])
        keys = list(headline(summary.get("top_k", 5)))
        doc.table(["alpha", "beta", "seeds"] + keys,
                  [[fmt(r.get("alpha")), fmt(r.get("beta")), fmt(r.get("n_seeds"))] + [fmt(r.get(k)) for k in keys]
                   for r in rows])
        for nested, title in (("attribute_entropy_bits", "entropy at equal n (bits); base at that n"),
                              ("marginal_entropy_bits", "exact marginal entropy (bits); base"),
                              ("conditional_kl_nats", "exact KL to base (nats)"),
                              ("kl_by_field", "sequence KL in this card field (nats)")):
            attrs = [a for a in dict.fromkeys(a for r in rows for a in (r.get(nested) or {}))
                     if any(dig(r, f"{nested}.{a}.mean") is not None for r in rows)]
            if attrs:
                doc.table(["alpha", "beta"] + [f"{a} {title}" for a in attrs],
                          [[fmt(r.get("alpha")), fmt(r.get("beta"))]
                           + [fmt(dig(r, f"{nested}.{a}")) + (f"; {fmt(dig(r, f'base.{nested}.{a}'))}"
                                                              if dig(r, f"base.{nested}.{a}.mean") is not None else "")
                              for a in attrs] for r in rows])
        doc.figures(sorted((out / "summary").glob("*.png")))
        for name in sorted(p.name for p in (out / "ppo").glob("*")):
            doc.figures(sorted((out / "ppo" / name).glob("*.png")), caption=f"PPO run {name}")
    else:
        doc.para("The RLHF summary has not run.")

    doc.heading(sections[5])
    quality = (pretrain or {}).get("quality")
    if quality:
        flat = [(k, v) for k, v in flatten(quality).items() if not isinstance(v, list)]
        doc.table(["quality metric", "value"], [[html.escape(k), fmt(v)] for k, v in flat])
        doc.figures(sorted((out / "pretrain").glob("*.png")))
    else:
        doc.para("The tiny world's build results are missing.")

    for title, experiment in zip(sections[5:9], ("entropy", "semantic", "personas", "attractor")):
        doc.heading(title)
        for name, folder, _ in measure_runs(out, experiment):
            doc.heading(f"{title} — base vs aligned {name}", level=3)
            doc.figures(sorted(folder.glob("*.png")))
        if not measure_runs(out, experiment):
            doc.para("Not run.")

    doc.heading(sections[10])
    table1 = _read(out / "bandit" / "table1" / "results.json")
    if table1:
        rows = dig(table1, "table1.rows") or []
        doc.table(["t", "action", "reward", "advantage", "v", "π(Jeepiti)", "paper π(Jeepiti)", "matches paper"],
                  [[fmt(r.get("t")), html.escape(str(r.get("action"))), fmt(r.get("reward")), fmt(r.get("advantage")),
                    fmt(r.get("value")), fmt(r.get("p_jeepiti")), fmt(r.get("paper_p_jeepiti")),
                    "yes" if r.get("matches_paper") else "<b>no</b>"] for r in rows])
        doc.figures(sorted((out / "bandit" / "table1").glob("*.png")))
    else:
        doc.para("Not run.")
    doc.heading(sections[11])
    simulate = _read(out / "bandit" / "simulate" / "results.json")
    if simulate:
        rules = dig(simulate, "simulate.rules") or {}
        doc.table(["rule", "final mean π(best)", "final entropy (bits)", "trap escape share"],
                  [[html.escape(k), fmt(v.get("final_mean_pi_best")), fmt(v.get("final_mean_entropy_bits")),
                    fmt(v.get("trap_escape_share"))] for k, v in rules.items()])
        doc.figures(sorted((out / "bandit" / "simulate").glob("*.png")))
    else:
        doc.para("Not run.")

    doc.heading(sections[12])
    if manifest.get("wall_seconds") is not None:
        doc.para(f"Wall time {manifest['wall_seconds'] / 60:.1f} min with up to {manifest.get('jobs', 1)} step(s) at "
                 "once (steps side by side overlap, so their seconds add up to more than the wall time). Each step "
                 "is the command shown; run it by hand to redo that step alone.")
    doc.table(["step", "seconds", "reused", "command"],
              [[html.escape(m["name"]), f"{m['seconds']:.0f}", "yes" if m["reused"] else "",
                f"<code>{html.escape(m.get('command', ''))}</code>"] for m in manifest.get("steps", [])])

    preset = manifest.get("demo", "default")
    title = "RLHF mode collapse: the tiny-world study" + ("" if preset == "default" else f" (demo={preset})")
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>" + "\n".join(doc.html) + "</body></html>")
    html_path, md_path = out / "report.html", out / "report.md"
    html_path.write_text(page)
    md_path.write_text(f"# {title}\n\n" + "\n".join(doc.md))
    return html_path, md_path
