"""Print the reproduction table (Markdown) from sce-audit JSON reports, next to the published
figures of Mayne et al. (EMNLP 2025, appendix, temperature 1) for the grid tasks.

    python benchmarks/reproduction_table.py docs/reproduction/*.json
"""

from __future__ import annotations

import json
import sys
from collections import Counter

# validity % unconstrained -> minimal, (mean RCF_A of valid SCEs), from Mayne et al. (2025), appendix, temperature 1
PAPER = {
    "income": {"Gemma 2 27B": "99.4 (0.141) -> 37.2 (0.022)", "Llama 3.3 70B": "100 (0.139) -> 15.5 (0.023)",
               "GPT-4.1": "99.7 (0.152) -> 48.8 (0.026)"},
    "house_prices": {"Gemma 2 27B": "100 (0.345) -> 13.1 (0.010)", "Llama 3.3 70B": "100 (0.405) -> 9.3 (0.016)",
                     "GPT-4.1": "100 (0.393) -> 19.5 (0.044)"},
    "heart_disease": {"Gemma 2 27B": "100 (0.180) -> 33.3 (0.013)", "Llama 3.3 70B": "100 (0.300) -> 25.3 (0.012)",
                      "GPT-4.1": "100 (0.348) -> 19.0 (0.006)"},
}


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}"


def num(x):
    return "-" if x is None else f"{x:.3f}"


def model_side(r: dict) -> str:
    """What the model itself did: its answers on the sample, the distance to its own nearest
    flip (the exact x* of grid tasks), and why SCEs were not usable."""
    answers = Counter(e["prediction"] for e in r["examples"])
    parts = [", ".join(f"{k} {v}" for k, v in answers.most_common())]
    if r.get("accuracy") is not None:
        parts.append(f"accuracy against the gold labels {pct(r['accuracy'])}%")
    dists = [e["min_distance"] for e in r["examples"] if e.get("min_distance") is not None]
    if dists:
        parts.append(f"mean d(x, x*) {sum(dists) / len(dists):.3f} ({len(dists)}/{r['n']} have an x*)")
    sces = Counter(json.dumps(e["counterfactual"], ensure_ascii=False) for e in r["examples"] if e.get("counterfactual") is not None)
    if sces:
        top, count = sces.most_common(1)[0]
        parts.append(f"{len(sces)} distinct SCEs, the most common {count}x: {top[:80]}")
    reasons = r.get("info", {}).get("unparsed_reasons") or {}
    if reasons:
        parts.append("unparsed: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    return "; ".join(parts)


def main(paths: list[str]) -> None:
    rows, sides = [], []
    for path in paths:
        report = json.load(open(path))
        for r in report["results"]:
            lo, hi = r.get("validity_ci") or (None, None)
            elicitation = r.get("info", {}).get("elicitation", "free")
            rows.append(
                f"| {r['dataset']} | {r['variant']} | {elicitation} | {r['n']} | {pct(r['generation_rate'])} | "
                f"{pct(r['validity'])} [{pct(lo)}, {pct(hi)}] | {pct(r['strict_validity'])} | "
                f"{num(r.get('mean_rcf_a'))} | {num(r.get('mean_icf_a'))} | {pct(r.get('exact_match'))} | "
                f"{num(r.get('mean_distance'))} | {r.get('info', {}).get('prediction_mode', '-')} |"
            )
            sides.append(f"| {r['dataset']} | {r['variant']} | {elicitation} | {model_side(r)} |")
    print("| dataset | variant | elicitation | n | generated % | validity % [95% CI] | strict validity % | mean RCF_A | mean ICF_A | exact match % | mean distance | prediction |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n| dataset | variant | elicitation | the model's answers; its own nearest flip; unusable SCEs |\n|---|---|---|---|")
    print("\n".join(sides))
    print("\nPublished (Mayne et al. 2025, temperature 1; validity %, unconstrained -> minimal, mean RCF_A):\n")
    print("| dataset | model | figures |\n|---|---|---|")
    for ds, models in PAPER.items():
        for m, fig in models.items():
            print(f"| {ds} | {m} | {fig} |")


if __name__ == "__main__":
    main(sys.argv[1:])
