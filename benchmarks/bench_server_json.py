"""Reading a large server answer: the openai backend's JSON reader against ``json.loads``.

Issue 26, item 6: a 7 MiB chat completion (a long reply with top-20 logprobs for every token)
took 0.57 s through the bounded reader of sce_checks/parsing.py (``load_json``: a character-by-
character scan in Python, then ``json.loads``, then a walk of the value), so a run against a
server sending such answers spent most of its time reading them. The backend now reads server
bodies with ``sce_checks.models.http.read_json`` (the size first, then the standard parser with
digit and duplicate-key hooks, then the depth in C-speed passes). This times all three on the
same body, best of ``--repeat`` runs, and checks that the two readers agree.

    python benchmarks/bench_server_json.py --mib 7 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sce_checks.models.http import MAX_BODY_BYTES, read_json  # noqa: E402
from sce_checks.parsing import load_json  # noqa: E402


def long_reply(mib: float) -> str:
    """A chat completion of about ``mib`` MiB whose reply is one long text (issue 26's case)."""
    words = ("the model answers at length, " * (int(mib * 1024 * 1024) // 29 + 1))[: int(mib * 1024 * 1024)]
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": words}, "finish_reason": "length"}]})


def escapes(mib: float) -> str:
    """A chat completion of about ``mib`` MiB whose reply is line breaks: one escape every 2 bytes."""
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "\n" * int(mib * 2**19)}, "finish_reason": "length"}]})


def completion(mib: float) -> str:
    """A chat completion of about ``mib`` MiB: 4-character tokens, each with 20 alternatives."""
    content, size, i = [], 0, 0
    while size < mib * 1024 * 1024:
        token = f"t{i % 1000:03d}"
        entry = {"token": token, "logprob": math.log(0.9),
                 "top_logprobs": [{"token": f"a{j:02d}{i % 10}", "logprob": -0.1 * j - 0.05} for j in range(20)]}
        content.append(entry)
        size += len(json.dumps(entry)) + 2
        i += 1
    choice = {"index": 0, "message": {"role": "assistant", "content": "".join(e["token"] for e in content)},
              "logprobs": {"content": content}, "finish_reason": "length"}
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": [choice],
                       "usage": {"prompt_tokens": 10, "completion_tokens": len(content)}})


def best(fn, text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for shape, make in (("one long reply", long_reply), ("a reply of line breaks (escapes)", escapes),
                        ("top-20 logprobs for every token", completion)):
        text = make(args.mib)
        old, new = load_json(text, MAX_BODY_BYTES), read_json(text)
        assert old[1] is None and new[1] is None and old[0] == new[0], "the readers disagree"
        print(f"{shape}: {len(text) / 2**20:.2f} MiB, best of {args.repeat}")
        for name, fn in (("json.loads", json.loads), ("parsing.load_json (before)", lambda t: load_json(t, MAX_BODY_BYTES)),
                         ("http.read_json (now)", read_json)):
            print(f"  {name:28s} {best(fn, text, args.repeat):.3f} s")


if __name__ == "__main__":
    main()
