"""Every input of a run checked before the first model call.

The exit-code contract (README, "Exit codes"): bad input exits 2 with one line naming the file and
the key or line, before any model is loaded, so a typo never costs a model run and never surfaces
as a traceback (or as a failed gate) at the end of one. ``sce-audit`` runs `preflight` before it
starts pytest; the pytest plugin runs it once the items are collected, when any uses sce-checks.
What is checked: the model spec's form, check names, thresholds (form, the results they apply to,
metric names), tolerances, every dataset (loaded, so every row is read), report paths, the
response cache's path, and the baseline (read whole; its entries measured on the same tasks and
samples as this run; at least one of them a result this run makes, under the same elicitation).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sce_checks.checks import check_names, check_of, units
from sce_checks.config import BY_NAME
from sce_checks.errors import UserInputError
from sce_checks.models import parse_spec
from sce_checks.models.cache import check_cache_path
from sce_checks.regression.files import check_comparable, load_baseline
from sce_checks.regression.tolerances import check_baseline_metrics, parse_tolerances
from sce_checks.stopping import check_sequential, check_sequential_tolerances
from sce_checks.tasks import load_task
from sce_checks.tasks.targets import check_run_targets
from sce_checks.thresholds import Threshold

# Settings naming a file the run writes at the end (after the model run: checked at the start).
OUTPUTS: tuple[str, ...] = ("json", "markdown", "html", "save_baseline")


def preflight(spec: Any, flag: str = "--", same_sample: bool = True) -> None:
    """Check ``spec`` (a `RunSpec`) before any model call; `UserInputError` otherwise. ``flag``
    prefixes the option names in messages (``--`` for sce-audit, ``--sce-`` for pytest).
    ``same_sample``: also refuse a baseline whose entries were measured on another sample of
    this spec's datasets (the results compared with it are this spec's)."""

    def option(name: str) -> str:
        return f"{flag}{BY_NAME[name].option}"

    parse_spec(spec.model)
    try:
        check_names(spec.checks)  # the registry knows the names (a plugin's checks too)
    except UserInputError as exc:
        raise UserInputError(f"{option('checks')}: {exc}") from None
    run_units = units(spec.checks, spec.variants)
    tasks = [load_task(dataset) for dataset in spec.datasets]
    check_run_targets(spec, tasks, option)
    for text in spec.thresholds:  # a gate applies to every dataset of the run
        gate = Threshold.parse(text, option("thresholds"))
        gate.check_run(run_units, f"{option('thresholds')} {text!r}", tasks)
        if gate.metric.startswith("expected_validity") and getattr(spec, "temperature", 0.0) == 0:
            raise UserInputError(f"{option('thresholds')} {text!r}: expected_validity is measured under sampling only; "
                                 f"add {option('temperature')} above 0 (docs/sampling.md)")
    if spec.sequential:
        check_sequential(spec.thresholds, run_units, option("thresholds"))
    for name in ("samples", "prediction_samples"):  # several samples of a greedy reply are one reply K times
        if getattr(spec, name, 1) > 1 and getattr(spec, "temperature", 0.0) == 0:
            raise UserInputError(f"{option(name)} {getattr(spec, name)} needs {option('temperature')} above 0: greedy "
                                 "decoding gives the same reply every time (docs/sampling.md)")
    tolerances = parse_tolerances(list(spec.tolerances), option("tolerances"))
    if spec.sequential and spec.baseline and spec.baseline_mode == "paired":
        check_sequential_tolerances(tolerances, spec.baseline_metrics, option("tolerances"))
    check_baseline_metrics(spec.baseline_metrics, option("baseline_metrics"))
    check_outputs(spec, option)
    if not spec.no_cache:
        check_cache_path(spec.cache_path())
    if spec.baseline:
        baseline = load_baseline(spec.baseline)
        if same_sample:
            check_comparable(baseline, spec, spec.baseline)
            check_baseline_matches(baseline, spec, tasks, spec.baseline, option("elicitation"))


def run_entry_keys(spec: Any, tasks: list[Any]) -> list[str]:
    """The baseline keys (``check/task/variant``, sce_checks/regression/files.py) of the results
    ``spec`` makes on ``tasks`` (its datasets, loaded): known without the model."""
    keys = []
    for task in tasks:
        for unit in units(spec.checks, spec.variants):
            check = check_of(unit)
            keys.append(f"{check}/{task.name}/{unit if unit != check else '-'}")
    return keys


def check_baseline_matches(baseline: dict[str, Any], spec: Any, tasks: list[Any], path: str,
                           elicitation: str = "--elicitation") -> None:
    """Refuse, before any model call, a baseline that cannot be compared with any result of
    ``spec``: one that shares no entry with the run (another task, variant or check; the
    comparison would refuse every result after the whole run), or one saved under another
    elicitation (``schema`` constrains every reply, so every figure differs in meaning). A
    baseline sharing some entries is taken: a result it lacks is refused after the run, as a
    check that was skipped when the baseline was saved (no option scoring, say) may be skipped
    again, which is only known once the model is open. ``elicitation`` names the setting."""
    entries = baseline.get("entries") or {}
    keys = run_entry_keys(spec, tasks)
    if not any(key in entries for key in keys):
        raise UserInputError(f"baseline {path}: shares no entry with this run, so nothing could be compared (it has "
                             f"{_listed(sorted(entries))}; this run makes {_listed(keys)}); compare with a baseline of "
                             "the same checks, datasets and variants, or save one with --save-baseline")
    environment = baseline.get("environment")
    environment = environment if isinstance(environment, dict) else {}
    saved = environment.get("elicitation")
    if isinstance(saved, str) and saved != spec.elicitation:
        raise UserInputError(f"baseline {path}: saved under {elicitation} {saved}, this run uses {elicitation} "
                             f"{spec.elicitation}; elicitation changes every figure, so the two are not compared "
                             "(save a baseline under this elicitation)")
    _check_baseline_sampling(environment.get("sampling"), spec, path)


def _check_baseline_sampling(saved: Any, spec: Any, path: str) -> None:
    """Refuse a baseline decoded at another temperature or top-p (a baseline from before sampled
    audits was greedy): they change the distribution every figure is measured on. Another
    --samples K is compared (per-example means estimate the same figures; docs/sampling.md)."""
    saved = saved if isinstance(saved, dict) else {}
    for name, default in (("temperature", 0.0), ("top_p", 1.0)):
        before, now = saved.get(name, default), getattr(spec, name, default)
        if isinstance(before, (int, float)) and not isinstance(before, bool) and float(before) != float(now):
            flag = name.replace("_", "-")
            raise UserInputError(f"baseline {path}: saved with --{flag} {before:g}, this run uses --{flag} {now:g}; "
                                 "sampling changes every figure, so the two are not compared (save a baseline "
                                 "with these sampling settings)")


def _listed(keys: list[str], most: int = 4) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def check_outputs(spec: Any, option: Any) -> None:
    """Report and baseline paths: each a file that can be written, none twice, and the saved
    baseline not the one compared (it is saved first, so the run would pass against itself)."""
    seen: dict[str, str] = {}
    for name in OUTPUTS:
        path = getattr(spec, name)
        if not path:
            continue
        where = f"{option(name)} {path}"
        check_writable(path, where)
        key = os.path.abspath(path)
        if key in seen:
            raise UserInputError(f"{where}: the same file as {seen[key]}; give each report its own file")
        seen[key] = option(name)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")  # the Markdown report is appended to it
    if summary:
        check_writable(summary, f"$GITHUB_STEP_SUMMARY {summary}")
    if spec.baseline and spec.save_baseline and os.path.abspath(spec.baseline) == os.path.abspath(spec.save_baseline):
        raise UserInputError(f"{option('save_baseline')} {spec.save_baseline}: the same file as {option('baseline')}; "
                             "the run is saved before it is compared, so it would be compared with itself "
                             "(save to another file)")


def check_writable(path: str | os.PathLike[str], where: str) -> None:
    """``path`` can be written as a file: not a directory, and its nearest existing ancestor a
    directory this user may write in (missing directories are created when the report is written)."""
    p = Path(path).absolute()
    if p.is_dir():
        raise UserInputError(f"{where}: is a directory; give a file name")
    for parent in p.parents:
        if not parent.exists():
            continue
        if not parent.is_dir():
            raise UserInputError(f"{where}: {parent} is a file, not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UserInputError(f"{where}: cannot write in {parent} (permission denied)")
        return
