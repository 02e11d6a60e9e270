"""The Python API: run an audit, get result objects.

    from sce_checks.audit import AuditConfig, run_audit
    run = run_audit(AuditConfig(model="smollm2", datasets=["income"], limit=20))
    for result in run.results:
        print(result.dataset, result.variant, result["validity"], result["mean_rcf_a"])

    run = run_audit(AuditConfig(datasets=["sentiment"], checks=["inv", "ct", "phi_cct"], limit=10))

The CLI and the pytest plugin are thin layers over `run_audit`.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from sce_checks.checks import COUNTERFACTUAL, check_names
from sce_checks.checks.sce import VARIANTS, SCESettings, run_grid_sce, run_text_sce
from sce_checks.environment import collect_environment
from sce_checks.errors import CheckNotApplicable, UserInputError
from sce_checks.models import ModelOptions, load_model
from sce_checks.parsing import PARSINGS
from sce_checks.prompts.schemas import ELICITATIONS
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
    elicitation: str = "free"  # free | schema: replies constrained to their JSON schema (docs/method.md)
    parsing: str = "lenient"  # lenient | strict: how replies are read (sce_checks/parsing.py)
    text_search_budget: int = 0
    model_options: ModelOptions = field(default_factory=ModelOptions)
    cache: bool = True
    cache_path: str | None = None
    checks: Sequence[str] = ("sce",)  # see sce_checks.checks.CHECKS
    perturbations: int = 4  # perturbed inputs / interventions per example (inv, dir, stability, ct family)
    attribution: str = "feature_ablation"  # self_consistency: feature_ablation | shapley_sampling


@dataclass
class AuditRun:
    results: list[CheckResult]
    environment: dict[str, Any]
    skipped: list[dict[str, str]] = field(default_factory=list)  # {dataset, check, reason}: not applicable here


def open_model(spec: str, options: ModelOptions, cache: bool = True, cache_path: str | None = None):
    """Load a backend and put the response cache in front of it."""
    from sce_checks.models.cache import CachedModel, ResponseCache

    inner = load_model(spec, options)
    store = ResponseCache(Path(cache_path) if cache_path else None) if cache else None
    return CachedModel(inner, store)


def check_choice(name: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` when it is one of ``allowed``; else a one-line `UserInputError` naming the setting."""
    if value not in allowed:
        raise UserInputError(f"--{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def check_variants(variants: Sequence[str]) -> tuple[str, ...]:
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise UserInputError(f"unknown variant {bad[0]!r}; expected one of: {', '.join(VARIANTS)}")
    if not variants:
        raise UserInputError("no variant given; expected one or more of: " + ", ".join(VARIANTS))
    return tuple(dict.fromkeys(variants))


def _groups(checks: Sequence[str]) -> list[tuple[str, ...]]:
    """Checks in the order given, the counterfactual family (ct, cct, phi_cct) as one group: they
    share one set of interventions, predictions and explanations."""
    out: list[tuple[str, ...]] = []
    family = tuple(c for c in checks if c in COUNTERFACTUAL)
    for c in checks:
        if c in COUNTERFACTUAL:
            if family:
                out.append(family)
                family = ()
        else:
            out.append((c,))
    return out


def _run_group(group: tuple[str, ...], model, config: AuditConfig, task, examples, variants, skipped: list) -> list[CheckResult]:
    """Run one group of checks on one task; a check that cannot run here is noted in ``skipped``."""
    name, spec = group[0], config.model
    common = dict(prediction=config.prediction, seed=config.seed, elicitation=config.elicitation, parsing=config.parsing)
    if name == "sce":
        settings = SCESettings(variants=variants, text_search_budget=config.text_search_budget, **common)
        runner = run_grid_sce if task.kind == "grid" else run_text_sce
        return runner(model, spec, task, examples, settings)
    if name == "self_consistency":
        from sce_checks.checks.self_consistency import SelfConsistencySettings, run_self_consistency

        return [run_self_consistency(model, spec, task, examples, SelfConsistencySettings(method=config.attribution, **common))]
    if name in ("inv", "dir"):
        from sce_checks.checks.perturbation import PerturbationSettings, run_directional, run_invariance

        runner = run_invariance if name == "inv" else run_directional
        return [runner(model, spec, task, examples, PerturbationSettings(perturbations=config.perturbations, **common))]
    if name == "stability":
        from sce_checks.checks.stability import StabilitySettings, run_stability

        settings = StabilitySettings(variant=variants[0], perturbations=config.perturbations, **common)
        return [run_stability(model, spec, task, examples, settings)]
    from sce_checks.checks import counterfactual as cf

    settings = cf.CounterfactualSettings(perturbations=config.perturbations, **common)
    cf.require_applicable(model, task, settings, group)  # cct alone without option scores: before any model call
    iv = cf.interventions(model, task, examples, settings)
    out = []
    for check in group:
        try:
            out.append(cf.BUILDERS[check](iv, spec))
        except CheckNotApplicable as exc:
            skipped.append({"dataset": task.name, "check": check, "reason": str(exc)})
    return out


def run_audit(config: AuditConfig, model=None, progress: Callable[[str], None] | None = None) -> AuditRun:
    """Run the configured checks on every dataset of ``config``.

    ``model`` may be given ready-made (any object with ``chat``); otherwise ``config.model`` is
    loaded and cached. Bad input raises `UserInputError` before any model call; a check that
    cannot run on a task or backend (CCT without option scores, INV on a grid) is listed in
    ``AuditRun.skipped`` and the others run. ``progress`` (e.g. ``print``) receives progress
    lines; a caller that installed its own bar with `sce_checks.progress.showing` passes None.
    """
    from sce_checks.tasks import load_task, task_examples

    checks = check_names(config.checks)
    # the SCE check runs every variant listed; the stability check requests its SCEs in the first
    variants = check_variants(config.variants) if {"sce", "stability"} & set(checks) else ()
    if config.limit is not None and config.limit < 1:
        raise UserInputError(f"--limit must be a positive integer, not {config.limit}")
    if config.perturbations < 1:
        raise UserInputError(f"--perturbations must be a positive integer, not {config.perturbations}")
    check_choice("elicitation", config.elicitation, ELICITATIONS)
    check_choice("parsing", config.parsing, PARSINGS)
    tasks = [load_task(d) for d in config.datasets]  # fail on a bad dataset before loading a model
    if model is None:
        model = open_model(config.model, config.model_options, config.cache, config.cache_path)
    results: list[CheckResult] = []
    skipped: list[dict[str, str]] = []
    started = time.perf_counter()
    samples = {}
    for task in tasks:
        examples = task_examples(task, config.limit, config.seed)
        samples[task.name] = {"ids": [i for i, _ in examples], "task": task.fingerprint()}
        for group in _groups(checks):
            with showing(ProgressBar(progress)) if progress else nullcontext():
                try:
                    results.extend(_run_group(group, model, config, task, examples, variants, skipped))
                except CheckNotApplicable as exc:
                    skipped.extend({"dataset": task.name, "check": c, "reason": str(exc)} for c in group)
    identity = model.identity() if hasattr(model, "identity") else {"backend": type(model).__name__}
    stats = getattr(model, "stats", None)
    env = collect_environment(
        model=config.model,
        model_identity=identity,
        seed=config.seed,
        limit=config.limit,
        checks=list(checks),
        variants=list(variants),
        prediction=config.prediction,
        elicitation=config.elicitation,
        parsing=config.parsing,
        perturbations=config.perturbations if set(checks) - {"sce", "self_consistency"} else None,
        attribution=config.attribution if "self_consistency" in checks else None,
        batch_size=config.model_options.batch_size,
        dtype=identity.get("dtype", config.model_options.dtype),
        model_calls=asdict(stats) if stats is not None else None,
        samples=samples,
        wall_seconds=round(time.perf_counter() - started, 3),
    )
    return AuditRun(results, env, skipped)
