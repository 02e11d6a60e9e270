"""A real run of the self-consistency check on the embedded model, for docs/self-consistency.md.

    python benchmarks/self_consistency_smollm2.py [LIMIT] [METHOD]

Samples LIMIT sentiment snippets (seed 0, the audit's sampling), attributes the decision and the
explanation to the snippet's words, and prints the figures and one line per example.
"""

from __future__ import annotations

import sys
import time

from sce_checks.checks.self_consistency import SelfConsistencySettings, run_self_consistency
from sce_checks.models.opening import ModelOpener
from sce_checks.tasks import load_task, task_examples


def main(limit: int = 5, method: str = "feature_ablation") -> None:
    model = ModelOpener().open("smollm2")
    task = load_task("sentiment")
    examples = task_examples(task, limit, 0)
    started = time.perf_counter()
    result = run_self_consistency(model, "smollm2", task, examples, SelfConsistencySettings(method=method))
    seconds = time.perf_counter() - started
    figures = {k: v for k, v in result.figures.items() if isinstance(v, (int, float)) or v is None}
    print(f"method {method}, n {result.n}, {seconds:.0f} s")
    print(" | ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
    for e in result.examples:
        x = e.extra
        l1 = "-" if x.get("l1_dot") is None else f"{x['l1_dot']:.3f}"
        rho = "-" if x.get("spearman") is None else f"{x['spearman']:.3f}"
        print(f"{e.id}\t{e.prediction}\twords {len(x.get('words', []))}\tl1_dot {l1}\tspearman {rho}\t"
              f"{(x.get('explanation') or '')[:70]!r}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5, sys.argv[2] if len(sys.argv) > 2 else "feature_ablation")
