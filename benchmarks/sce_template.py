"""What the SCE follow-up template does to a model's replies, on the built-in grids.

For the audited sample of each grid task (the same examples `sce-audit --limit N --seed S` takes)
this asks the model for an SCE with two follow-up templates, under free and under schema
elicitation, and counts what came back:

* ``filled example``: the follow-up of sce-checks 0.1.0 (each feature described in words, then
  "for example {<every feature at its first value>}");
* ``empty keys``: today's, after the paper's template (values and types listed, then the keys
  with empty values, ``{"age": "", "education": ""}``).

Columns: parseable SCEs; of those, how many are the example record itself (every feature at its
first value), how many leave the record unchanged, and how many distinct records came back.

    python benchmarks/sce_template.py --limit 10 --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sce_checks.checks.predict import Predictor  # noqa: E402
from sce_checks.models import Decoding, ModelOptions, load_model  # noqa: E402
from sce_checks.parsing import parse_grid_sce  # noqa: E402
from sce_checks.prompts import grid as prompts  # noqa: E402
from sce_checks.prompts.schemas import grid_sce_schema  # noqa: E402
from sce_checks.tasks import task_examples  # noqa: E402
from sce_checks.tasks.builtin_grids import BUILTIN_GRIDS  # noqa: E402


def old_describe(feature) -> str:
    """Feature.describe() of sce-checks 0.1.0."""
    if feature.type == "integer":
        step = feature.values[1] - feature.values[0] if len(feature.values) > 1 else 1
        step_txt = "" if step == 1 else f" in steps of {step}"
        return f"integer from {feature.values[0]} to {feature.values[-1]}{step_txt}"
    quoted = ", ".join(f'"{v}"' for v in feature.values)
    kind = "ordered categories, lowest to highest" if feature.type == "ordinal" else "one of"
    return f"{feature.type} ({kind}): {quoted}"


def filled_example_request(task, target: str, variant: str) -> str:
    """The follow-up of sce-checks 0.1.0, with its filled example record."""
    features = "\n".join(f"- {f.name}: {old_describe(f)}" for f in task.features)
    example = json.dumps({f.name: f.values[0] for f in task.features}, ensure_ascii=False)
    if variant == "minimal":
        ask = (f'Now make the smallest possible change to the record so that your answer would have been "{target}": '
               f"change the record just enough to cross your own decision boundary, and no further. {prompts.GOWER_EXPLANATION}")
    else:
        ask = f'Now revise the record so that your answer would have been "{target}".'
    return (f"{ask}\n\nGive a value for every feature, using these keys and allowed values:\n{features}\n\n"
            f"Reply with a JSON object only, with exactly these keys, for example {example}.")


TEMPLATES = {"filled example": filled_example_request, "empty keys": prompts.sce_request}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="*", default=list(BUILTIN_GRIDS))
    args = parser.parse_args()
    model = load_model(args.model, ModelOptions())
    print(f"model {args.model}, {args.limit} examples per task, seed {args.seed}, both variants, greedy\n")
    print("| task | template | elicitation | parseable | = example record | unchanged | distinct records |")
    print("|---|---|---|---|---|---|---|")
    for name in args.tasks:
        task = BUILTIN_GRIDS[name]
        examples = task_examples(task, args.limit, args.seed)
        predictor = Predictor(model, task.options, lambda x: prompts.prediction_conversation(task, x), "auto")
        preds = predictor.predict([x for _, x in examples])
        example_record = tuple(f.values[0] for f in task.features)
        for template, request in TEMPLATES.items():
            for elicitation in ("free", "schema"):
                conversations, originals = [], []
                for (_, x), pred in zip(examples, preds):
                    target = task.other_option(pred.label)
                    for variant in ("unconstrained", "minimal"):
                        conversations.append([
                            *prompts.prediction_conversation(task, x),
                            {"role": "assistant", "content": pred.reply},
                            {"role": "user", "content": request(task, target, variant)},
                        ])
                        originals.append(x)
                decoding = Decoding(max_new_tokens=256)
                if elicitation == "schema":
                    decoding = decoding.with_schema(grid_sce_schema(task))
                replies = model.chat(conversations, decoding)
                parsed = [parse_grid_sce(r, task) for r in replies]
                points = [p.value for p in parsed if p.ok]
                same = sum(1 for p in points if p == example_record)
                unchanged = sum(1 for p, x in zip(parsed, originals) if p.ok and p.value == x)
                print(f"| {name} | {template} | {elicitation} | {len(points)}/{len(replies)} | {same} | {unchanged} | "
                      f"{len(set(points))} |")


if __name__ == "__main__":
    main()
