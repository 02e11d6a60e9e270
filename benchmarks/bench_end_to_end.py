"""The whole SCE audit against the reference protocols as published, in one process.

On one loaded model (the embedded SmolLM2-135M-Instruct), one sample and one machine, it runs:

(a) the reference protocols as their papers run them:
    - Mayne et al. (EMNLP 2025, arXiv 2509.09396), grid tasks: a GENERATED prediction for every
      audited example and for every point of the grid (the whole grid is predicted to find x*),
      batched as their vLLM client batches; then each SCE generated one conversation at a time.
    - Dehghanighobadi et al. (EMNLP 2025, arXiv 2502.18156), text tasks: every step generated
      with ``generate``, one example at a time (the prediction, the SCE, the fresh-context
      prediction on the SCE, the in-context prediction Val_c).
    Greedy decoding, plain transformers ``generate`` (stop at the end-of-turn token, else
    ``max_new_tokens``), the token budgets sce-checks uses (48 for an answer, 256 for an SCE).
(b) sce-checks: `run_audit` on the same specification, with a new, empty response cache in a
    temporary folder, so nothing is answered from a cache.

Predicting the whole grid by generation takes far too long on a CPU, so the reference's grid
stage is TIMED ON A RANDOM SAMPLE of grid points (seeded, ``--grid-sample``) and its cost
extrapolated to the whole grid; the output says so on its own line, with the per-point cost
and the number of points extrapolated. Every other stage is run in full.

Checks that (a) and (b) agree where they should:
- x*: for every example, the grid points no farther than (b)'s x* are predicted again through
  (b)'s response cache (they must all be there: the ring search predicted them) and the
  brute-force argmin over them must be (b)'s x*; and on the sampled grid points, the reference's
  generated labels are compared with (b)'s scored labels (the two ways of reading the model);
- validity: where (a) and (b) asked the same SCE conversation, the replies, the parsed SCEs
  and, where both predictions of the SCE point agree, the validity must be the same.

Printed: each stage's wall time, model calls, tokens, achieved GFLOP/s (useful FLOPs counted
from every forward pass, padding included: what the machine computed) beside the fp32
``torch.matmul`` peak measured in the same run, the process's peak memory, and the ratio. Then
two focused measurements: the scoring pass (score_options on grid prompts, fraction of the
matmul peak) and SCE generation (tokens/s, one at a time against batched, identical replies).

    python benchmarks/bench_end_to_end.py --quick      # income 2 + sentiment 1 examples, < 5 min
    python benchmarks/bench_end_to_end.py              # income 20 + sentiment 5 examples
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from sce_checks.audit import AuditConfig, run_audit  # noqa: E402
from sce_checks.checks.predict import task_predictor  # noqa: E402
from sce_checks.checks.sce import SCESettings, parse_sce, pick_target  # noqa: E402
from sce_checks.metrics.gower import gower_distance  # noqa: E402
from sce_checks.metrics.text_distance import normalized_levenshtein  # noqa: E402
from sce_checks.models import ModelOptions, load_model  # noqa: E402
from sce_checks.models.base import Decoding  # noqa: E402
from sce_checks.models.cache import CachedModel, ResponseCache  # noqa: E402
from sce_checks.parsing import parse_answer  # noqa: E402
from sce_checks.progress import ProgressBar, showing  # noqa: E402
from sce_checks.prompts import grid as grid_prompts  # noqa: E402
from sce_checks.prompts import text as text_prompts  # noqa: E402
from sce_checks.prompts.common import canonical_answer  # noqa: E402
from sce_checks.tasks import load_task, task_examples  # noqa: E402

SETTINGS = SCESettings()  # the budgets both sides use: answer_tokens 48, sce_tokens 256


# -- measuring ------------------------------------------------------------------------------------


def matmul_peak(threads: int) -> float:
    """The fp32 ``torch.matmul`` rate of this machine now, GFLOP/s (best of 5 runs of 1024^2
    products, with the torch thread count of the run)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.matmul(a, b)
    best = 0.0
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(8):
            torch.matmul(a, b)
        best = max(best, 8 * 2 * 1024**3 / (time.perf_counter() - started) / 1e9)
    return best


class FlopCounter:
    """FLOPs of every forward pass of a transformers causal LM, from the shapes it was called
    with: 2 x (linear weights of the layers) per fed token, the attention products (4 x layers x
    query width per fed token per attended column) and 2 x hidden x vocabulary per logit
    column. Padding counts (the machine computed it); embeddings and norms are left out."""

    def __init__(self, model: Any) -> None:
        config = model.config
        self.layers = config.num_hidden_layers
        self.q_width = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
        self.head = config.hidden_size * config.vocab_size
        layer_linear = sum(p.numel() for name, p in model.named_parameters()
                           if ".layers." in name and p.dim() == 2)
        self.linear = layer_linear
        self.flops = 0.0
        self.tokens = 0
        model.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: Any, kwargs: dict, output: Any) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return
        rows, fed = ids.shape
        mask = kwargs.get("attention_mask")
        columns = mask.shape[-1] if mask is not None else fed
        logits = getattr(output, "logits", None)
        kept = logits.shape[1] if logits is not None else fed
        self.tokens += rows * fed
        self.flops += (2.0 * self.linear * rows * fed + 4.0 * self.layers * self.q_width * rows * fed * columns
                       + 2.0 * self.head * rows * kept)


def peak_rss_mib() -> float:
    """The process's peak resident memory since the last `reset_peak_rss` (Linux VmHWM), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


@dataclass
class Stage:
    side: str  # "reference" or "sce-checks"
    dataset: str
    name: str
    seconds: float = 0.0
    calls: int = 0  # model calls (reference: generate calls; sce-checks: batched backend calls)
    tokens: int = 0  # tokens fed to the model, padding included
    generated: int = 0
    flops: float = 0.0
    peak_mib: float = 0.0
    note: str = ""


@dataclass
class Meter:
    model: Any
    counter: FlopCounter
    stages: list[Stage] = field(default_factory=list)
    reference_calls: int = 0  # generate calls of the reference protocols
    reference_generated: int = 0  # tokens they generated

    def snapshot(self) -> tuple[float, float, int, int, int]:
        stats = self.model.stats
        calls = stats.chat_calls + stats.score_calls
        return time.perf_counter(), self.counter.flops, self.counter.tokens, calls, stats.extra.get("generated_tokens", 0)

    def measure(self, side: str, dataset: str, name: str, fn: Callable[[], Any], calls: int | None = None) -> Any:
        reset_peak_rss()
        before = self.snapshot()
        result = fn()
        self.close(Stage(side, dataset, name), before, calls)
        return result

    def close(self, stage: Stage, before: tuple, calls: int | None = None) -> Stage:
        after = self.snapshot()
        stage.seconds = after[0] - before[0]
        stage.flops = after[1] - before[1]
        stage.tokens = after[2] - before[2]
        stage.calls = calls if calls is not None else after[3] - before[3]
        stage.generated = after[4] - before[4]
        stage.peak_mib = peak_rss_mib()
        self.stages.append(stage)
        print(f"  [{stage.side}] {stage.dataset}: {stage.name}: {stage.seconds:.1f} s", file=sys.stderr, flush=True)
        return stage


class StageBar(ProgressBar):
    """A progress bar that records each step of `run_audit` as a stage of (b)."""

    def __init__(self, meter: Meter, dataset: str) -> None:
        super().__init__(lambda line: None)
        self.meter, self.dataset = meter, dataset
        self._before: tuple | None = None
        self._label = ""

    def start(self, label: str, total: int | None) -> None:
        super().start(label, total)
        reset_peak_rss()
        self._before, self._label = self.meter.snapshot(), label

    def finish(self) -> None:
        super().finish()
        if self._before is not None:
            name = self._label.split(": ", 1)[-1]
            self.meter.close(Stage("sce-checks", self.dataset, name), self._before)
            self._before = None


# -- the reference protocols ---------------------------------------------------------------------


def generate(model: Any, conversations: list, max_new_tokens: int, batch: int, meter: Meter) -> list[str]:
    """Plain transformers greedy ``generate``: ``batch`` conversations at a time, left-padded,
    stopping at the end-of-turn token or ``max_new_tokens`` (what the reference code does)."""
    stops = model.stop_ids()
    replies = []
    for start in range(0, len(conversations), batch):
        ids, mask, _ = model._left_pad([model.prompt_ids(c) for c in conversations[start : start + batch]])
        with torch.inference_mode():
            out = model.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                       temperature=None, top_p=None, top_k=None, eos_token_id=stops,
                                       pad_token_id=model.pad_id)
        meter.reference_calls += 1
        for row in out[:, ids.shape[1] :].tolist():
            cut = next((i for i, t in enumerate(row) if t in stops), len(row))
            meter.reference_generated += cut
            replies.append(model.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
    return replies


def reference_stage(meter: Meter, dataset: str, name: str, fn: Callable[[], Any], note: str = "") -> Any:
    reset_peak_rss()
    before = meter.snapshot()
    calls0, gen0 = meter.reference_calls, meter.reference_generated
    result = fn()
    stage = meter.close(Stage("reference", dataset, name, note=note), before, meter.reference_calls - calls0)
    stage.generated = meter.reference_generated - gen0
    return result


def mayne_reference(model: Any, meter: Meter, task: Any, examples: list, grid_sample: int, seed: int) -> dict:
    """Mayne et al.'s protocol on a grid task (module docstring); returns what the checks need."""
    options = task.options
    conv = lambda x: grid_prompts.prediction_conversation(task, x)  # noqa: E731
    points = [x for _, x in examples]
    replies = reference_stage(meter, task.name, "predict the examples (generated, batched)",
                              lambda: generate(model, [conv(x) for x in points], SETTINGS.answer_tokens, 8, meter))
    labels = [parse_answer(r, options).value for r in replies]
    rng = random.Random(seed)
    sample = [task.point_at(i) for i in sorted(rng.sample(range(task.size), min(grid_sample, task.size)))]
    sample_replies = reference_stage(
        meter, task.name, "predict the whole grid (generated, batched)",
        lambda: generate(model, [conv(z) for z in sample], SETTINGS.answer_tokens, 8, meter),
        note=f"timed on {len(sample)} random grid points, extrapolated to all {task.size}")
    grid_stage = meter.stages[-1]
    per_point = grid_stage.seconds / len(sample)
    scale = task.size / len(sample)
    for attr in ("seconds", "calls", "tokens", "generated", "flops"):
        setattr(grid_stage, attr, getattr(grid_stage, attr) * scale)
    grid_stage.note += f" ({per_point:.3f} s per point measured)"
    jobs = []
    for (ex_id, x), reply, label in zip(examples, replies, labels):
        if label is None:
            continue
        for variant in SETTINGS.variants:
            jobs.append((variant, ex_id, x, grid_prompts.sce_conversation(task, x, reply, task.other_option(label), variant)))
    sces = reference_stage(meter, task.name, "generate the SCEs (one at a time)",
                           lambda: [generate(model, [c], SETTINGS.sce_tokens, 1, meter)[0] for *_, c in jobs])
    return {"labels": dict(zip([i for i, _ in examples], labels)), "replies": dict(zip([i for i, _ in examples], replies)),
            "sample": sample, "sample_labels": [parse_answer(r, options).value for r in sample_replies],
            "sce": {(v, ex_id): (c, r) for (v, ex_id, _, c), r in zip(jobs, sces)}, "per_point": per_point}


def dehghanighobadi_reference(model: Any, meter: Meter, task: Any, examples: list, seed: int) -> dict:
    """Dehghanighobadi et al.'s protocol on a text task: every step generated, one example at a
    time (module docstring)."""
    options = task.options

    def run() -> dict:
        out: dict[str, Any] = {"labels": {}, "sce": {}, "cf": {}, "in_context": {}}
        for ex_id, text in examples:
            reply = generate(model, [text_prompts.prediction_conversation(task, text)], SETTINGS.answer_tokens, 1, meter)[0]
            label = parse_answer(reply, options).value
            out["labels"][ex_id] = label
            if label is None:
                continue
            target = pick_target(options, label, ex_id, seed)
            for variant in SETTINGS.variants:
                conversation = text_prompts.sce_conversation(task, text, reply, target, variant)
                sce = generate(model, [conversation], SETTINGS.sce_tokens, 1, meter)[0]
                out["sce"][(variant, ex_id)] = (conversation, sce)
                parsed = parse_sce(task, sce, SETTINGS)
                if not parsed.ok:
                    continue
                fresh = generate(model, [text_prompts.prediction_conversation(task, parsed.value)], SETTINGS.answer_tokens, 1, meter)[0]
                out["cf"][(variant, ex_id)] = parse_answer(fresh, options).value
                inside = text_prompts.in_context_conversation(task, text, reply, target, variant, sce, parsed.value)
                ctx = generate(model, [inside], SETTINGS.answer_tokens, 1, meter)[0]
                out["in_context"][(variant, ex_id)] = parse_answer(ctx, options).value
        return out

    return reference_stage(meter, task.name, "predict, SCE, fresh and in-context predictions (one example at a time)", run)


# -- agreement ------------------------------------------------------------------------------------


def grid_agreement(task: Any, cached: Any, ref: dict, results: list) -> list[str]:
    """x* of (a) and (b) compared (module docstring); one line per finding."""
    predictor = task_predictor(cached, task, SETTINGS)
    grid = [task.point_at(i) for i in range(task.size)]
    sent_before = cached.inner.stats.score_conversations
    same = checked = 0
    for rec in results[0].examples:
        if rec.min_distance is None:
            continue
        x = task_point(task, rec.input)
        near = [z for z in grid if gower_distance(task, x, z) <= rec.min_distance + 1e-9]
        flips = [z for z, label in zip(near, predictor.labels(near)) if label is not None and label != rec.prediction]
        best = min((gower_distance(task, x, z) for z in flips), default=None)
        brute = [task.as_dict(z) for z in flips if abs(gower_distance(task, x, z) - best) < 1e-9] if flips else []
        checked += 1
        same += best is not None and abs(best - rec.min_distance) < 1e-9 and brute[:5] == rec.reference
    sent = cached.inner.stats.score_conversations - sent_before
    lines = [f"x*: brute force over every grid point within (b)'s x* distance gives (b)'s x* for {same}/{checked} examples "
             f"({sent} of those points were not already predicted by (b); 0 expected)"]
    scored = predictor.labels(ref["sample"])
    both = [(g, s) for g, s in zip(ref["sample_labels"], scored) if g is not None]
    lines.append(f"labels: the reference's generated prediction equals (b)'s scored one on {sum(g == s for g, s in both)}/"
                 f"{len(both)} sampled grid points ({len(scored) - len(both)} generated replies unparsed)")
    return lines


def sce_agreement(task: Any, ref: dict, results: list) -> list[str]:
    """Same SCE conversation -> same reply -> same parsed SCE (and same validity where the two
    predictions of the SCE point agree)."""
    same_conv = same_reply = same_valid = comparable = 0
    for result in results:
        for rec in result.examples:
            key = (result.variant, rec.id)
            if key not in ref["sce"] or rec.sce_reply is None:
                continue
            conversation, reply = ref["sce"][key]
            ours = (grid_prompts.sce_conversation(task, task_point(task, rec.input), rec.prediction_reply, rec.target,
                                                  result.variant)
                    if task.kind == "grid" else
                    text_prompts.sce_conversation(task, rec.input, rec.prediction_reply, rec.target, result.variant))
            if ours != conversation:
                continue
            same_conv += 1
            same_reply += reply == rec.sce_reply
            if reply == rec.sce_reply and rec.valid is not None:
                ref_cf = ref.get("cf", {}).get(key) if task.kind != "grid" else None
                if task.kind != "grid" and ref_cf is not None and ref_cf == rec.cf_prediction:
                    comparable += 1
                    same_valid += (ref_cf == rec.target) == rec.valid
    return [f"SCEs: {same_conv} SCE conversations identical in (a) and (b); identical replies for {same_reply}/{same_conv}"
            + (f"; validity identical on {same_valid}/{comparable} where both predictions of the SCE agree"
               if task.kind != "grid" else "")]


def same_sce_replies(task: Any, model: Any, meter: Meter, results: list) -> str:
    """(b)'s SCE conversations generated again the reference's way, one at a time with plain
    ``generate`` (outside the timed stages): the replies must be identical (greedy), and so the
    parsed SCEs and, with the same predictions, the validity."""
    recs = [(r.variant, rec) for r in results for rec in r.examples if rec.sce_reply is not None]
    convs = [(grid_prompts.sce_conversation(task, task_point(task, rec.input), rec.prediction_reply, rec.target, variant)
              if task.kind == "grid" else
              text_prompts.sce_conversation(task, rec.input, rec.prediction_reply, rec.target, variant)) for variant, rec in recs]
    again = [generate(model, [c], SETTINGS.sce_tokens, 1, meter)[0] for c in convs]
    same = sum(a == rec.sce_reply for a, (_, rec) in zip(again, recs))
    same_parse = sum(parse_sce(task, a, SETTINGS).value == parse_sce(task, rec.sce_reply, SETTINGS).value
                     for a, (_, rec) in zip(again, recs))
    return (f"SCE replies: (b)'s {len(recs)} SCE conversations generated again one at a time with plain generate: "
            f"identical replies {same}/{len(recs)}, identical parsed SCEs {same_parse}/{len(recs)}")


def task_point(task: Any, shown: dict) -> Any:
    return next(p for p in (task.point_at(i) for i in range(task.size)) if task.as_dict(p) == shown)


def grid_validity_agreement(task: Any, model: Any, meter: Meter, ref: dict, results: list) -> str:
    """For grid tasks: the reference's generated prediction on every parsed SCE point (outside
    the timed stages: the whole-grid stage already pays for them) against (b)'s validity."""
    recs = [(r.variant, rec) for r in results for rec in r.examples if rec.counterfactual is not None]
    points = [task_point(task, rec.counterfactual) for _, rec in recs]
    labels = [parse_answer(r, task.options).value for r in
              generate(model, [grid_prompts.prediction_conversation(task, p) for p in points], SETTINGS.answer_tokens, 8, meter)]
    comparable = [(label, rec) for label, (_, rec) in zip(labels, recs) if label is not None and label == rec.cf_prediction]
    same = sum((label == rec.target) == rec.valid for label, rec in comparable)
    return (f"validity: on {len(comparable)}/{len(recs)} parsed SCE points the generated and scored predictions agree, "
            f"and the validity is identical on {same}/{len(comparable)} of them")


# -- focused measurements ------------------------------------------------------------------------


def scoring_pass(model: Any, counter: FlopCounter, task: Any, n: int, peak: float) -> str:
    rng = random.Random(1)
    convs = [grid_prompts.prediction_conversation(task, task.point_at(i)) for i in rng.sample(range(task.size), n)]
    options = [canonical_answer(o) for o in task.options]
    model._heads.clear()  # a cold start: the shared prefix is computed in the timed pass
    flops0, started = counter.flops, time.perf_counter()
    model.score_options(convs, options)
    seconds = time.perf_counter() - started
    rate = (counter.flops - flops0) / seconds / 1e9
    return (f"scoring pass: {n} {task.name} prompts x {len(options)} options in {seconds:.2f} s ({n / seconds:.1f} prompts/s), "
            f"{rate:.1f} GFLOP/s = {100 * rate / peak:.0f}% of the measured matmul peak ({peak:.1f} GFLOP/s)")


def generation_pass(model: Any, counter: FlopCounter, meter: Meter, task: Any, examples: list) -> list[str]:
    """SCE generation one conversation at a time against `HFChatModel.chat` (batched); the
    replies must be identical (greedy)."""
    convs = [grid_prompts.sce_conversation(task, x, canonical_answer(task.options[0]), task.options[1], v)
             for _, x in examples for v in SETTINGS.variants]
    gen0, started = meter.reference_generated, time.perf_counter()
    singles = [generate(model, [c], SETTINGS.sce_tokens, 1, meter)[0] for c in convs]
    single_s, single_tokens = time.perf_counter() - started, meter.reference_generated - gen0
    gen1, started = model.stats.extra.get("generated_tokens", 0), time.perf_counter()
    batched = model.chat(convs, Decoding(max_new_tokens=SETTINGS.sce_tokens))
    batched_s, batched_tokens = time.perf_counter() - started, model.stats.extra.get("generated_tokens", 0) - gen1
    return [f"SCE generation: {len(convs)} conversations, one at a time {single_s:.2f} s ({single_tokens / single_s:.1f} tokens/s), "
            f"batched {batched_s:.2f} s ({batched_tokens / batched_s:.1f} tokens/s), {single_s / batched_s:.2f}x; "
            f"identical replies: {sum(a == b for a, b in zip(singles, batched))}/{len(convs)}"]


# -- the run ---------------------------------------------------------------------------------------


def table(stages: list[Stage], peak: float) -> list[str]:
    lines = ["| side | dataset | stage | wall s | model calls | tokens fed | tokens generated | GFLOP/s | % of peak | peak RSS MiB | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in stages:
        rate = s.flops / s.seconds / 1e9 if s.seconds > 0 else 0.0
        lines.append(f"| {s.side} | {s.dataset} | {s.name} | {s.seconds:.1f} | {s.calls:.0f} | {s.tokens:.0f} | {s.generated:.0f} | "
                     f"{rate:.1f} | {100 * rate / peak:.0f}% | {s.peak_mib:.0f} | {s.note} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="income 2 + sentiment 1 examples, 12 sampled grid points")
    parser.add_argument("--limit", type=int, default=None, help="grid examples (default 20; --quick 2)")
    parser.add_argument("--text-limit", type=int, default=None, help="sentiment examples (default 5; --quick 1; 0: none)")
    parser.add_argument("--grid", default="income", help="grid dataset (default income)")
    parser.add_argument("--grid-sample", type=int, default=None, help="grid points the reference's whole-grid stage is timed on (default 48; --quick 12)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for both sides (default: torch's own, one per core, as an audit runs; "
                             "on a machine shared with other jobs pass 1: there, two threads wait on each other in every "
                             "small product, which slowed generation up to 7x)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit = args.limit if args.limit is not None else (2 if args.quick else 20)
    text_limit = args.text_limit if args.text_limit is not None else (1 if args.quick else 5)
    grid_sample = args.grid_sample or (12 if args.quick else 48)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    began = time.perf_counter()
    peak = matmul_peak(torch.get_num_threads())
    model = load_model("smollm2", ModelOptions())
    counter = FlopCounter(model.model)
    meter = Meter(model, counter)
    model.score_options([grid_prompts.prediction_conversation(load_task(args.grid), load_task(args.grid).point_at(0))] * 2,
                        ["a", "b"])  # warm-up
    model.chat([[{"role": "user", "content": "Hi"}]], Decoding(max_new_tokens=4))
    model._heads.clear()
    plan = [(args.grid, limit)] + ([("sentiment", text_limit)] if text_limit > 0 else [])
    findings: list[str] = []
    totals: dict[str, dict[str, float]] = {}
    for dataset, n in plan:
        task = load_task(dataset)
        examples = task_examples(task, n, args.seed)
        with tempfile.TemporaryDirectory(prefix="sce-bench-e2e-") as folder:
            cached = CachedModel(model, ResponseCache(Path(folder) / "responses.sqlite"))
            config = AuditConfig(model="smollm2", datasets=(dataset,), checks=("sce",), limit=n, seed=args.seed)
            count0 = len(meter.stages)
            started = time.perf_counter()
            with showing(StageBar(meter, dataset)):
                run = run_audit(config, model=cached)
            ours = time.perf_counter() - started
            staged = sum(s.seconds for s in meter.stages[count0:])
            meter.stages.append(Stage("sce-checks", dataset, "outside the model steps (parsing, metrics)", ours - staged))
            results = [r for r in run.results if r.check == "sce"]
            count1 = len(meter.stages)
            if task.kind == "grid":
                ref = mayne_reference(model, meter, task, examples, grid_sample, args.seed)
            else:
                ref = dehghanighobadi_reference(model, meter, task, examples, args.seed)
            theirs = sum(s.seconds for s in meter.stages[count1:])
            totals[dataset] = {"reference": theirs, "sce-checks": ours}
            parsed = sum(label is not None for label in ref["labels"].values())
            findings.append(f"[{dataset}] predictions: the reference's generated answers parse for {parsed}/{len(examples)} "
                            f"examples (an unparsed one gets no SCE); sce-checks reads every answer from option scores")
            findings += [f"[{dataset}] {line}" for line in sce_agreement(task, ref, results)]
            findings.append(f"[{dataset}] " + same_sce_replies(task, model, meter, results))
            if task.kind == "grid":
                info = results[0].info
                findings.append(f"[{dataset}] sce-checks predicted {info['grid_points_predicted']} of {task.size} grid points "
                                f"({100 * info['grid_fraction_predicted']:.0f}%) in {info['boundary_search_batches']} search batches; "
                                f"the reference predicts all {task.size}")
                findings += [f"[{dataset}] {line}" for line in grid_agreement(task, cached, ref, results)]
                findings.append(f"[{dataset}] " + grid_validity_agreement(task, model, meter, ref, results))
                findings.append(f"[{dataset}] reference whole-grid stage EXTRAPOLATED: {len(ref['sample'])} random grid points "
                                f"measured at {ref['per_point']:.3f} s per point, {task.size} points extrapolated")
    grid_task = load_task(args.grid)
    peaks = [peak, matmul_peak(torch.get_num_threads())]
    peak = max(peaks)  # the machine's load moves: the best of the measurements is its peak
    focused = [scoring_pass(model, counter, grid_task, 64, peak)]
    focused += generation_pass(model, counter, meter, grid_task, task_examples(grid_task, 2 if args.quick else 4, args.seed + 1))
    load_after = os.getloadavg()

    print(f"{datetime.date.today()}  bench_end_to_end.py {' '.join(sys.argv[1:])}")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{platform.machine()}, load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at the end; "
          f"fp32 matmul peak {peak:.1f} GFLOP/s (torch.matmul 1024^2, best of the measurements at the start and "
          f"before the focused passes in this run: {', '.join(f'{p:.1f}' for p in peaks)})")
    print(f"model: {model.name} {model.runtime()['dtype']} on {model.runtime()['device']}; "
          f"samples: {', '.join(f'{d} {n}' for d, n in plan)} (seed {args.seed}), variants {', '.join(SETTINGS.variants)}")
    print()
    print("\n".join(table(meter.stages, peak)))
    print()
    for dataset, t in totals.items():
        print(f"{dataset}: reference {t['reference']:.1f} s, sce-checks {t['sce-checks']:.1f} s, "
              f"ratio {t['reference'] / t['sce-checks']:.1f}x")
    print("\n".join(findings))
    print("\n".join(focused))
    print(f"process peak RSS over the whole run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"benchmark wall time {time.perf_counter() - began:.0f} s")
    total_ref = sum(t["reference"] for t in totals.values())
    total_ours = sum(t["sce-checks"] for t in totals.values())
    print(f"ratio: {total_ref / total_ours:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
