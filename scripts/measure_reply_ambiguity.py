"""Count replies that a checkout misreads, or cannot store, in the areas of issue 26 (docs/reliability.md).

Each generated reply has a known right reading:

- ``fence_answer``: ``{"answer": A, "reason": "... ```{"answer": B}``` ..."}``, maybe inside an
  outer fence or prose: read as A (a fence inside a JSON string is text);
- ``fence_text``: ``{"revised_text": "Use ```print(1)``` to print"}``: read as that text;
- ``duplicate``: an answer or revised_text given twice: unparsed (``duplicate_key``) when the two
  values differ, read as the value when they are the same;
- ``surrogate``: a lone surrogate in a reason or a revised text: read as usual, and stored in and
  read back from a response cache unchanged (a crash counts as lost).

``misread``: a reading other than the right one (lenient and strict counted apart); ``other
option``: an answer read as the option the reply did not give. ``lost``: an exception.
With ``--huge``, also the bytes a cache stores for three replies of N characters.

Usage: python scripts/measure_reply_ambiguity.py [--root CHECKOUT] [--n 6000] [--huge 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

OPTIONS = ("Approved", "Rejected", "Pending")
CODES = ["print(1)", '{"answer": "%s"}', "x = {'a': 1}", "json\n{\"answer\": \"%s\"}\n", "", "a\"b"]


def fenced_reason(rng: random.Random, other: str) -> str:
    code = rng.choice(CODES).replace("%s", other)
    form = rng.choice(["not ```{}``` as one might think", "```{}```", "see ```json {}``` and ```", "use ``` only"])
    return form.format(code)


def wrap(rng: random.Random, body: str) -> str:
    return rng.choice(["%s", "Sure:\n%s", "```json\n%s\n```", "```\n%s\n```", "Here: %s Done."]) % body


def case(rng: random.Random, area: str) -> tuple[str, str, object]:
    """(reply, reader, right reading): the reading is an option, a text, or None (unparsed)."""
    mine, other = rng.sample(OPTIONS, 2)
    if area == "fence_answer":
        items = [("answer", mine), ("reason", fenced_reason(rng, other))]
        rng.shuffle(items)
        return wrap(rng, json.dumps(dict(items), ensure_ascii=rng.random() < 0.5)), "answer", mine
    if area == "fence_text":
        text = rng.choice(["Use ```print(1)``` to print", "Call ```f({\"a\": 1})``` now", "A ``` B ``` C ```"])
        return wrap(rng, json.dumps({"revised_text": text})), "text", text
    if area == "duplicate":
        same = rng.random() < 0.3
        second = mine if same else other
        key = rng.choice(["answer", "revised_text"])
        body = f'{{"{key}": "{mine}", "reason": "r", "{key}": "{second}"}}'
        return wrap(rng, body), "answer" if key == "answer" else "text", mine if same else None
    text = rng.choice(["\ud800", "\udfff", "a\udc80b", "\ud83d"]) + " is fine"
    if rng.random() < 0.5:
        return wrap(rng, json.dumps({"answer": mine, "reason": text})), "answer+cache", mine
    return wrap(rng, json.dumps({"revised_text": text}, ensure_ascii=False)), "text+cache", text


def measure(n: int, seed: int) -> dict:
    from sce_checks.models.cache import ResponseCache
    from sce_checks.parsing import parse_answer, parse_text_sce

    rng = random.Random(seed)
    tally: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as folder:
        cache = ResponseCache(Path(folder) / "responses.sqlite")
        for area in ("fence_answer", "fence_text", "duplicate", "surrogate"):
            for index in range(n):
                reply, reader, right = case(rng, area)
                tally[f"{area} tried"] += 1
                for strict in (False, True):
                    label = f"{area} {'strict' if strict else 'lenient'}"
                    try:
                        if reader.startswith("answer"):
                            value = parse_answer(reply, OPTIONS, strict).value
                        else:
                            value = parse_text_sce(reply, strict).value
                        if reader.endswith("+cache") and not strict:
                            key = f"{area}-{index}"
                            cache.put_many({key: reply})
                            if cache.get_many([key]).get(key) != reply:
                                tally[f"{area} cache lost"] += 1
                    except Exception:  # noqa: BLE001 - counting crashes is the point
                        tally[f"{label} lost"] += 1
                        continue
                    if value != right:
                        tally[f"{label} misread"] += 1
                        if reader.startswith("answer") and value in OPTIONS:
                            tally[f"{label} other option"] += 1
        cache.close()
    return dict(sorted(tally.items()))


def huge(chars: int) -> dict:
    """Bytes on disk and seconds for a cache that is given three replies of ``chars`` characters."""
    from sce_checks.models.base import Decoding
    from sce_checks.models.cache import CachedModel, ResponseCache

    class Talker:
        def chat(self, conversations, decoding):
            return ['{"answer": "Approved"} ' + "x" * chars for _ in conversations]

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "responses.sqlite"
        start = time.perf_counter()
        with ResponseCache(path) as cache:
            model = CachedModel(Talker(), cache)
            model.chat([[{"role": "user", "content": f"q{i}"}] for i in range(3)], Decoding())
        seconds = time.perf_counter() - start
        stored = sum(p.stat().st_size for p in Path(folder).iterdir())
    return {"reply_chars": chars, "replies": 3, "stored_bytes": stored, "seconds": round(seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--n", type=int, default=6000, help="replies per area")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--huge", type=int, default=0, help="characters of each huge reply (0: skip)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    import sce_checks

    result: dict = {"code": sce_checks.__file__, "counts": measure(args.n, args.seed)}
    if args.huge:
        result["huge"] = huge(args.huge)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
