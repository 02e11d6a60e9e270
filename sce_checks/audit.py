"""The Python API: run an audit, get result objects.

    from sce_checks.audit import AuditConfig, run_audit
    run = run_audit(AuditConfig(model="smollm2", datasets=["income"], limit=20))
    for result in run.results:
        print(result.dataset, result.variant, result["validity"], result["mean_rcf_a"])

    run = run_audit(AuditConfig(datasets=["sentiment"], checks=["inv", "ct", "phi_cct"], limit=10))

`AuditConfig` is the run specification (sce_checks/config.py): every setting of the command line
and the pytest options, by its name. The CLI and the pytest plugin are thin layers over
`run_audit`. The life of an audit (docs/architecture.md):

    run specification -> tasks and their sampled examples -> per task, per check: the check's
    settings (from the specification), whether it applies (before any model call), its stages
    (prompts -> batched, cached model calls -> parsed replies -> metrics) -> CheckResult objects
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from sce_checks.checks import get_check, unit_of, units
from sce_checks.config import BY_NAME, RunSpec
from sce_checks.environment import collect_environment
from sce_checks.errors import CheckNotApplicable
from sce_checks.models.cache import CachedModel
from sce_checks.models.opening import ModelOpener
from sce_checks.notices import Notices, collecting
from sce_checks.progress import ProgressBar, showing
from sce_checks.results import CheckResult
from sce_checks.stopping import (
    answered_twice, attach, audit_sequentially, baseline_questions, check_sequential,
    parsed_thresholds, questions,
)
from sce_checks.tasks import load_task, task_examples

AuditConfig = RunSpec  # the Python API's name for the run specification

# Settings every report records, whichever checks ran; the others only when a check of the run reads them.
_ALWAYS_RECORDED = ("model", "checks", "limit", "seed", "sequential")
# Decoding settings, recorded together under "sampling" ("samples" at the top level is the drawn
# example ids per task, which baselines read).
_SAMPLING = ("temperature", "top_p", "samples", "prediction_samples")


@dataclass
class AuditRun:
    results: list[CheckResult]
    environment: dict[str, Any]
    skipped: list[dict[str, str]] = field(default_factory=list)  # {dataset, check, reason}: not applicable here


def backend_runtime(model: Any) -> dict[str, Any]:
    """Whether the backend behind ``model`` (a `CachedModel` or a bare backend) was loaded, and
    where it was, the device and dtype it ran on (`HFChatModel.runtime`). A backend that is not
    loaded lazily counts as loaded."""
    backend = getattr(model, "inner", model)
    probe = getattr(backend, "runtime", None)
    return dict(probe()) if callable(probe) else {"model_loaded": True}


def run_audit(config: RunSpec, model: Any = None, progress: Callable[[str], None] | None = None,
              models: ModelOpener | None = None) -> AuditRun:
    """Run the configured checks on every dataset of ``config``.

    ``model`` may be given ready-made (any object with ``chat``); otherwise ``config.model`` is
    opened by ``models`` (the pytest session hands its `ModelOpener`, which opens each model once
    per session) or by an opener of its own (sce_checks/models/opening.py: parsed once, response
    cache first, a transformers model loaded by the first request the cache cannot answer).
    Bad input raises `UserInputError` before any model call (the specification validated itself
    when it was made); a check that cannot run on a task or backend (CCT without option scores,
    INV on a grid) is listed in ``AuditRun.skipped`` and the others run. ``progress`` (e.g.
    ``print``) receives progress lines; a caller that installed its own bar with
    `sce_checks.progress.showing` passes None.

    Warnings (an unusable cache, a server without logprobs: sce_checks/notices.py) are listed in
    ``AuditRun.environment["warnings"]``, one line each; where neither ``models`` nor a model
    collecting them for its own run is given, each is also issued as a Python warning.
    """
    checks = [get_check(name) for name in config.checks]
    tasks = [load_task(d) for d in config.datasets]  # fail on a bad dataset before loading a model
    if config.sequential:  # a gate no confidence sequence can answer: refused before the model opens
        check_sequential(config.thresholds, units(config.checks, config.variants), alpha=config.alpha)
    if model is None:
        model = (models or ModelOpener.for_run(config)).open(config.model)
    notices = run_notices(model)
    with collecting(notices):
        return _run(config, model, progress, checks, tasks, notices)


def run_notices(model: Any) -> Notices:
    """Where a run's warnings go: the notices of the opener the model came from, else a collector
    of the run's own that also issues them as Python warnings (a model built by the caller)."""
    own = model.notices if isinstance(model, CachedModel) else None
    return own if own is not None else Notices(echo=True)


def _run(config: RunSpec, model: Any, progress: Callable[[str], None] | None, checks: list[Any], tasks: list[Any],
         notices: Notices) -> AuditRun:
    """The audit's loop over tasks and checks, and the environment of its results."""
    results: list[CheckResult] = []
    skipped: list[dict[str, str]] = []
    started = time.perf_counter()
    samples = {}
    for task in tasks:
        examples = task_examples(task, config.limit or None, config.seed, shuffled=config.sequential)
        if config.sequential:
            done, skips = _audit_sequentially(config, model, progress, checks, task, examples)
        else:
            done, skips = _audit_task(config, model, progress, checks, task, examples)
        results.extend(done)
        skipped.extend(skips)
        # the sample drawn, in dataset order: what a baseline is measured on (a sequential audit
        # audits a prefix of it, in its seeded order: each result's "sequential" block says how much)
        drawn = task_examples(task, config.limit or None, config.seed) if config.sequential else examples
        samples[task.name] = {"ids": [i for i, _ in drawn], "task": task.fingerprint()}
    identity = model.identity() if hasattr(model, "identity") else {"backend": type(model).__name__}
    stats = getattr(model, "stats", None)
    runtime = backend_runtime(model)  # resolved device and dtype only where the model loaded
    env = collect_environment(
        model_identity=identity,
        **recorded_settings(config, checks),
        batch_size=config.batch_size,
        dtype=runtime.get("dtype", identity.get("dtype", config.dtype)),
        device=runtime.get("device", identity.get("device", config.device)),
        model_loaded=runtime["model_loaded"],
        model_calls=asdict(stats) if stats is not None else None,
        samples=samples,
        wall_seconds=round(time.perf_counter() - started, 3),
        warnings=notices.lines,
    )
    return AuditRun(results, env, skipped)


def _audit_task(config: RunSpec, model: Any, progress: Callable[[str], None] | None, checks: list[Any], task: Any,
                examples: list[tuple[str, Any]]) -> tuple[list[CheckResult], list[dict[str, str]]]:
    """Every check of the run on ``examples`` of ``task``: (results, checks that cannot run here)."""
    results: list[CheckResult] = []
    skipped: list[dict[str, str]] = []
    shared: dict[Any, Any] = {}  # work checks of one family share on these examples (interventions, ...)
    for check in checks:
        settings = check.settings_from(config)
        why = check.applies(task, model, settings)
        if why is not None:
            skipped.append({"dataset": task.name, "check": check.name, "reason": why})
            continue
        with showing(ProgressBar(progress)) if progress else nullcontext():
            try:
                results.extend(check.run(model, config.model, task, examples, settings, shared))
            except CheckNotApplicable as exc:
                skipped.append({"dataset": task.name, "check": check.name, "reason": str(exc)})
    return results, skipped


def _audit_sequentially(config: RunSpec, model: Any, progress: Callable[[str], None] | None, checks: list[Any],
                        task: Any, examples: list[tuple[str, Any]]) -> tuple[list[CheckResult], list]:
    """``--sequential`` (sce_checks/stopping.py): the checks on batch after batch of ``examples``
    until the run's gates on this task are decided, then once more on the audited prefix (from
    the cache). Returns (results, checks that cannot run here)."""
    run_units = units([c.name for c in checks], config.variants)
    gates = questions(parsed_thresholds(config.thresholds), run_units, config.alpha, len(examples) or None)
    with answered_twice(model) as answering:
        results, skipped, block = audit_sequentially(
            examples, config.batch_size, gates,
            lambda batch: _audit_task(config, answering, progress, checks, task, list(batch)), unit_of,
            lambda first: baseline_questions(config, first, unit_of, len(examples) or 1))
    attach(results, block, gates, unit_of)
    return results, skipped


def reads(check: Any) -> set[str]:
    """The run settings a check reads: its settings fields named like one, and the settings it
    declares it reads under another name (``reads_settings``)."""
    return {f.name for f in dataclasses.fields(check.settings) if f.name in BY_NAME} | set(check.reads_settings)


def recorded_settings(config: RunSpec, checks: list[Any]) -> dict[str, Any]:
    """The audit settings a report records: always the model, checks, limit and seed; every
    other one with its value when a check of the run reads it, else None (so a report of an SCE
    audit does not suggest that ``perturbations`` mattered)."""
    read = set(_ALWAYS_RECORDED)
    for check in checks:
        read |= reads(check)
    out: dict[str, Any] = {}
    for s in BY_NAME.values():
        if s.group != "audit" or s.name == "datasets":
            continue
        value = getattr(config, s.name)
        out[s.name] = (list(value) if isinstance(value, tuple) else value) if s.name in read else None
    out["limit"] = config.limit or None
    out["variants"] = out["variants"] or []
    out["sampling"] = {name: getattr(config, name) for name in _SAMPLING}
    for name in _SAMPLING:
        del out[name]
    return out
