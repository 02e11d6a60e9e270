"""Where one scoring pass spends its time: ``torch.profiler`` over ``score_options`` on random
income grid prompts with the embedded SmolLM2-135M-Instruct (fp32, CPU), after a warm-up call.
Prints the wall time per prompt and the operators by their own CPU time (docs/performance.md,
"Where the time goes").

    python benchmarks/profile_scoring.py               # 96 prompts, torch's thread count
    python benchmarks/profile_scoring.py --n 32 --threads 1
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from sce_checks.models import ModelOptions, load_model  # noqa: E402
from sce_checks.prompts import grid as grid_prompts  # noqa: E402
from sce_checks.prompts.common import canonical_answer  # noqa: E402
from sce_checks.tasks import load_task  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96, help="income prompts (default 96)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    task = load_task("income")
    model = load_model("smollm2", ModelOptions())
    points = random.Random(args.seed).sample(range(task.size), args.n)
    conversations = [grid_prompts.prediction_conversation(task, task.point_at(i)) for i in points]
    options = [canonical_answer(o) for o in task.options]
    model.score_options(conversations, options)  # warm-up: the shared prefix is remembered after it
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        model.score_options(conversations, options)
        seconds = time.perf_counter() - started
    print(f"{args.n} income prompts x {len(options)} options in {seconds:.2f} s ({seconds / args.n:.3f} s per prompt, "
          f"{torch.get_num_threads()} threads, under the profiler)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return 0


if __name__ == "__main__":
    sys.exit(main())
