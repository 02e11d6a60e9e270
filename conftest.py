"""Repo-level pytest set-up, shared by tests/ and audits/.

- Offline: no hub downloads, ever (HF_HUB_OFFLINE); tests reach only 127.0.0.1.
- Hypothesis profiles: "sce-dev" (default) and "sce-ci" (derandomized, used when CI is set), both
  without deadlines because model-backed examples take variable time.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("sce-dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("sce-ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sce-ci" if os.environ.get("CI") else "sce-dev")
