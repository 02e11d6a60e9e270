"""The heavy libraries, each imported here and nowhere else, on first use.

torch, transformers (with huggingface_hub), llguidance, captum, lemminflect, scipy and
matplotlib take long to import or are needed only on some paths: a local model (hf, smollm2),
structured elicitation on it, the self-consistency check's attributions, the CT insertion
points, the baseline tests, the HTML report's plots; pyarrow and datasets (the optional ``data``
extra) only read Parquet and Hugging Face datasets. Importing sce_checks, starting pytest, a cached rerun and an openai or python
run import none of them (tests/models/test_imports.py, tests/test_registry.py). A missing
library is one `UserInputError` line saying what needs it and what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sce_checks.errors import UserInputError


def _load(module: str, needed_for: str, install: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise UserInputError(f"{needed_for} needs {module.split('.')[0]}, which is not importable ({reason}); "
                             f"install it with: pip install {install}") from None


def torch(needed_for: str = "a local (hf or smollm2) model") -> ModuleType:
    """The ``torch`` package."""
    return _load("torch", needed_for, "torch")


def transformers(submodule: str = "", needed_for: str = "a local (hf or smollm2) model") -> ModuleType:
    """``transformers``, or its ``submodule`` (``"generation.utils"``: transformers.generation.utils)."""
    return _load("transformers" + (f".{submodule}" if submodule else ""), needed_for, "transformers")


def huggingface_hub() -> ModuleType:
    """The ``huggingface_hub`` package (installed with transformers): where a hub model's files are."""
    return _load("huggingface_hub", "an hf model named by its hub id", "huggingface_hub")


def llguidance() -> ModuleType:
    """``llguidance`` with its ``hf`` helpers (``llguidance.hf.from_tokenizer``) loaded."""
    needed_for = "structured elicitation on hf models"
    _load("llguidance.hf", needed_for, "llguidance")
    return _load("llguidance", needed_for, "llguidance")


def captum_attr() -> ModuleType:
    """``captum.attr``: the self-consistency check's attribution methods."""
    return _load("captum.attr", "the self-consistency check", "'captum>=0.8,<1'")


def lemminflect() -> ModuleType:
    """``lemminflect``: the English POS lexicon of the CT insertion points (sce_checks/perturb/tagging.py)."""
    return _load("lemminflect", "counterfactual insertion points (ct, cct, phi_cct)", "'lemminflect>=0.2.3,<0.3'")


def scipy_stats() -> ModuleType:
    """``scipy.stats``: the exact tests and the binomial planning of baseline comparisons."""
    return _load("scipy.stats", "comparing a run with a baseline", "'scipy>=1.11,<2'")


def matplotlib_figure() -> ModuleType:
    """``matplotlib.figure``, drawing off-screen (the Agg backend unless one was chosen)."""
    matplotlib = _load("matplotlib", "the HTML report's plots", "matplotlib")
    matplotlib.use("Agg", force=False)
    return _load("matplotlib.figure", "the HTML report's plots", "matplotlib")


_DATA_EXTRA = "'sce-checks[data]'"


def pyarrow(submodule: str = "", needed_for: str = "a Parquet or Hugging Face dataset") -> ModuleType:
    """``pyarrow``, or its ``submodule`` (``"parquet"``), from the ``data`` extra."""
    return _load("pyarrow" + (f".{submodule}" if submodule else ""), needed_for, _DATA_EXTRA)


def datasets(needed_for: str = "a Hugging Face dataset", submodule: str = "") -> ModuleType:
    """Hugging Face ``datasets``, or its ``submodule``, from the ``data`` extra."""
    return _load("datasets" + (f".{submodule}" if submodule else ""), needed_for, _DATA_EXTRA)
