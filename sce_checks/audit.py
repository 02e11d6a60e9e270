"""The Python API: run an audit, get result objects.

    from sce_checks.audit import AuditConfig, run_audit
    run = run_audit(AuditConfig(model="smollm2", datasets=["income"], limit=20))
    for result in run.results:
        print(result.dataset, result.variant, result["validity"], result["mean_rcf_a"])

The CLI and the pytest plugin are thin layers over `run_audit`.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from sce_checks.checks.sce import VARIANTS, SCESettings, run_grid_sce, run_text_sce
from sce_checks.environment import collect_environment
from sce_checks.errors import UserInputError
from sce_checks.models import ModelOptions, load_model
from sce_checks.progress import ProgressBar, showing
from sce_checks.results import CheckResult


@dataclass(frozen=True)
class AuditConfig:
    model: str = "smollm2"
    datasets: Sequence[str] = ("income",)
    variants: Sequence[str] = VARIANTS
    limit: int | None = 20
    seed: int = 0
    prediction: str = "auto"
    text_search_budget: int = 0
    model_options: ModelOptions = field(default_factory=ModelOptions)
    cache: bool = True
    cache_path: str | None = None


@dataclass
class AuditRun:
    results: list[CheckResult]
    environment: dict[str, Any]


def open_model(spec: str, options: ModelOptions, cache: bool = True, cache_path: str | None = None):
    """Load a backend and put the response cache in front of it."""
    from sce_checks.models.cache import CachedModel, ResponseCache

    inner = load_model(spec, options)
    store = ResponseCache(Path(cache_path) if cache_path else None) if cache else None
    return CachedModel(inner, store)


def check_variants(variants: Sequence[str]) -> tuple[str, ...]:
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise UserInputError(f"unknown variant {bad[0]!r}; expected one of: {', '.join(VARIANTS)}")
    if not variants:
        raise UserInputError("no variant given; expected one or more of: " + ", ".join(VARIANTS))
    return tuple(dict.fromkeys(variants))


def run_audit(config: AuditConfig, model=None, progress: Callable[[str], None] | None = None) -> AuditRun:
    """Run the SCE check on every dataset and variant of ``config``.

    ``model`` may be given ready-made (any object with ``chat``); otherwise ``config.model`` is
    loaded and cached. Bad input raises `UserInputError` before any model call. ``progress``
    (e.g. ``print``) receives progress lines; a caller that installed its own bar with
    `sce_checks.progress.showing` passes None.
    """
    from sce_checks.tasks import load_task, task_examples

    variants = check_variants(config.variants)
    if config.limit is not None and config.limit < 1:
        raise UserInputError(f"--limit must be a positive integer, not {config.limit}")
    tasks = [load_task(d) for d in config.datasets]  # fail on a bad dataset before loading a model
    if model is None:
        model = open_model(config.model, config.model_options, config.cache, config.cache_path)
    settings = SCESettings(variants=variants, prediction=config.prediction, seed=config.seed,
                           text_search_budget=config.text_search_budget)
    results: list[CheckResult] = []
    started = time.perf_counter()
    samples = {}
    for task in tasks:
        examples = task_examples(task, config.limit, config.seed)
        samples[task.name] = {"ids": [i for i, _ in examples], "task": task.fingerprint()}
        runner = run_grid_sce if task.kind == "grid" else run_text_sce
        with showing(ProgressBar(progress)) if progress else nullcontext():
            results.extend(runner(model, config.model, task, examples, settings))
    identity = model.identity() if hasattr(model, "identity") else {"backend": type(model).__name__}
    stats = getattr(model, "stats", None)
    env = collect_environment(
        model=config.model,
        model_identity=identity,
        seed=config.seed,
        limit=config.limit,
        variants=list(variants),
        prediction=config.prediction,
        batch_size=config.model_options.batch_size,
        dtype=identity.get("dtype", config.model_options.dtype),
        model_calls=asdict(stats) if stats is not None else None,
        samples=samples,
        wall_seconds=round(time.perf_counter() - started, 3),
    )
    return AuditRun(results, env)
