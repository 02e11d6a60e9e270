"""Option scoring through an OpenAI-compatible server: how many sentiment predictions it decides.

    python scripts/measure_openai_scoring.py --url http://127.0.0.1:8102/v1 --n 20 [--hf]
    python scripts/measure_openai_scoring.py --url ... --root /tmp/before   # an older sce_checks tree

Scores the prediction prompts of the first N examples of the built-in sentiment task (file order)
with the openai backend of the ``sce_checks`` package found under ``--root`` (default: this
checkout) and counts rows that are undecided (every option ``-inf``), exact ties (every option
the same finite score: the arg-max then falls to the first option, which is no decision) and
decided. With ``--hf`` the embedded ``smollm2`` model (the hf backend: whole-reply
log-probabilities, same weights as the served GGUF) scores the same prompts and the arg-max
agreement is printed. Used for the figures in docs/backends-openai.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8102/v1")
    parser.add_argument("--model", default="smollm2", help="the served model's name")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]),
                        help="folder holding the sce_checks package to measure")
    parser.add_argument("--hf", action="store_true", help="compare with the embedded smollm2 (hf backend)")
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    import sce_checks
    from sce_checks.models.openai import OpenAIChatModel
    from sce_checks.prompts import text as prompts
    from sce_checks.prompts.common import canonical_answer
    from sce_checks.tasks import load_task

    print(f"sce_checks from {Path(sce_checks.__file__).parent}")
    task = load_task("sentiment")
    examples = list(task.examples)[: args.n]
    conversations = [prompts.prediction_conversation(task, e.text) for e in examples]
    replies = [canonical_answer(o) for o in task.options]
    model = OpenAIChatModel(args.model, args.url, max_concurrency=2, timeout_s=300)
    started = time.perf_counter()
    rows = model.score_options(conversations, replies)
    wall = time.perf_counter() - started
    probe = getattr(model, "scoring_support", None)
    method = probe() if probe else "walk (no detection in this version)"
    undecided = sum(1 for r in rows if max(r) == -math.inf)
    ties = sum(1 for r in rows if max(r) > -math.inf and len(set(r)) == 1)
    print(f"{args.url}: {method}")
    print(f"{len(rows)} predictions: undecided {undecided}, exact ties {ties}, decided {len(rows) - undecided - ties} ({wall:.0f} s)")
    if not args.hf:
        return
    from sce_checks.models import ModelOptions, load_model

    hf_rows = load_model("smollm2", ModelOptions(batch_size=4)).score_options(conversations, replies)

    def first_prob(row):
        top = max(row)
        weights = [math.exp(s - top) for s in row]
        return weights[0] / sum(weights)

    decided = [(h, o) for h, o in zip(hf_rows, rows) if max(o) > -math.inf and len(set(o)) > 1]
    agree = sum(1 for h, o in decided if h.index(max(h)) == o.index(max(o)))
    gap = sum(abs(first_prob(h) - first_prob(o)) for h, o in decided) / max(1, len(decided))
    print(f"against hf (whole-reply log-probabilities): arg-max agrees on {agree}/{len(decided)} decided rows; "
          f"mean |P_hf({task.options[0]}) - P_server({task.options[0]})| = {gap:.3f}")


if __name__ == "__main__":
    main()
