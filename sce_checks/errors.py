"""Error types and the exit-code contract. A `UserInputError` is the user's to fix (bad spec, bad
file, unreachable server): the CLI and the plugin print its one-line message without a traceback
and exit with status 2.

Exit codes, one contract across ``sce-audit``, pytest runs of the plugin and audit files: 0 every
gate holds, 1 a gate failed (a threshold, a baseline regression), 2 bad input or an unusable
backend (one line naming the file and the key or line; bad input is found before any model call).
"""

from __future__ import annotations

import os
from typing import Mapping

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class SceError(Exception):
    """Base class of every error sce-checks raises on purpose."""


class UserInputError(SceError):
    """Bad input from the user: an unknown model spec, a malformed file, a missing package.

    The message must say what was wrong, where (file and line or key, or the spec), and what is
    accepted instead.
    """


class BackendError(SceError):
    """A model backend failed after retries (server down, timeouts, garbage responses)."""


class CheckNotApplicable(UserInputError):
    """A check cannot run on this task or backend (CCT without option scoring, attribution
    without weights, INV on a grid task). pytest items skip with the message; ``sce-audit`` shows
    the skip and does not count it as a failure."""


# Environment variables whose values are secrets by their name's ending: OPENAI_API_KEY,
# HF_TOKEN, AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, DB_PASSWORD, ... A value this short or shorter is
# not redacted: it would blank out common words and digits of unrelated text.
SECRET_ENDINGS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
SHORTEST_SECRET = 6
REDACTED = "<redacted>"


def redact_secrets(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with the value of every secret-named environment variable (`SECRET_ENDINGS`, any
    case) replaced by ``<redacted>``, longest first. For messages that show what user code (a
    Python model) said: an exception often quotes the key it was given."""
    env = os.environ if environ is None else environ
    values = {v.strip() for name, v in env.items()
              if name.upper().endswith(SECRET_ENDINGS) and len(v.strip()) > SHORTEST_SECRET}
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text
