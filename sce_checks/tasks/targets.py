"""Which targets an SCE is requested for, on tasks with K >= 2 options (docs/method.md).

For an example the model answers y, the SCE request names a target t != y. With two options
there is one such t. With K > 2 the ``targets`` setting chooses:

* ``all`` (default): one SCE per t != y, in the task's option order (K - 1 records per answer);
* ``random``: one t != y drawn per example from the run's seed, as the text paper's code does
  (Dehghanighobadi et al. 2025: one other label at random);
* an option LABEL: that target only; examples already answered LABEL have no SCE to request and
  are skipped (counted in the result's info, ``n_skipped_target``).

With two options the three agree, so two-option audits are unchanged by the setting.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from sce_checks.errors import UserInputError

TARGET_MODES: tuple[str, ...] = ("all", "random")


def check_targets(value: str, tasks: Sequence[Any], where: str = "targets") -> None:
    """Refuse a ``targets`` value that is neither a mode nor an option of every audited task, in
    one line, before any model call."""
    if value in TARGET_MODES:
        return
    for task in tasks:
        options = tuple(getattr(task, "options", ()))
        if value not in options:
            raise UserInputError(f"{where}: {value!r} is neither all, random nor an option of dataset "
                                 f"{task.name!r} (options: {', '.join(map(repr, options))})")


def check_run_targets(spec: Any, tasks: Sequence[Any], option: Callable[[str], str]) -> None:
    """A run's ``targets`` (`check_targets`), and ``--sequential`` refused where the SCE check would
    give an example several records (``all`` on a task with more than two options): confidence
    sequences count records as independent examples, as with several samples (docs/sampling.md).
    ``option(name)`` spells a setting as the caller's flags do."""
    targets = getattr(spec, "targets", "all")
    check_targets(targets, tasks, option("targets"))
    if getattr(spec, "sequential", False) and targets == "all" and "sce" in getattr(spec, "checks", ()):
        for task in tasks:
            if len(getattr(task, "options", ())) > 2:
                raise UserInputError(f"{option('sequential')} with {option('targets')} all is not supported on dataset "
                                     f"{task.name!r} ({len(task.options)} options: several SCEs per example); use "
                                     f"{option('targets')} random or an option (docs/method.md)")


def pick_target(options: Sequence[str], prediction: str, example_id: str, seed: int) -> str:
    """One option other than ``prediction``, drawn from (seed, example id): the same draw on every
    run with the same seed (the only other option when there are two)."""
    others = [o for o in options if o != prediction]
    if len(others) == 1:
        return others[0]
    return random.Random(f"{seed}:{example_id}").choice(others)


def choose_targets(options: Sequence[str], answer: str, mode: str, seed: int, draw_key: str) -> tuple[str, ...]:
    """The targets of one answer under ``mode`` (module docstring); ``draw_key`` names the draw
    of ``random`` (the example id, with the sample index under sampling)."""
    if mode == "all":
        return tuple(o for o in options if o != answer)
    if mode == "random":
        return (pick_target(options, answer, draw_key, seed),)
    if mode not in options:
        raise UserInputError(f"targets: {mode!r} is neither all, random nor one of the options "
                             f"{', '.join(map(repr, options))}")
    return () if answer == mode else (mode,)
