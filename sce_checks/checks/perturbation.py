"""CheckList invariance (INV) and directional (DIR) tests of a model's predictions.

After Ribeiro, Wu, Guestrin and Singh, "Beyond Accuracy: Behavioral Testing of NLP Models with
CheckList" (ACL 2020). They do not read explanations: they check the
decision the explanations are about. A model whose answer flips on a typo, or does not move when
the input says "I hated it.", has no stable decision boundary for an SCE to describe.

* INV (check ``inv``, text tasks): label-preserving edits (`perturb.LABEL_PRESERVING_FAMILIES`:
  punctuation, case, typos, synonyms, neutral sentences) must not change the predicted label.
  Failing multi-edit perturbations are shrunk to the first single edit that still fails.
* DIR (check ``dir``, text and grid tasks): an edit with a declared direction must not move the
  prediction the other way. Text: a sentence that pushes towards an option is appended
  (``TextTask.directional``); grid: a feature with ``increases = "<option>"`` moves one step.
  With option probabilities (score mode): p(direction option) must not drop by more than
  ``dir_tolerance`` (CheckList's ``Expect.monotonic``); without them, the label must not leave
  the direction option (up-moves, sentences) or reach it (down-moves). As in CheckList, a
  perturbation that cannot fail (p already within the tolerance of the bound; a label that
  cannot move the wrong way) is not counted.

Data flows one way:

    examples -> seeded perturbations (no model) -> fresh-context predictions of the originals
             (one batch) -> of every perturbed input (one batch) -> INV only: single edits of
             failing combinations (one batch) -> per-example records -> figures (CheckResult)

Unparsed predictions (generate mode) are counted and excluded, never guessed. Deviations from
CheckList are listed in docs/perturbation-checks.md.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from sce_checks import perturb
from sce_checks.cells import short
from sce_checks.checks.base import FAILING_HEADERS, Check, Outcome
from sce_checks.checks.predict import Prediction, Predictor, prediction_record, task_predictor, validate_settings
from sce_checks.config import default
from sce_checks.errors import CheckNotApplicable, UserInputError
from sce_checks.metrics.stats import mean_or_none, put_proportion
from sce_checks.models.base import ChatModel
from sce_checks.parsing import reason_key
from sce_checks.progress import step
from sce_checks.results import CheckResult, ExampleRecord

__all__ = [
    "INV_NOT_ON_GRIDS",
    "PerturbationSettings",
    "Probe",
    "directional_probes",
    "draw_perturbations",
    "run_directional",
    "run_invariance",
]

INV_NOT_ON_GRIDS = (
    "INV needs label-preserving edits, which grid records do not have; use the 'dir' check or SCE checks on grids"
)
# Figures of these checks where lower is better (the rest are counts or higher-is-better).
# A drop of exactly dir_tolerance passes; this absorbs the rounding of p' - p in binary floats.
_FLOAT_SLACK = 1e-12
_DRAW_ATTEMPTS = 20  # draws per wanted perturbation before a text is taken to have no more distinct ones


@dataclass(frozen=True)
class PerturbationSettings:
    """How INV and DIR run; all of it goes into the result's ``info``."""

    prediction: str = default("prediction")  # auto | score | generate (see checks/predict.py)
    elicitation: str = default("elicitation")  # free | schema: replies constrained to their JSON schema (prompts/schemas.py)
    parsing: str = default("parsing")  # lenient | strict (sce_checks/parsing.py)
    seed: int = default("seed")  # every draw is seeded from (seed, example id)
    perturbations: int = default("perturbations")  # perturbed versions per example (DIR: at most this many probes)
    max_edits: int = 2  # INV: edits combined in one perturbation (1..max_edits, drawn)
    families: tuple[str, ...] = perturb.LABEL_PRESERVING_FAMILIES  # INV: edit families drawn from
    answer_tokens: int = 48  # max new tokens for a generated answer
    dir_tolerance: float = 0.1  # DIR: largest allowed drop of p(direction option), probabilities only

    def __post_init__(self) -> None:
        validate_settings(self, ("perturbations", "max_edits", "answer_tokens"))
        if isinstance(self.families, str):
            raise UserInputError(f"families must be a sequence of family names, not the string {self.families!r}")
        families = tuple(dict.fromkeys(self.families))
        if not families:
            raise UserInputError("families must name at least one of: " + ", ".join(perturb.LABEL_PRESERVING_FAMILIES))
        for family in families:
            if family not in perturb.LABEL_PRESERVING_FAMILIES:
                why = ("is not label-preserving (its edits may change the label; it is the CT intervention)"
                       if family in perturb.FAMILIES else "is not a perturbation family")
                raise UserInputError(f"families: {family!r} {why}; INV accepts: {', '.join(perturb.LABEL_PRESERVING_FAMILIES)}")
        object.__setattr__(self, "families", families)
        tol = self.dir_tolerance
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or not 0 <= tol < 1:
            raise UserInputError(f"dir_tolerance must be a probability in [0, 1), got {tol!r}")


def _predict(predictor: Predictor, name: str, examples: Sequence[tuple[str, Any]], perturbed_of: dict[str, list],
             what: str) -> list[Prediction]:
    """The originals in one batch, then in another the perturbed inputs of every example whose
    own prediction parsed (the others have nothing to compare with). Returns the originals'."""
    inputs = [x for _, x in examples]
    with step(f"{name}: predicting {len(set(inputs))} examples", len(set(inputs))):
        preds = predictor.predict(inputs)
    perturbed = list(dict.fromkeys(x for (ex_id, _), p in zip(examples, preds) if p.label is not None
                                   for x in perturbed_of[ex_id]))
    with step(f"{name}: predicting {len(perturbed)} {what}", len(perturbed)):
        predictor.predict(perturbed)
    return preds


def _note_unparsed(rec: ExampleRecord, rows: list[dict[str, Any]]) -> None:
    missing = [r for r in rows if r.get("unparsed")]
    if missing and rec.unparsed is None:
        rec.unparsed = f"perturbed: {len(missing)} of {len(rows)} predictions unparsed ({missing[0]['unparsed']})"


# -- INV -------------------------------------------------------------------------------------------


def draw_perturbations(text: str, example_id: str, settings: PerturbationSettings) -> list[perturb.Perturbed]:
    """Up to ``settings.perturbations`` distinct perturbed versions of ``text``, each of 1 to
    ``max_edits`` non-conflicting label-preserving edits. Each edit picks a family uniformly
    (among those with a candidate left), then one of its candidates uniformly, so that a family
    with many candidates (typos) does not crowd out the others. Seeded from (seed, example id):
    the same settings draw the same perturbations. Fewer when the text has fewer distinct ones."""
    pool = perturb.candidates(text, settings.families)
    by_family = {f: [e for e in pool if e.family == f] for f in settings.families}
    rng = random.Random(f"inv:{settings.seed}:{example_id}")
    out: list[perturb.Perturbed] = []
    seen: set[str] = set()
    for _ in range(settings.perturbations * _DRAW_ATTEMPTS):
        if len(out) == settings.perturbations or not pool:
            break
        chosen: list[perturb.Edit] = []
        for _ in range(rng.randint(1, settings.max_edits)):
            free = {f: [e for e in es if not any(perturb.conflicts(e, c) for c in chosen)] for f, es in by_family.items()}
            families = [f for f in settings.families if free[f]]
            if not families:
                break
            chosen.append(rng.choice(free[rng.choice(families)]))
        p = perturb.perturb(text, chosen)
        if p.text not in seen:
            seen.add(p.text)
            out.append(p)
    return out


def _perturbation_row(p: perturb.Perturbed) -> dict[str, Any]:
    return {"text": p.text, "edits": [e.describe() for e in p.edits], "prediction": None, "failed": None,
            "prob_change": None}


def run_invariance(
    model: ChatModel,
    model_spec: str,
    task: Any,
    examples: Sequence[tuple[str, Any]],
    settings: PerturbationSettings = PerturbationSettings(),
) -> CheckResult:
    """CheckList INV on a text task: does the predicted label survive label-preserving edits?
    Stages: draw perturbations, predict originals and perturbed texts, judge each perturbation,
    shrink failing multi-edit perturbations to a single failing edit, figures. Raises
    `CheckNotApplicable` on grid tasks, before any model call."""
    if task.kind != "text":
        raise CheckNotApplicable(INV_NOT_ON_GRIDS)
    predictor = task_predictor(model, task, settings)
    drawn = {ex_id: draw_perturbations(text, ex_id, settings) for ex_id, text in examples}
    preds = _predict(predictor, task.name, examples, {ex_id: [p.text for p in ps] for ex_id, ps in drawn.items()},
                     "perturbed texts")
    reasons: Counter[str] = Counter()
    records = [_invariance_record(ex_id, text, pred, drawn[ex_id], predictor, reasons)
               for (ex_id, text), pred in zip(examples, preds)]
    n_shrink_unparsed = _shrink(task.name, records, drawn, predictor, reasons)

    figures, undefined, rows = _failure_figures(records, "")
    changes = [abs(row["prob_change"]) for row in rows if row["prob_change"] is not None]
    figures["mean_abs_prob_change"] = mean_or_none(changes)
    if not changes:
        undefined["mean_abs_prob_change"] = ("no option probabilities (generate mode)" if predictor.mode == "generate"
                                             else "no perturbation scored")
    info = {
        "task_kind": task.kind,
        "prediction_mode": predictor.mode,
        "settings": asdict(settings),
        "families": list(settings.families),
        "n_perturbations_drawn": sum(len(ps) for ps in drawn.values()),
        "n_examples_without_candidates": sum(1 for ps in drawn.values() if not ps),
        "n_prediction_unparsed": sum(1 for p in preds if p.label is None),
        "n_perturbed_unparsed": sum(1 for r in records for row in r.extra["perturbations"] if row.get("unparsed")),
        "n_shrink_unparsed": n_shrink_unparsed,
        "unparsed_reasons": dict(reasons),
        "n_shrunk_to_single_edit": sum(1 for r in records if r.extra.get("shrunk", {}).get("single_edit")),
        "predictions_requested": predictor.requested,
        "undefined": undefined,
    }
    return CheckResult("inv", model_spec, task.name, None, len(records), figures, records, info)


def _invariance_record(ex_id: str, text: str, pred: Prediction, drawn: list[perturb.Perturbed], predictor: Predictor,
                       reasons: Counter[str]) -> ExampleRecord:
    """An example's record: each perturbation judged (failed: the label moved), the example
    failed when any scored perturbation did."""
    rec = prediction_record(ex_id, text, pred)
    rows = [_perturbation_row(p) for p in drawn]
    rec.extra["perturbations"] = rows
    rec.extra["failed"] = None
    if pred.label is None:
        reasons[reason_key("prediction", pred.code)] += 1
        return rec
    for row in rows:
        q = predictor.known(row["text"])
        row["prediction"] = q.label
        if q.label is None:
            row["unparsed"] = q.reason
            reasons[reason_key("perturbed", q.code)] += 1
            continue
        row["failed"] = q.label != pred.label
        if pred.probs is not None and q.probs is not None:
            row["prob_change"] = q.probs[pred.label] - pred.probs[pred.label]
    _note_unparsed(rec, rows)
    scored = [r for r in rows if r["failed"] is not None]
    if scored:
        rec.extra["failed"] = any(r["failed"] for r in scored)
    return rec


def _failing(rec: ExampleRecord, drawn: list[perturb.Perturbed]) -> list[int]:
    """Indices of an example's failing perturbations, fewest edits first."""
    return sorted((i for i, r in enumerate(rec.extra["perturbations"]) if r["failed"]),
                  key=lambda i: (len(drawn[i].edits), i))


def _shrink(name: str, records: list[ExampleRecord], drawn: dict[str, list[perturb.Perturbed]], predictor: Predictor,
            reasons: Counter[str]) -> int:
    """Shrink each failing example to its smallest failing edit: when no single-edit failure was
    drawn, every single edit of every failing combination is predicted (one batch) and the first
    that fails alone is kept; otherwise the first failing perturbation with the fewest edits.
    Returns how many single-edit predictions went unparsed."""
    to_shrink = {}
    for rec in records:
        failing = _failing(rec, drawn[rec.id]) if rec.extra["failed"] else []
        if failing and len(drawn[rec.id][failing[0]].edits) > 1:  # no single-edit failure drawn: shrink
            to_shrink[rec.id] = [i for i in failing if len(drawn[rec.id][i].edits) > 1]
    singles = {(ex_id, i): [perturb.perturb(drawn[ex_id][i].original, [e]) for e in drawn[ex_id][i].edits]
               for ex_id, idx in to_shrink.items() for i in idx}
    single_texts = list(dict.fromkeys(s.text for group in singles.values() for s in group))
    with step(f"{name}: shrinking {len(singles)} failing perturbations ({len(single_texts)} single edits)",
              len(single_texts)):
        predictor.predict(single_texts)
    unparsed = 0
    for rec in records:
        if not rec.extra["failed"]:
            continue
        ps = drawn[rec.id]
        shrunk = None
        for i in to_shrink.get(rec.id, []):
            for single in singles[(rec.id, i)]:
                q = predictor.known(single.text)
                if q.label is None:
                    unparsed += 1
                    reasons[reason_key("shrinking", q.code)] += 1
                elif shrunk is None and q.label != rec.prediction:
                    shrunk = (single, q.label, i)
        if shrunk is None:  # a single-edit failure was drawn, or the edits only fail together
            first = _failing(rec, ps)[0]
            shrunk = (ps[first], rec.extra["perturbations"][first]["prediction"], first)
        p, label, i = shrunk
        rec.extra["shrunk"] = {"original": p.original, "text": p.text, "edits": [e.describe() for e in p.edits],
                               "prediction": label, "single_edit": len(p.edits) == 1, "from_perturbation": i}
    return unparsed


def _failure_figures(records: list[ExampleRecord], qualifier: str) -> tuple[dict[str, Any], dict[str, str], list[dict]]:
    """The figures INV and DIR share: failing examples and failing perturbations, with Wilson
    intervals, over what was scored (``extra["failed"]`` None: nothing parsed to judge)."""
    tested = [r for r in records if r.extra["failed"] is not None]
    rows = [row for r in tested for row in r.extra["perturbations"] if row["failed"] is not None]
    figures: dict[str, Any] = {}
    undefined: dict[str, str] = {}
    put_proportion(figures, undefined, "failure_rate", sum(1 for r in tested if r.extra["failed"]), len(tested),
                f"no example with a parsed prediction and a parsed perturbed prediction{qualifier}")
    figures["n_tested"] = len(tested)
    figures["n_failed"] = sum(1 for r in tested if r.extra["failed"])
    put_proportion(figures, undefined, "perturbation_failure_rate", sum(1 for row in rows if row["failed"]), len(rows),
                f"no perturbation with parsed predictions before and after{qualifier}")
    figures["n_perturbations"] = len(rows)
    return figures, undefined, rows

# -- DIR -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One directional perturbation: ``input`` should not move the prediction against
    ``direction`` (sign +1: towards it, a sentence appended or a step up; -1: a step down, away
    from it)."""

    input: Any  # the perturbed text, or grid point
    edit: str  # what was changed, for the report
    direction: str  # the option the edit pushes towards (sign +1) or away from (sign -1)
    sign: int
    move: str | None = None  # grid: "up" or "down"


def _append(text: str, sentence: str) -> str:
    return text + ("" if text[-1:].isspace() else " ") + sentence


def _text_probes(task: Any, text: str, ex_id: str, settings: PerturbationSettings) -> list[Probe]:
    """``perturbations`` distinct (sentence, option) pairs: an option uniformly among those with
    sentences, then one of its sentences uniformly (so an option's chance does not depend on how
    many sentences it lists); all pairs, option by option in the task's option order, when there
    are no more than that."""
    table = {o: tuple(task.directional[o]) for o in task.options if task.directional.get(o)}
    pairs = [(o, s) for o, sentences in table.items() for s in sentences]
    if len(pairs) > settings.perturbations:
        rng = random.Random(f"dir:{settings.seed}:{ex_id}")
        seen: set[tuple[str, str]] = set()
        chosen: list[tuple[str, str]] = []
        while len(chosen) < settings.perturbations:
            option = rng.choice(list(table))
            pair = (option, rng.choice(table[option]))
            if pair not in seen:
                seen.add(pair)
                chosen.append(pair)
        pairs = chosen
    return [Probe(_append(text, s), f"append {s!r} (towards {o!r})", o, +1) for o, s in pairs]


def _grid_probes(task: Any, point: Any, ex_id: str, settings: PerturbationSettings) -> list[Probe]:
    """Up to ``perturbations`` one-step moves (`perturb.grid_neighbours`) of features that declare
    ``increases``, drawn without replacement and kept in neighbour order."""
    by_name = {f.name: f for f in task.features}
    moves = [m for m in perturb.grid_neighbours(task, point) if by_name[m.feature].increases is not None]
    if len(moves) > settings.perturbations:
        rng = random.Random(f"dir:{settings.seed}:{ex_id}")
        moves = [moves[i] for i in sorted(rng.sample(range(len(moves)), settings.perturbations))]
    out = []
    for m in moves:
        f = by_name[m.feature]
        up = f.values.index(m.new) > f.values.index(m.old)
        out.append(Probe(m.point, m.describe(), f.increases, +1 if up else -1, "up" if up else "down"))
    return out


def directional_probes(task: Any, example_id: str, x: Any, settings: PerturbationSettings) -> list[Probe]:
    """The DIR probes of one example (seeded from (seed, example id); no model call)."""
    if task.kind == "grid":
        return _grid_probes(task, x, example_id, settings)
    return _text_probes(task, x, example_id, settings)


def _directional_record(task: Any, ex_id: str, x: Any, pred: Prediction, probes: list[Probe], predictor: Predictor,
                        settings: PerturbationSettings, reasons: Counter[str]) -> ExampleRecord:
    """An example's record: each probe judged against its expected direction (by the option
    probability with a tolerance when scored, by the label otherwise); a probe that cannot fail
    (the prediction is already the direction's option) is marked and not counted."""
    grid = task.kind == "grid"
    probability = predictor.mode == "score"
    rec = prediction_record(ex_id, task.as_dict(x) if grid else x, pred)
    rows = []
    for probe in probes:
        row = {"point" if grid else "text": task.as_dict(probe.input) if grid else probe.input, "edits": [probe.edit],
               "direction": probe.direction, "prediction": None, "failed": None, "shift": None}
        if probe.move is not None:
            row["move"] = probe.move
        rows.append(row)
    rec.extra["perturbations"] = rows
    rec.extra["failed"] = None
    if pred.label is None:
        reasons[reason_key("prediction", pred.code)] += 1
        return rec
    for probe, row in zip(probes, rows):
        q = predictor.known(probe.input)
        row["prediction"] = q.label
        if q.label is None:
            row["unparsed"] = q.reason
            reasons[reason_key("perturbed", q.code)] += 1
            continue
        failed, row["shift"] = _dir_outcome(pred, q, probe, settings.dir_tolerance, probability)
        if _can_fail(pred, probe, settings.dir_tolerance, probability):
            row["failed"] = failed
        else:
            row["cannot_fail"] = True
    _note_unparsed(rec, rows)
    scored = [r for r in rows if r["failed"] is not None]
    if scored:
        rec.extra["failed"] = any(r["failed"] for r in scored)
    return rec


def _directions(task: Any) -> dict[str, Any]:
    """What the task declares, for ``info``; CheckNotApplicable when nothing is declared."""
    if task.kind == "grid":
        declared = {f.name: f.increases for f in task.features if getattr(f, "increases", None) is not None}
        if not declared:
            raise CheckNotApplicable(
                f"dir needs a declared direction: no feature of grid task {task.name!r} declares one; add "
                'increases = "<option>" to an integer or ordinal [[features]] table of the task .toml '
                "(or Feature(..., increases=...) in Python)"
            )
        return declared
    declared = {o: list(s) for o, s in (getattr(task, "directional", None) or {}).items() if s}
    if not declared:
        raise CheckNotApplicable(
            f"dir needs directional sentences: text task {task.name!r} declares none; add a [directional] table "
            "to the task .toml (option = [\"sentence pushing towards it\", ...]) or pass directional= to "
            "load_text_dataset"
        )
    return declared


def _can_fail(pred: Prediction, probe: Probe, tolerance: float, probability: bool) -> bool:
    """Whether any answer on the perturbed input could fail the probe. CheckList's
    ``Expect.monotonic`` leaves such pairs out: p(d) <= tolerance cannot drop by more than the
    tolerance (p(d) >= 1 - tolerance cannot rise by more); a label that is not d cannot leave d."""
    d = probe.direction
    if probability:
        p = pred.probs[d]  # type: ignore[index]
        return p > tolerance + _FLOAT_SLACK if probe.sign > 0 else p < 1 - tolerance - _FLOAT_SLACK
    return pred.label == d if probe.sign > 0 else pred.label != d


def _dir_outcome(pred: Prediction, q: Prediction, probe: Probe, tolerance: float, probability: bool) -> tuple[bool, float | None]:
    """(failed, shift). shift: the change of p(direction option) in the expected direction
    (positive: moved the expected way); probabilities only."""
    d = probe.direction
    if probability:
        shift = probe.sign * (q.probs[d] - pred.probs[d])  # type: ignore[index]
        return shift < -(tolerance + _FLOAT_SLACK), shift
    if probe.sign > 0:
        return pred.label == d and q.label != d, None
    return pred.label != d and q.label == d, None


def run_directional(
    model: ChatModel,
    model_spec: str,
    task: Any,
    examples: Sequence[tuple[str, Any]],
    settings: PerturbationSettings = PerturbationSettings(),
) -> CheckResult:
    """CheckList DIR: does the prediction move the declared way (or at least not the other way)?
    Stages: probes from the task's declared directions, predictions on originals and probes, each
    probe judged, figures. Raises `CheckNotApplicable` when the task declares no direction, before
    any model call."""
    directions = _directions(task)
    predictor = task_predictor(model, task, settings)
    probability = predictor.mode == "score"
    probes = {ex_id: directional_probes(task, ex_id, x, settings) for ex_id, x in examples}
    name = task.name

    preds = _predict(predictor, name, examples, {ex_id: [p.input for p in ps] for ex_id, ps in probes.items()},
                     "directional perturbations")

    reasons: Counter[str] = Counter()
    records = [_directional_record(task, ex_id, x, pred, probes[ex_id], predictor, settings, reasons)
               for (ex_id, x), pred in zip(examples, preds)]
    rows_of = [row for r in records for row in r.extra["perturbations"]]

    figures, undefined, _ = _failure_figures(records, " that could fail")
    # the shift describes every scored perturbation, those that could not fail included
    shifts = [row["shift"] for r in records for row in r.extra["perturbations"] if row["shift"] is not None]
    figures["mean_expected_shift"] = mean_or_none(shifts)
    if not shifts:
        undefined["mean_expected_shift"] = ("no option probabilities (generate mode)" if not probability
                                            else "no perturbation scored")
    info = {
        "task_kind": task.kind,
        "prediction_mode": predictor.mode,
        "expectation": "probability" if probability else "label",
        "dir_tolerance": settings.dir_tolerance,  # used by the probability expectation only
        "directions": directions,
        "settings": asdict(settings),
        "n_perturbations_drawn": sum(len(ps) for ps in probes.values()),
        "n_examples_without_probes": sum(1 for ps in probes.values() if not ps),
        "n_prediction_unparsed": sum(1 for p in preds if p.label is None),
        "n_perturbed_unparsed": sum(1 for row in rows_of if row.get("unparsed")),
        "n_perturbations_cannot_fail": sum(1 for row in rows_of if row.get("cannot_fail")),
        "unparsed_reasons": dict(reasons),
        "predictions_requested": predictor.requested,
        "undefined": undefined,
    }
    return CheckResult("dir", model_spec, name, None, len(records), figures, records, info)


# -- the checks, for the registry (sce_checks/checks/base.py) -----------------------------------------


def _failed_share(e: dict[str, Any]) -> float | None:
    """An example's share of failed perturbations, over those scored (None: none scored)."""
    rows = [r for r in e.get("perturbations") or [] if r.get("failed") is not None]
    return sum(1 for r in rows if r["failed"]) / len(rows) if rows else None


# failure_rate counts examples with a failed perturbation; the perturbation failure rate pools
# the perturbations, so per example it is the share that failed (the same perturbations are drawn
# again from the seed)
_FAILURE_OUTCOMES = (
    Outcome("failed", "binary", ("failure_rate",)),
    Outcome("failed_share", "continuous", ("perturbation_failure_rate",), _failed_share),
)


class _PerturbationCheck(Check):
    """INV and DIR; their declarations (names, figures) are sce_checks/checks/catalog.py `INV`, `DIR`."""

    outcomes = _FAILURE_OUTCOMES
    settings = PerturbationSettings

    def example_table(self, result: CheckResult, k: int) -> tuple[str, list[str], list[list[str]]] | None:
        """Examples whose prediction moved: the failing perturbation, shrunk to its smallest
        failing edit, or the probe whose probability moved the wrong way."""
        rows = []
        for e in result.examples:
            if not e.extra.get("failed"):
                continue
            case = e.extra.get("shrunk") or next((p for p in e.extra.get("perturbations", []) if p.get("failed")), {})
            edits = case.get("edits") or []
            detail = (f"p({case['direction']}) moved {case['shift']:+.3f}" if case.get("shift") is not None
                      and case.get("direction") else short(case.get("text", case.get("input"))))
            rows.append([e.id, short(e.input), short("; ".join(edits) if isinstance(edits, list) else edits),
                         f"{e.prediction} -> {case.get('prediction')}", detail])
            if len(rows) >= k:
                break
        return ("failing examples", FAILING_HEADERS, rows) if rows else None


class InvarianceCheck(_PerturbationCheck):
    def applies(self, task: Any, model: ChatModel, settings: PerturbationSettings) -> str | None:
        return INV_NOT_ON_GRIDS if task.kind == "grid" else None

    def run(self, model: ChatModel, model_name: str, task: Any, examples: Sequence[tuple[str, Any]],
            settings: PerturbationSettings, shared: dict[str, Any]) -> list[CheckResult]:
        return [run_invariance(model, model_name, task, examples, settings)]


class DirectionalCheck(_PerturbationCheck):
    def require(self, task: Any, model: ChatModel, settings: PerturbationSettings) -> None:
        _directions(task)

    def run(self, model: ChatModel, model_name: str, task: Any, examples: Sequence[tuple[str, Any]],
            settings: PerturbationSettings, shared: dict[str, Any]) -> list[CheckResult]:
        return [run_directional(model, model_name, task, examples, settings)]
