"""Repo-level pytest set-up, shared by tests/ and audits/.

- Offline: no hub downloads, ever (HF_HUB_OFFLINE); tests reach only 127.0.0.1.
- Hypothesis profiles from sce_checks.strategies: "sce-dev" (default) and "sce-ci" (derandomized,
  used when CI is set), both without deadlines because model-backed examples take variable time.
"""

import os

pytest_plugins = ["pytester"]  # the plugin's own tests run pytest in a temporary folder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hypothesis import settings  # noqa: E402

from sce_checks.strategies import default_profile  # noqa: E402  (importing registers sce-dev / sce-ci)

settings.load_profile(default_profile())
