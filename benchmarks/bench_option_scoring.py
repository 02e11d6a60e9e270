"""Option scoring on the embedded model: shared-prompt KV-cache scoring against the naive way.

For N prompts of the income grid task (Mayne et al. 2025 prediction prompt) this times, in one run:
  (a) greedy generation of the answer (what a chat-only backend must do),
  (b) naive scoring: every (prompt, option) pair as its own full sequence, batched and
      left-padded, so the prompt runs once per option,
  (c) `HFChatModel.score_options`: each prompt runs once, its KV cache is repeated per option
      and only the options' tokens run again,
checks that (b) and (c) agree, and prints the ratios.

    python benchmarks/bench_option_scoring.py --n 32 --batch-size 8
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sce_checks.models import Decoding, ModelOptions, load_model  # noqa: E402
from sce_checks.prompts.common import canonical_answer  # noqa: E402
from sce_checks.prompts.grid import prediction_conversation  # noqa: E402
from sce_checks.tasks.builtin_grids import INCOME  # noqa: E402


def naive_scores(model, conversations, options, batch_size):
    """Log p(option | prompt) with each prompt+option as its own full sequence."""
    rows, spans = [], []
    for conversation in conversations:
        prompt = model.prompt_ids(conversation)
        for option in options:
            cont = model.continuation_ids(conversation, option, prompt)
            rows.append(prompt + cont)
            spans.append(len(cont))
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            chunk, chunk_spans = rows[start : start + batch_size], spans[start : start + batch_size]
            ids, mask, positions = model._left_pad(chunk)
            keep = max(chunk_spans) + 1
            logits = model.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for r, (row, span) in enumerate(zip(chunk, chunk_spans)):
                targets = torch.tensor(row[-span:])
                cols = torch.arange(keep - 1 - span, keep - 1)
                out.append(float(logp[r, cols, targets].double().sum()))
    return [out[i : i + len(options)] for i in range(0, len(out), len(options))]


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="number of income-grid prompts")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16, help="enough for {\"answer\": \"Below $50,000\"}")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, load_s = timed(lambda: load_model("smollm2", ModelOptions(batch_size=args.batch_size)))
    step = max(1, INCOME.size // args.n)
    conversations = [prediction_conversation(INCOME, INCOME.point_at(i * step)) for i in range(args.n)]
    options = [canonical_answer(o) for o in INCOME.options]
    prompt_tokens = sum(len(model.prompt_ids(c)) for c in conversations) / len(conversations)

    model.score_options(conversations[:2], options)  # warm-up (allocator, kernels)
    replies, gen_s = timed(lambda: model.chat(conversations, Decoding(max_new_tokens=args.max_new_tokens)))
    naive, naive_s = timed(lambda: naive_scores(model, conversations, options, args.batch_size))
    shared, shared_s = timed(lambda: model.score_options(conversations, options))
    diff = max(abs(a - b) for ra, rb in zip(naive, shared) for a, b in zip(ra, rb))
    agree = sum(max(range(len(options)), key=r.__getitem__) == max(range(len(options)), key=s.__getitem__)
                for r, s in zip(naive, shared))

    print(f"device={model.runtime()['device']} dtype={model.runtime()['dtype']} torch threads={torch.get_num_threads()} "
          f"cpu={platform.processor() or platform.machine()} load={load_s:.2f}s")
    print(f"N={args.n} prompts (mean {prompt_tokens:.0f} prompt tokens), {len(options)} options, batch size {args.batch_size}")
    print(f"(a) greedy generation, {args.max_new_tokens} new tokens : {gen_s:7.2f} s  {args.n / gen_s:6.2f} prompts/s")
    print(f"(b) naive scoring, prompt per option    : {naive_s:7.2f} s  {args.n / naive_s:6.2f} prompts/s")
    print(f"(c) shared-prompt KV-cache scoring      : {shared_s:7.2f} s  {args.n / shared_s:6.2f} prompts/s")
    print(f"speed-up of (c): {gen_s / shared_s:.2f}x over (a), {naive_s / shared_s:.2f}x over (b)")
    print(f"(b) vs (c): max |log-prob difference| = {diff:.2e}; same argmax on {agree}/{args.n} prompts")
    print(f"replies exactly equal to a canonical answer: {sum(r in options for r in replies)}/{args.n}")


if __name__ == "__main__":
    main()
