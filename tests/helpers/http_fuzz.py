"""hypothesis strategies of the HTTP fuzz (tests/models/test_openai_faults.py), importable on their
own (they use no sce_checks code) so that scripts/measure_http_faults.py can run the same
payloads against another version of the backend.

Sizes follow ``SCE_FUZZ_PROFILE`` (as tests/test_fuzz_parsers.py does): ``ci`` (the default,
derandomised: the same 4,000 logprob payloads on every run) or ``nightly`` (20,000 random ones);
``SCE_FUZZ_EXAMPLES=N`` sets the number outright.
"""

from __future__ import annotations

import json
import math
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_PROFILE = os.environ.get("SCE_FUZZ_PROFILE", "ci").strip() or "ci"
if FUZZ_PROFILE not in ("ci", "nightly"):
    raise ValueError(f"SCE_FUZZ_PROFILE must be ci or nightly, not {FUZZ_PROFILE!r}")
FUZZ_EXAMPLES = int(os.environ.get("SCE_FUZZ_EXAMPLES") or (4_000 if FUZZ_PROFILE == "ci" else 20_000))
BODY_EXAMPLES = max(200, FUZZ_EXAMPLES // 8)


def fuzz(examples: int) -> settings:
    """hypothesis settings of a fuzz run: ``examples`` examples, derandomised under ``ci``."""
    return settings(max_examples=examples, deadline=None, database=None, derandomize=FUZZ_PROFILE == "ci",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# A payload is built valid, then (half the time) one field of one entry is spoiled: the hardest
# case, one bad value among good ones. Valid payloads of the "oracle" form spell the options'
# shared text and part them with known log-probabilities, so their scores are known exactly (a
# different score is a miscount); the "random" ones are random tokens (no crash, no NaN). Junk in
# place of the whole payload or of its content covers the rest.

TOKENS = ['{"an', 'swer', '": "', "Posi", "Nega", "tive", '"}', "P", "N", "{", "}", "The ", ""]
LOGPROB = st.floats(min_value=-40, max_value=0)
BAD_NUMBER = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.just(math.nan), st.just(math.inf),
                       st.just(-math.inf), st.floats(min_value=0.01, allow_infinity=False),
                       st.integers(min_value=10**400, max_value=10**401), st.lists(LOGPROB, max_size=2))
NOT_OBJECT = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6),
                       st.lists(st.text(max_size=3), max_size=2))
NOT_LIST = st.one_of(st.booleans(), st.integers(), st.text(max_size=6),
                     st.dictionaries(st.text(max_size=3), LOGPROB, max_size=2))
ALTERNATIVES = st.lists(st.fixed_dictionaries({"token": st.sampled_from(TOKENS), "logprob": LOGPROB}), max_size=3)
ENTRY = st.fixed_dictionaries({"token": st.sampled_from(TOKENS), "logprob": LOGPROB},
                              optional={"top_logprobs": ALTERNATIVES | st.none()})
SPOILS = ("entry", "logprob", "no logprob", "token", "top", "alternative", "alternative logprob")


@st.composite
def logprob_payloads(draw) -> tuple[object, list[float] | None, bool]:
    """(payload, the scores of REPLIES where known, whether the payload is valid)."""
    form = draw(st.sampled_from(["oracle", "random", "junk"]))
    if form == "junk":
        content = st.fixed_dictionaries({"content": NOT_LIST | st.just([]) | st.none()})
        return draw(NOT_OBJECT | content), None, False
    expected = None
    if form == "oracle":  # the options part at the fourth token, as the walk reads a reply
        shared = [{"token": t, "logprob": draw(LOGPROB), "top_logprobs": []} for t in ('{"an', "swer", '": "')]
        positive, negative = draw(LOGPROB), draw(LOGPROB)
        token, logprob = draw(st.sampled_from([("Posi", positive), ("Nega", negative)]))
        parting = {"token": token, "logprob": logprob,
                   "top_logprobs": [{"token": "Posi", "logprob": positive}, {"token": "Nega", "logprob": negative}]}
        entries = [*shared, parting, *draw(st.lists(ENTRY, max_size=2))]
        base = sum(e["logprob"] for e in shared)
        expected = [base + positive, base + negative]
    else:
        entries = draw(st.lists(ENTRY, min_size=1, max_size=4))
    spoil = draw(st.sampled_from((None,) * len(SPOILS) + SPOILS))  # half the payloads stay valid
    if spoil is not None:
        at = draw(st.integers(0, len(entries) - 1))
        entry = dict(entries[at])
        if spoil == "entry":
            entry = draw(NOT_OBJECT)
        elif spoil == "logprob":
            entry["logprob"] = draw(BAD_NUMBER)
        elif spoil == "no logprob":
            del entry["logprob"]
        elif spoil == "token":
            entry["token"] = draw(NOT_OBJECT.filter(lambda v: not isinstance(v, str)))
        elif spoil == "top":
            entry["top_logprobs"] = draw(NOT_LIST)
        else:
            top = list(entry.get("top_logprobs") or []) or [{"token": "Posi", "logprob": -1.0}]
            k = draw(st.integers(0, len(top) - 1))
            top[k] = draw(NOT_OBJECT) if spoil == "alternative" else {**top[k], "logprob": draw(BAD_NUMBER)}
            entry["top_logprobs"] = top
        entries[at] = entry
    return {"content": entries}, expected, spoil is None


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["choices", "message", "content", "logprobs", "error"]) | st.text(max_size=4), inner,
        max_size=3),
    max_leaves=8,
)


def response_bodies() -> st.SearchStrategy[bytes]:
    """Bodies of a 200 answer: JSON junk shaped like a completion, raw bytes, nesting past the
    bounds, and integers past the digit bound where the choices should be."""
    return st.one_of(JUNK.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200),
                     st.integers(min_value=3, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
                     st.integers(min_value=31, max_value=6000).map(lambda n: b'{"choices": ' + b"9" * n + b"}"))
