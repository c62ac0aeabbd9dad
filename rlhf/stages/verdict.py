"""The study's answer: trained models read against what the objective predicts (the summary stage's blocks).

``cells`` (one per (method, alpha, beta)): ``achieved`` (the PPO runs' final measurement pooled over seeds, a
Student-t 95% CI where there are >= 2 seeds, none for one) and ``predicted`` (the predict stage's optimum of the
KL-regularised objective under the annotator's true utility; ``predicted_reward_model`` under the reward model
PPO was given). Both hold ``kl_nats``, ``true_utility`` and ``attribute_entropy_bits.<attr>`` (plug-in over the
parsed cards of ``entropy_n`` samples: the trained models' final measurement and the prediction's resampled
draws use the same estimator at the same n). ``collapse_realised.<attr>`` is (base - achieved) / (base -
predicted), given only where the predicted drop is at least ``MIN_DROP_BITS``: a null where no collapse is
predicted is the predicted answer, not a failed reproduction.

``positive_control`` (one per beta): the control runs' share of the rewarded value against the closed form;
``within_ci`` is true when the closed form lies inside the achieved share's t-CI over >= 2 seeds (None with one
seed; with two seeds that interval is wide, so ``within_pooled_ci`` also checks the Wilson interval of every final
sample of every seed pooled); ``informative`` says whether the closed form moves the share at least
``MIN_CONTROL_MOVE`` from the base at all. ``headline``: three sentences generated from these numbers.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from scipy import stats as sps

from measure.persona_parse import ATTRIBUTES

log = logging.getLogger(__name__)
MIN_DROP_BITS = 0.1  # a predicted entropy drop smaller than this is "no collapse predicted"
MIN_CONTROL_MOVE = 0.05  # a control whose closed form moves the share less than this from the base tests nothing
FIGURE_ATTRIBUTES = ("nationality", "first_name")
METHOD_MARKERS = {"ppo": "o", "rloo": "^", "grpo": "v", "dpo": "D", "bon": "s", "rft": "P", "sft_curated": "X"}


def interval(values) -> dict:
    """{mean, ci95, n, values}: the Student-t 95% interval of the mean over seeds; ci95 is None for one seed."""
    clean = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not clean:
        return {"mean": None, "ci95": None, "n": 0, "values": []}
    mean = float(np.mean(clean))
    if len(clean) < 2:
        return {"mean": mean, "ci95": None, "n": 1, "values": clean}
    half = float(sps.t.ppf(0.975, len(clean) - 1) * np.std(clean, ddof=1) / math.sqrt(len(clean)))
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": len(clean), "values": clean}


def read_predict(path: Optional[str]) -> Optional[dict]:
    if not path:
        return None
    p = Path(path)
    p = p / "results.json" if p.is_dir() else p
    if not p.exists():
        log.warning("summary.predict: %s does not exist; cells get no predicted block", p)
        return None
    return json.loads(p.read_text())


CROSS_INPUT_ATTRIBUTES = ("first_name", "nationality")
CROSS_INPUT_STATS = ("per_input_entropy_bits", "pooled_entropy_bits", "within_input_match", "cross_input_match",
                     "mutual_information_excess_bits")


def _achieved(runs: List[dict]) -> dict:
    finals = [r["final"] for r in runs]
    out = {"kl_nats": interval([f.get("sequence_kl_nats") for f in finals]),
           "true_utility": interval([f.get("true_utility") for f in finals]),
           "quality_utility": interval([f.get("annotator_quality") for f in finals]),
           "reward_score": interval([f.get("reward_model_score") for f in finals]),
           "attribute_entropy_bits": {a: interval([f.get(f"persona/attribute_entropy_bits/{a}") for f in finals])
                                      for a in ATTRIBUTES},
           # exact (teacher-forced) marginal over the truth's values on the base's card prefixes: no n to match
           "attribute_entropy_exact_bits": {a: interval([f.get(f"persona/exact/{a}/marginal_entropy_bits")
                                                         for f in finals]) for a in ATTRIBUTES},
           "kl_by_field": {k.removeprefix("kl_by_field/"): interval([f.get(k) for f in finals])
                           for k in finals[0] if k.startswith("kl_by_field/")}}
    if any(k.startswith("cross_input/") for k in finals[0]):
        out["cross_input"] = {a: {s: interval([f.get(f"cross_input/{s}/{a}") for f in finals])
                                  for s in CROSS_INPUT_STATS} for a in CROSS_INPUT_ATTRIBUTES}
        out["cross_input"]["identical_persona_share"] = interval([f.get("cross_input/identical_persona_share")
                                                                  for f in finals])
    return out


def run_setting(run: dict) -> Dict[str, float]:
    """The run's knob: ``setting`` (align stage), else {"beta"} (a ppo-stage run)."""
    return run.get("setting") or {"beta": run["beta"]}


def setting_label(setting: Dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in setting.items())


def _predicted(predict: Optional[dict], alpha: float, beta: float, kind: str) -> Optional[dict]:
    if not predict:
        return None
    for c in predict.get("cells", []):
        if c["reward_kind"] == kind and math.isclose(c["alpha"], alpha) and math.isclose(c["beta"], beta):
            keep = ("kl_nats", "true_utility", "quality_utility", "reward", "attribute_entropy_bits", "ess",
                    "beyond_resolution", "attribute_distribution")
            return {k: c.get(k) for k in keep}
    return None


def _base(predict: Optional[dict], alpha: float) -> Optional[dict]:
    for b in (predict or {}).get("base", []):
        if math.isclose(b["alpha"], alpha):
            return b
    return None


def collapse_realised(base: Optional[dict], achieved: dict, predicted: Optional[dict]) -> Dict[str, Optional[dict]]:
    """Per attribute: {mean, ci95} of (base - achieved) / (base - predicted) entropy, where the predicted drop is
    resolvable (None elsewhere); the CI carries the achieved entropy's t-CI over seeds (base and prediction, from
    2,000 samples, are held fixed)."""
    out: Dict[str, Optional[dict]] = {}
    for a in ATTRIBUTES:
        h0 = ((base or {}).get("attribute_entropy_bits") or {}).get(a)
        hp = ((predicted or {}).get("attribute_entropy_bits") or {}).get(a)
        ach = achieved["attribute_entropy_bits"][a]
        if None in (h0, hp, ach["mean"]) or h0 - hp < MIN_DROP_BITS:
            out[a] = None
            continue
        share = lambda h: (h0 - h) / (h0 - hp)
        ci = None if ach["ci95"] is None else sorted([share(ach["ci95"][1]), share(ach["ci95"][0])])
        out[a] = {"mean": share(ach["mean"]), "ci95": ci}
    return out


def study_blocks(runs: List[dict], controls: List[dict], predict: Optional[dict]) -> dict:
    """The summary's answer blocks. ``cells``: one per (method, reward arm, alpha, setting), seeds pooled;
    ``methods``: the methods at matched KL against the frontier (``method_comparison``)."""
    cells = []
    groups: Dict[tuple, List[dict]] = {}
    for r in runs:
        setting = run_setting(r)
        key = (r.get("method", "ppo"), r.get("reward_arm") or "model", float(r["alpha"]),
               tuple(sorted(setting.items())))
        groups.setdefault(key, []).append(r)
    for (method, arm, alpha, setting), rs in sorted(groups.items()):
        setting = dict(setting)
        beta = setting.get("beta")
        achieved = _achieved(rs)
        predicted = _predicted(predict, alpha, beta, "true") if beta is not None else None
        base = _base(predict, alpha)
        cells.append({"method": method, "reward_arm": arm, "alpha": alpha, "beta": beta, "setting": setting,
                      "n_seeds": len(rs), "seeds": sorted(r["seed"] for r in rs), "achieved": achieved,
                      "predicted": predicted,
                      "predicted_reward_model": _predicted(predict, alpha, beta, "model") if beta is not None else None,
                      "base_true_utility": (base or {}).get("true_utility"),
                      "collapse_realised": collapse_realised(base, achieved, predicted),
                      "on_frontier": frontier_at(predict, alpha, achieved["kl_nats"]["mean"]),
                      "kl_bound_nats": rs[0]["final"].get("kl_bound_nats"),
                      "reward_model": {k: v for k, v in (rs[0].get("reward_model") or {}).items()
                                       if isinstance(v, (int, float, str, list))}})
    base0 = _base(predict, 0.0) or (predict or {}).get("base", [None])[0]
    base = {"true_utility": base0.get("true_utility") if base0 else None,
            "attribute_entropy_bits": base0.get("attribute_entropy_bits") if base0 else None,
            "true_utility_by_alpha": {str(b["alpha"]): b["true_utility"] for b in (predict or {}).get("base", [])},
            "n_samples": (predict or {}).get("n_samples"), "entropy_n": (predict or {}).get("entropy_n"),
            "source": "predict stage: base samples, entropies at entropy_n cards (resampled)" if predict else None}
    ppo_cells = [c for c in cells if c["method"] == "ppo"]
    return {"cells": cells, "base": base, "positive_control": positive_control(controls, predict),
            "matched_kl": matched_kl(ppo_cells), "methods": method_comparison(groups, cells, predict),
            "headline": headline_sentences(ppo_cells or cells, base, positive_control(controls, predict))}


MATCH_TOLERANCE = 1.5  # a seed's nearest setting stands in for a matched KL outside its range within this factor


def _frontier_points(predict: Optional[dict], alpha: float) -> List[dict]:
    base = _base(predict, alpha)
    pts = [p for p in (predict or {}).get("frontier", []) if p["reward_kind"] == "true" and
           math.isclose(p["alpha"], alpha) and not p["beyond_resolution"] and p.get("kl_nats") is not None]
    if base is not None and base.get("true_utility") is not None:
        pts.append({**base, "kl_nats": 0.0})
    return sorted(pts, key=lambda p: p["kl_nats"])


def frontier_at(predict: Optional[dict], alpha: float, kl: Optional[float]) -> Optional[dict]:
    """The predicted frontier (the optimum under the true utility) at KL ``kl``: true utility and attribute
    entropies (at the cells' n and at n -> infinity) interpolated linearly in KL between the frontier's resolved
    points (the base at KL 0); None beyond the largest resolved KL (no extrapolation)."""
    pts = _frontier_points(predict, alpha)
    if kl is None or not math.isfinite(kl) or len(pts) < 2 or not 0 <= kl <= pts[-1]["kl_nats"]:
        return None
    x = [p["kl_nats"] for p in pts]

    def at(get):
        ys = [get(p) for p in pts]
        return None if any(y is None for y in ys) else float(np.interp(kl, x, ys))

    out = {"kl_nats": kl, "true_utility": at(lambda p: p["true_utility"])}
    for key in ("attribute_entropy_bits", "attribute_entropy_bits_infinite_n"):
        out[key] = {a: at(lambda p, a=a: (p.get(key) or {}).get(a)) for a in ATTRIBUTES}
    return out


def _final_metrics(final: dict) -> Dict[str, Optional[float]]:
    """The scalars the method table compares, from one run's final block."""
    out = {"true_utility": final.get("true_utility")}
    for a in ATTRIBUTES:
        out[f"exact_entropy_bits/{a}"] = final.get(f"persona/exact/{a}/marginal_entropy_bits")
        out[f"entropy_bits/{a}"] = final.get(f"persona/attribute_entropy_bits/{a}")
    for a in CROSS_INPUT_ATTRIBUTES:
        for stat in CROSS_INPUT_STATS:
            out[f"cross_input/{stat}/{a}"] = final.get(f"cross_input/{stat}/{a}")
    out["cross_input/identical_persona_share"] = final.get("cross_input/identical_persona_share")
    return out


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _at_kl(finals: List[dict], kl: float) -> Optional[tuple]:
    """(how, metrics) of one seed's curve at ``kl``: interpolated linearly in log KL between that seed's settings
    when ``kl`` lies inside their range; else the nearest setting's own values when its KL is within a factor
    MATCH_TOLERANCE of ``kl`` (a seed with one setting, or one whose range just misses ``kl``); else None."""
    pts = sorted((f["sequence_kl_nats"], _final_metrics(f)) for f in finals
                 if _finite(f.get("sequence_kl_nats")) and f["sequence_kl_nats"] > 0)
    if not pts:
        return None
    x = np.log([p[0] for p in pts])
    if len(pts) == 1 or not x[0] <= math.log(kl) <= x[-1]:
        k0, m = min(pts[0], pts[-1], key=lambda p: abs(math.log(p[0] / kl)))
        return ("nearest", m) if abs(math.log(k0 / kl)) <= math.log(MATCH_TOLERANCE) else None
    out = {}
    for key in pts[0][1]:
        ys = [p[1][key] for p in pts]
        out[key] = float(np.interp(math.log(kl), x, ys)) if all(_finite(y) for y in ys) else None
    return "interpolated", out


def method_comparison(groups: Dict[tuple, List[dict]], cells: List[dict], predict: Optional[dict]) -> dict:
    """The methods at matched KL. The KLs are the PPO cells' achieved KLs (every cell's when no PPO ran). Per
    method arm (method, reward arm, alpha) and seed, the final measurement's true utility, attribute entropies
    (exact and counted) and per-input / cross-input diversity are interpolated linearly in log KL along that seed's
    settings (betas, or n), then pooled over seeds with a t-CI; a seed whose range misses the KL (or that has one
    setting) gives its nearest setting's values when that is within a factor MATCH_TOLERANCE, else it is left out
    (``how`` says which, ``n_seeds`` how many were read). ``frontier`` is the optimum of the objective under the
    true utility at that KL (``frontier_at``)."""
    arms: Dict[tuple, Dict[int, List[dict]]] = {}
    for (method, arm, alpha, _), rs in groups.items():
        for r in rs:
            arms.setdefault((method, arm, alpha), {}).setdefault(r["seed"], []).append(r["final"])
    ref = [c for c in cells if c["method"] == "ppo"] or cells
    grid = sorted({round(c["achieved"]["kl_nats"]["mean"], 6) for c in ref
                   if _finite(c["achieved"]["kl_nats"]["mean"]) and c["achieved"]["kl_nats"]["mean"] > 0})
    rows = []
    for kl in grid:
        alphas = sorted({a for (_, _, a) in arms})
        row = {"kl_nats": kl, "frontier": {str(a): frontier_at(predict, a, kl) for a in alphas}, "arms": []}
        for (method, arm, alpha), by_seed in sorted(arms.items()):
            read = [_at_kl(finals, kl) for _, finals in sorted(by_seed.items())]
            read = [r for r in read if r is not None]
            if not read:
                continue
            keys = read[0][1].keys()
            row["arms"].append({"method": method, "reward_arm": arm, "alpha": alpha,
                                "how": sorted({how for how, _ in read}), "n_seeds": len(read),
                                **{k: interval([m[k] for _, m in read]) for k in keys}})
        rows.append(row)
    return {"matched": rows, "method": "per seed, linear in log KL between that seed's settings, else its nearest "
                                       "setting within the tolerance; t-CI over seeds",
            "tolerance_nearest": MATCH_TOLERANCE}


def matched_kl(cells: List[dict], points: int = 4) -> List[dict]:
    """The arms (alphas) compared at the same achieved KL rather than the same nominal beta: each arm's cell means
    (true utility, attribute entropies) interpolated linearly in log KL along its beta axis, at ``points`` KLs
    inside the range every arm reached. Means only (interpolating a CI has no meaning); [] with fewer than two
    arms of two resolved betas each."""
    arms: Dict[float, List[dict]] = {}
    for c in cells:
        if c["achieved"]["kl_nats"]["mean"] is not None and c["achieved"]["kl_nats"]["mean"] > 0:
            arms.setdefault(c["alpha"], []).append(c)
    arms = {a: sorted(cs, key=lambda c: c["achieved"]["kl_nats"]["mean"]) for a, cs in arms.items() if len(cs) >= 2}
    if len(arms) < 2:
        return []
    lo = max(cs[0]["achieved"]["kl_nats"]["mean"] for cs in arms.values())
    hi = min(cs[-1]["achieved"]["kl_nats"]["mean"] for cs in arms.values())
    if not lo < hi:
        return []
    out = []
    for kl in np.geomspace(lo, hi, points):
        row = {"kl_nats": float(kl), "by_alpha": {}}
        for alpha, cs in arms.items():
            x = np.log([c["achieved"]["kl_nats"]["mean"] for c in cs])

            def at(get):
                ys = [get(c) for c in cs]
                return None if any(y is None for y in ys) else float(np.interp(np.log(kl), x, ys))

            row["by_alpha"][str(alpha)] = {
                "true_utility": at(lambda c: c["achieved"]["true_utility"]["mean"]),
                "attribute_entropy_bits": {a: at(lambda c, a=a: c["achieved"]["attribute_entropy_bits"][a]["mean"])
                                           for a in ATTRIBUTES}}
        out.append(row)
    return out


def positive_control(controls: List[dict], predict: Optional[dict]) -> List[dict]:
    ctl = (predict or {}).get("control")
    by_beta: Dict[float, List[dict]] = {}
    for r in controls:
        by_beta.setdefault(float(r["beta"]), []).append(r)
    out = []
    for beta, rs in sorted(by_beta.items()):
        pred = next((b for b in (ctl or {}).get("betas", []) if math.isclose(b["beta"], beta)), None)
        if pred is None and ctl:
            from rlhf.stages.predict import closed_form_interval

            pred = closed_form_interval(round(ctl["p0"] * ctl["n"]), ctl["n"], ctl["weight"], beta)
        achieved = interval([r["final"].get("control_share") for r in rs])
        share = pred["predicted_share"] if pred else None
        within = None
        if share is not None and achieved["ci95"] is not None:
            within = bool(achieved["ci95"][0] <= share <= achieved["ci95"][1])
        pooled = _pooled_interval(rs)
        out.append({"beta": beta, "predicted_share": share,
                    # stricter than the t-CI over few seeds: every final sample of every seed pooled (Wilson)
                    "achieved_share_pooled_ci95": pooled,
                    "within_pooled_ci": None if share is None or pooled is None else bool(pooled[0] <= share <= pooled[1]),
                    "informative": None if share is None or not ctl else bool(share - ctl["p0"] >= MIN_CONTROL_MOVE),
                    "predicted_share_ci95": pred["predicted_share_ci95"] if pred else None,
                    "achieved_share": achieved, "within_ci": within, "n_seeds": len(rs),
                    "base_share": ctl["p0"] if ctl else None,
                    "achieved_kl_nats": interval([r["final"].get("sequence_kl_nats") for r in rs]),
                    "attribute": (ctl or {}).get("attribute"), "value": (ctl or {}).get("value")})
    return out


def _pooled_interval(runs: List[dict]) -> Optional[list]:
    from rlhf.stages.control import wilson_interval

    n = sum(int(r["final"].get("control_n") or 0) for r in runs)
    hits = sum(round(r["final"].get("control_share", 0) * int(r["final"].get("control_n") or 0)) for r in runs)
    return list(wilson_interval(hits, n)) if n else None


def _share(block: Optional[dict]) -> str:
    if not block:
        return "an unknown share"
    ci = "" if block["ci95"] is None else f" [{100 * block['ci95'][0]:.0f}%, {100 * block['ci95'][1]:.0f}%]"
    return f"{100 * block['mean']:.0f}%{ci}"


def _ci(cell: dict, digits: int = 2) -> str:
    if cell["mean"] is None:
        return "n/a"
    if cell["ci95"] is None:
        return f"{cell['mean']:.{digits}f} (one seed, no CI)"
    return f"{cell['mean']:.{digits}f} [{cell['ci95'][0]:.{digits}f}, {cell['ci95'][1]:.{digits}f}]"


def headline_sentences(cells: List[dict], base: dict, control: List[dict]) -> List[str]:
    """Three sentences: what PPO bought in true utility and KL, what happened to diversity against the prediction
    (a null stated as such), and whether the positive control says the run could have shown an effect."""
    out = []
    with_beta = [c for c in cells if c["beta"] is not None]
    trained = [c for c in with_beta if c["beta"] > 0] or with_beta
    if trained:
        c = min(trained, key=lambda c: c["beta"])
        pred = c["predicted"] or {}
        u0 = c.get("base_true_utility")
        tail = "" if pred.get("true_utility") is None else f"; the optimum of the objective at this beta is " \
                                                           f"{pred['true_utility']:.2f} at {pred['kl_nats']:.2f} nats"
        out.append(f"At beta {c['beta']:g} (alpha {c['alpha']:g}, {c['n_seeds']} seed(s)) PPO moved the annotator's "
                   f"true utility from {u0:.2f} (base) to {_ci(c['achieved']['true_utility'])} at a KL of "
                   f"{_ci(c['achieved']['kl_nats'])} nats{tail}." if u0 is not None else
                   f"At beta {c['beta']:g} PPO reached true utility {_ci(c['achieved']['true_utility'])}.")
    moved, predicted_drop = [], []
    for c in cells:
        pred = (c["predicted"] or {}).get("attribute_entropy_bits") or {}
        for a in ATTRIBUTES:
            h0 = (base.get("attribute_entropy_bits") or {}).get(a)
            ach = c["achieved"]["attribute_entropy_bits"][a]
            if h0 is None or ach["mean"] is None:
                continue
            if a in pred and pred[a] is not None and h0 - pred[a] >= MIN_DROP_BITS:
                predicted_drop.append((c, a, h0, pred[a], ach))
            if ach["ci95"] is not None and not (ach["ci95"][0] <= h0 <= ach["ci95"][1]):
                moved.append((c, a, h0, ach))
    if predicted_drop:
        c, a, h0, hp, ach = max(predicted_drop, key=lambda t: t[2] - t[3])
        out.append(f"The objective predicts {a} entropy to fall from {h0:.2f} to {hp:.2f} bits at alpha "
                   f"{c['alpha']:g}, beta {c['beta']:g}; the trained models reached {_ci(ach)} bits, "
                   f"{_share(c['collapse_realised'][a])} of the predicted collapse.")
    else:
        where = ", ".join(f"{a} at {c['method']} {setting_label(c['setting'])}" for c, a, _, _ in moved[:3])
        out.append("No cell's optimum predicts an attribute entropy drop of "
                   f"{MIN_DROP_BITS:g} bit or more, so unchanged diversity is the predicted answer, not a failed "
                   "reproduction; " + (f"yet the trained models' CIs exclude the base for {where}."
                                       if moved else "the trained models' CIs include the base everywhere they exist."))
    if control:
        parts = [f"{_ci(c['achieved_share'])} vs {c['predicted_share']:.2f} predicted at beta {c['beta']:g}"
                 for c in control if c["predicted_share"] is not None]
        ok = [c["within_ci"] for c in control]
        if not all(c["informative"] for c in control):
            verdict = "but its optimum barely moves from the base share here, so it tests nothing: read nulls above " \
                      "as inconclusive"
        elif all(o is True for o in ok) and all(c["within_pooled_ci"] for c in control):
            verdict = "so this regime reaches the optimum of a reward it is given, and a null above is informative"
        elif all(o is True for o in ok):
            off = [c for c in control if not c["within_pooled_ci"]]
            verdict = ("inside the t-CIs over seeds, but those are wide with few seeds: pooled over seeds the share "
                       + "; ".join(f"at beta {c['beta']:g} is [{c['achieved_share_pooled_ci95'][0]:.2f}, "
                                   f"{c['achieved_share_pooled_ci95'][1]:.2f}]" for c in off)
                       + ", off the closed form, so the regime moves an attribute a reward asks for (a collapse "
                         "could have shown) but does not land on the KL optimum; read sizes, not just signs")
        elif any(o is None for o in ok):
            verdict = "with one seed per beta there is no CI to judge it by: read nulls above as provisional"
        else:
            verdict = "so the regime did not land on a known optimum at every beta: read nulls above as inconclusive"
        out.append(f"The positive control ({control[0]['attribute']} = {control[0]['value']}, base share "
                   f"{control[0]['base_share']:.2f}) reached {'; '.join(parts)}, {verdict}.")
    else:
        out.append("No positive control ran, so a null above cannot be told from a run too weak to move anything.")
    return out


def _errorbar(ax, x: dict, y: dict, **kw):
    if x["mean"] is None or y["mean"] is None:
        return
    xerr = None if x["ci95"] is None else [[x["mean"] - x["ci95"][0]], [x["ci95"][1] - x["mean"]]]
    yerr = None if y["ci95"] is None else [[y["mean"] - y["ci95"][0]], [y["ci95"][1] - y["mean"]]]
    ax.errorbar([x["mean"]], [y["mean"]], xerr=xerr, yerr=yerr, capsize=3, **kw)


def frontier_figure(results: dict, predict: Optional[dict], path: Path) -> None:
    """The report's opening figure: per panel, the predicted frontier (the optimum over a grid of betas, under the
    true utility and under the reward model), best-of-n under both, and every trained cell (mean, t-CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("true_utility", "annotator's true utility")] + \
             [(f"attribute_entropy_bits.{a}", f"{a} entropy (bits, at n = {results['base'].get('entropy_n')})")
              for a in FIGURE_ATTRIBUTES]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5 * (len(panels) + 1), 4.2))

    def value(block, key):
        if block is None:
            return None
        if key.startswith("attribute_entropy_bits."):
            return (block.get("attribute_entropy_bits") or {}).get(key.split(".", 1)[1])
        return block.get(key)

    alphas = sorted({c["alpha"] for c in results["cells"]})
    colours = dict(zip(alphas, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, (key, label) in zip(axes, panels):
        for alpha in alphas:
            col = colours[alpha]
            for kind, style in (("true", "-"), ("model", "--")):
                for series, marker in (("frontier", None), ("best_of_n", "s")):
                    pts = sorted((p["kl_nats"], value(p, key)) for p in (predict or {}).get(series, [])
                                 if p["alpha"] == alpha and p["reward_kind"] == kind and not p["beyond_resolution"]
                                 and value(p, key) is not None)
                    if pts:
                        name = "optimum" if series == "frontier" else "best-of-n"
                        ax.plot(*zip(*pts), ls=style if series == "frontier" else ":", marker=marker, ms=3,
                                color=col, alpha=0.8 if kind == "true" else 0.5,
                                label=f"{name}, {'true utility' if kind == 'true' else 'reward model'}, alpha {alpha:g}")
            for c in results["cells"]:
                if c["alpha"] != alpha:
                    continue
                y = c["achieved"][key] if "." not in key else c["achieved"]["attribute_entropy_bits"][key.split(".")[1]]
                arm = "" if c["method"] in ("ppo", "dpo", "sft_curated") else f" ({c['reward_arm']})"
                _errorbar(ax, c["achieved"]["kl_nats"], y, marker=METHOD_MARKERS.get(c["method"], "o"), color=col,
                          ms=6, mec="black" if c["reward_arm"] != "oracle" else "white",
                          label=f"{c['method']}{arm} {setting_label(c['setting'])} (alpha {alpha:g})"
                          if key == "true_utility" else None)
                if y["mean"] is not None and c["achieved"]["kl_nats"]["mean"] is not None:
                    ax.annotate(setting_label(c["setting"]).split(" ", 1)[-1],
                                (c["achieved"]["kl_nats"]["mean"], y["mean"]), fontsize=7,
                                xytext=(4, 4), textcoords="offset points")
        b = value(results["base"], key)
        if b is not None:
            ax.axhline(b, color="grey", ls=":", lw=1)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("KL(pi || pi0), nats")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=6)
    ax = axes[-1]
    ctl = results.get("positive_control") or []
    pc = (predict or {}).get("control")
    if pc:
        from rlhf.stages.control import closed_form_share

        grid = np.geomspace(0.05, 5, 60)
        ax.plot(grid, [closed_form_share(pc["p0"], pc["weight"], b) for b in grid], color="black", lw=1,
                label="closed form")
        ax.axhline(pc["p0"], color="grey", ls=":", lw=1, label="base share")
    for c in ctl:
        a = c["achieved_share"]
        if a["mean"] is not None:
            yerr = None if a["ci95"] is None else [[a["mean"] - a["ci95"][0]], [a["ci95"][1] - a["mean"]]]
            ax.errorbar([c["beta"]], [a["mean"]], yerr=yerr, marker="o", capsize=3, color="C3")
            ax.scatter([c["beta"]] * len(a["values"]), a["values"], s=10, color="C3", alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("beta")
    ax.set_ylim(0, 1)
    ax.set_title("positive control: share of the rewarded value", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    fig.suptitle("Trained models (mean, 95% t-CI over seeds) on the predicted frontier of the KL-regularised objective")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def methods_figure(results: dict, predict: Optional[dict], path: Path) -> None:
    """The methods on two planes against the predicted frontier: (KL, true utility) and (KL, exact first-name and
    nationality entropy; the frontier's at n -> infinity, the comparable number), every cell's mean and t-CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("true_utility", "annotator's true utility")] + \
             [(a, f"{a} entropy, exact (bits)") for a in FIGURE_ATTRIBUTES[::-1]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4))
    alphas = sorted({c["alpha"] for c in results["cells"]})
    methods = sorted({(c["method"], c["reward_arm"]) for c in results["cells"]})
    colours = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    for ax, (key, label) in zip(axes, panels):
        for alpha in alphas:
            pts = _frontier_points(predict, alpha)
            if key == "true_utility":
                xy = [(p["kl_nats"], p.get("true_utility")) for p in pts]
            else:
                xy = [(p["kl_nats"], (p.get("attribute_entropy_bits_infinite_n") or {}).get(key)) for p in pts]
            xy = [(x, y) for x, y in xy if y is not None]
            if xy:
                ax.plot(*zip(*xy), color="black", lw=1, label=f"optimum (true utility), alpha {alpha:g}")
            for kind, style in (("true", ":"), ("model", "-.")):  # predicted best-of-n from the base samples
                bon = sorted((p["kl_nats"], p.get("true_utility") if key == "true_utility" else
                              (p.get("attribute_entropy_bits_infinite_n") or {}).get(key))
                             for p in (predict or {}).get("best_of_n", []) if p["reward_kind"] == kind and
                             math.isclose(p["alpha"], alpha) and not p["beyond_resolution"])
                bon = [(x, y) for x, y in bon if y is not None]
                if bon:
                    ax.plot(*zip(*bon), color="grey", ls=style, lw=1, marker="s", ms=2,
                            label=f"best-of-n predicted ({'true utility' if kind == 'true' else 'reward model'})")
        for c in results["cells"]:
            y = c["achieved"]["true_utility"] if key == "true_utility" else \
                c["achieved"]["attribute_entropy_exact_bits"][key]
            arm = f" ({c['reward_arm']})" if c["method"] in ("rloo", "grpo", "bon", "rft") else ""
            _errorbar(ax, c["achieved"]["kl_nats"], y, marker=METHOD_MARKERS.get(c["method"], "o"),
                      color=colours[(c["method"], c["reward_arm"])], ms=6, ls="none",
                      label=f"{c['method']}{arm}" if key == "true_utility" else None)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("KL(pi || pi0), nats")
        ax.set_title(label, fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes[0].legend(unique.values(), unique.keys(), fontsize=6)
    fig.suptitle("Alignment methods (mean, 95% t-CI over seeds; one point per setting) against the optimum of the "
                 "KL-regularised objective", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def overoptimisation_figure(runs: List[dict], path: Path) -> None:
    """Per run, over training: the annotator's true utility and the reward PPO maximises against the KL to the base
    (Gao et al. 2023), from the diversity callback's measurements (``truth/*``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for r in sorted(runs, key=lambda r: (r.get("reward", "model"), r["alpha"], r["run"], r["seed"])):
        rows = [h for h in r.get("history", []) if "truth/kl_nats" in h]
        if not rows:
            continue
        kl = [h["truth/kl_nats"] for h in rows]
        label = r["run"]
        axes[0].plot(kl, [h["truth/true_utility"] for h in rows], marker="o", ms=3, label=label)
        axes[1].plot(kl, [h["truth/reward_score"] for h in rows], marker="o", ms=3, label=label)
    axes[0].set_title("annotator's true utility over training", fontsize=9)
    axes[1].set_title("reward PPO maximises over training", fontsize=9)
    for ax in axes:
        ax.set_xlabel("KL(pi || pi0) of the measurement's samples, nats")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
