"""The lazy transformers backend: its identity comes from the files (the same function the loaded
model uses), it loads on the first cache miss and only then, and a fully cached ``sce-audit``
rerun imports neither torch nor transformers (tiny model of conftest.py; smollm2's files)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from sce_checks.errors import BackendError, UserInputError  # noqa: E402
from sce_checks.models import Decoding, ModelOptions, load_model, load_model_lazily, parse_spec  # noqa: E402
from sce_checks.models import fingerprint  # noqa: E402
from sce_checks.models.cache import CachedModel, ResponseCache  # noqa: E402
from sce_checks.models.hf import HFChatModel  # noqa: E402
from sce_checks.models.identity import spec_identity  # noqa: E402
from sce_checks.models.lazy import LazyModel  # noqa: E402
from tests.helpers.audit_process import run_sce_audit  # noqa: E402

HI = [{"role": "user", "content": "Hi"}]
BYE = [{"role": "user", "content": "Bye"}]
GREEDY = Decoding(max_new_tokens=4)
OPTION_SETS = [ModelOptions(), ModelOptions(device="cpu"), ModelOptions(device="cpu", dtype="bfloat16", batch_size=3),
               ModelOptions(dtype="float32", batch_size=2)]


@pytest.mark.parametrize("options", OPTION_SETS, ids=["auto", "cpu", "cpu-bf16-bs3", "f32-bs2"])
def test_identity_from_files_is_the_loaded_models(tiny_model_dir, options):
    spec = f"hf:{tiny_model_dir}"
    assert spec_identity(parse_spec(spec), options) == load_model(spec, options).identity()


def test_settings_are_keyed_as_requested(tiny_model_dir):
    """``auto`` stays ``auto`` (resolving it needs torch); an explicit device fixes the dtype;
    what the weights actually sit on is the loaded model's runtime, for the report."""
    spec = parse_spec(f"hf:{tiny_model_dir}")
    assert [(i["device"], i["dtype"]) for i in (spec_identity(spec, o) for o in OPTION_SETS)] == [
        ("auto", "auto"), ("cpu", "float32"), ("cpu", "bfloat16"), ("auto", "float32")]
    assert load_model(f"hf:{tiny_model_dir}").runtime() == {"model_loaded": True, "device": "cpu", "dtype": "float32"}
    with pytest.raises(UserInputError, match="unknown dtype 'float8'"):
        spec_identity(spec, ModelOptions(dtype="float8"))


def test_smollm2_identity_from_its_files_without_loading_it(tiny_model_dir, monkeypatch):
    """The embedded model's identity before loading equals the one its loader gives; the loader
    is run on the tiny weights instead of SmolLM2's (the tokenizer and folder are smollm2's own)."""
    from transformers import AutoModelForCausalLM

    from sce_checks.models.identity import converted_smollm2_folder
    from tests.helpers.tiny_llama import build_tiny_llama

    model, _ = build_tiny_llama(1234)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *args, **kwargs: model)
    folder = converted_smollm2_folder()  # converted when the tiny model's tokenizer was made
    assert folder is not None
    for options in OPTION_SETS:
        before = spec_identity(parse_spec("smollm2"), options)
        assert before is not None and before == load_model("smollm2", options).identity()
        assert before["model"] == "smollm2" and before["fingerprint"] == fingerprint.folder_fingerprint(folder)


def test_fingerprint_is_remembered_by_path_size_and_mtime(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    copy = Path(shutil.copytree(tiny_model_dir, tmp_path / "copy"))
    real = fingerprint.folder_fingerprint
    computed: list[Path] = []
    monkeypatch.setattr(fingerprint, "folder_fingerprint", lambda folder: computed.append(Path(folder)) or real(folder))
    first = fingerprint.remembered_folder_fingerprint(copy)
    assert first == real(copy) and len(computed) == 1
    assert fingerprint.remembered_folder_fingerprint(copy) == first and len(computed) == 1  # remembered
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, last byte changed, a new mtime
    weights.write_bytes(bytes(data))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed = fingerprint.remembered_folder_fingerprint(copy)
    assert len(computed) == 2 and changed == real(copy) != first


def test_lazy_model_loads_on_the_first_miss_and_exactly_once(tiny_model_dir, tmp_path, monkeypatch):
    built: list[str] = []
    real = HFChatModel.from_pretrained.__func__

    def counting(cls, path_or_id, options, name=None):
        built.append(path_or_id)
        return real(cls, path_or_id, options, name)

    monkeypatch.setattr(HFChatModel, "from_pretrained", classmethod(counting))
    spec, options = f"hf:{tiny_model_dir}", ModelOptions(batch_size=2)

    def opened() -> CachedModel:
        return CachedModel(load_model_lazily(spec, options), ResponseCache(tmp_path / "responses.sqlite"))

    first = opened()
    assert isinstance(first.inner, LazyModel)
    # what checks ask before any call is answered without a model
    assert first.can_score() and first.can_score_replies() and first.identity()["backend"] == "hf"
    assert built == [] and first.inner.runtime() == {"model_loaded": False}
    replies = first.chat([HI], GREEDY)  # a miss: loads
    assert built == [str(tiny_model_dir)] and first.inner.loads == 1 and first.inner.runtime()["model_loaded"]
    first.chat([BYE], GREEDY)
    first.score_options([HI], ["yes", "no"])  # more misses: the same model
    assert built == [str(tiny_model_dir)] and first.inner.loads == 1 and first.stats.chat_calls == 2

    again = opened()  # a rerun: every answer cached
    assert again.chat([HI, BYE], GREEDY)[0] == replies[0] and again.score_options([HI], ["yes", "no"])
    assert built == [str(tiny_model_dir)] and again.inner.loads == 0 and again.stats.cache_hits == 3
    assert again.inner.runtime() == {"model_loaded": False}


def test_files_changed_before_the_model_loads_are_an_error(tiny_model_dir, tmp_path):
    copy = Path(shutil.copytree(tiny_model_dir, tmp_path / "copy"))
    model = load_model_lazily(f"hf:{copy}")
    config = json.loads((copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5 if config.get("rms_norm_eps") != 1e-5 else 1e-6
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BackendError, match=r"fingerprint differ\): were its files changed"):
        model.chat([HI], GREEDY)


def test_only_transformers_backends_with_files_are_lazy(tiny_model_dir, tmp_path):
    """A folder that does not exist is loaded at once, so its error comes when the model is
    opened, as before; other backends are built at once as they always were."""
    assert isinstance(load_model_lazily(f"hf:{tiny_model_dir}"), LazyModel)
    with pytest.raises(UserInputError, match="could not be loaded"):
        load_model_lazily(f"hf:{tmp_path / 'no-such-model'}")
    assert type(load_model_lazily("openai:m@http://127.0.0.1:9/v1")).__name__ == "OpenAIChatModel"


def test_cached_sce_audit_rerun_imports_neither_torch_nor_transformers(tiny_model_dir, tmp_path):
    """The same audit twice in fresh processes on one cache: the first loads the model, the
    second answers everything from the cache with no model call, no torch and no transformers,
    and reports the same figures."""
    args = ["--model", f"hf:{tiny_model_dir}", "--dataset", "sentiment", "--check", "inv", "--check", "dir",
            "--limit", "2", "--seed", "0", "--batch-size", "4", "-q"]
    env = {"SCE_CHECKS_CACHE_DIR": str(tmp_path / "cache")}
    runs = [run_sce_audit([*args, "--json", str(tmp_path / f"run{i}.json")], env, timeout=600) for i in (1, 2)]
    for run in runs:
        assert run.returncode == 0, run.output
    assert runs[0].heavy == ["torch", "transformers"]  # the check can see an import
    assert runs[1].heavy == [], runs[1].output
    cold, cached = (json.loads((tmp_path / f"run{i}.json").read_text()) for i in (1, 2))
    calls = cached["environment"]["model_calls"]
    assert calls["chat_calls"] == calls["score_calls"] == 0 and calls["cache_hits"] > 0
    assert cold["environment"]["model_calls"]["score_calls"] > 0
    assert cold["environment"]["model_loaded"] is True and cold["environment"]["dtype"] == "float32"
    assert cached["environment"]["model_loaded"] is False and cached["environment"]["dtype"] == "auto"
    assert cached["environment"]["model_identity"] == cold["environment"]["model_identity"]
    assert cached["results"] == cold["results"] and cold["results"]
