"""hypothesis settings profiles of the reliability fuzz suites (tests/test_fuzz_parsers.py).

``SCE_FUZZ_PROFILE`` picks one:

- ``ci`` (the default): derandomised (the same examples on every run, no example database), a few
  hundred examples per test: a few thousand replies in all, within a minute or so.
- ``nightly``: random, ``NIGHTLY_EXAMPLES`` examples per test: at least 10,000 generated replies
  per parser.

Both have no deadline (a reply of 200,000 characters takes longer than hypothesis' default 200 ms
on a loaded machine) and allow large and slow data (huge numbers, deep nesting). The profiles are
applied per test (``@fuzz_settings()``), never loaded globally: other hypothesis tests keep the
project's own profile (conftest.py).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_ENV = "SCE_FUZZ_PROFILE"
PROFILES = {"ci": "sce-fuzz-ci", "nightly": "sce-fuzz-nightly"}
CI_EXAMPLES = 400
NIGHTLY_EXAMPLES = 10_000

_common = dict(parent=settings.get_profile("default"), deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
settings.register_profile(PROFILES["ci"], max_examples=CI_EXAMPLES, derandomize=True, print_blob=True, **_common)
settings.register_profile(PROFILES["nightly"], max_examples=NIGHTLY_EXAMPLES, print_blob=True, **_common)


def fuzz_profile() -> str:
    """``ci`` or ``nightly``, from ``SCE_FUZZ_PROFILE``; anything else is an error, not a silent default."""
    name = os.environ.get(PROFILE_ENV, "ci").strip() or "ci"
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV} must be one of {', '.join(PROFILES)}, not {name!r}")
    return name


def fuzz_settings() -> settings:
    """The selected profile, to decorate a fuzz test with."""
    return settings.get_profile(PROFILES[fuzz_profile()])
