"""GGUF model files as ``hf:model.gguf`` or ``hf:<folder holding one .gguf>``: found, known by
the GGUF's sha256 before anything loads, converted once (the conversion is faked here with the
tiny model's folder; the real one runs on the embedded GGUF in the ``real_model`` test), and the
chat template rules of the hf backend (``--chat-template``, one line for a model without one)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from sce_checks.errors import UserInputError
from sce_checks.models import Decoding, ModelOptions, load_model, load_model_lazily, parse_spec
from sce_checks.models import gguf
from sce_checks.models.identity import gguf_converted_folder, spec_identity

CONVERSATION = [{"role": "user", "content": "Say yes."}]


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def fake_gguf(tmp_path) -> Path:
    path = tmp_path / "weights" / "Tiny-Model.Q4_K_M.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF not really weights")
    return path


def options(**extra) -> ModelOptions:
    return ModelOptions(batch_size=2, extra={**ModelOptions().extra, **extra})


def test_a_gguf_is_found_as_a_file_or_the_one_gguf_of_a_folder(fake_gguf, tmp_path):
    assert gguf.gguf_file(str(fake_gguf)) == fake_gguf.resolve()
    assert gguf.gguf_file(str(fake_gguf.parent)) == fake_gguf.resolve()
    (fake_gguf.parent / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(UserInputError, match=r"holds 2 GGUF files \(Tiny-Model.Q4_K_M.gguf, other.gguf\); name one"):
        gguf.gguf_file(str(fake_gguf.parent))
    (fake_gguf.parent / "config.json").write_text("{}")  # a Hugging Face folder stays one
    assert gguf.gguf_file(str(fake_gguf.parent)) is None
    assert gguf.gguf_file("HuggingFaceTB/SmolLM2-135M-Instruct") is None
    with pytest.raises(UserInputError, match=r"model 'hf:.*missing.gguf': GGUF file not found"):
        load_model(f"hf:{tmp_path / 'missing.gguf'}")


def test_the_identity_is_the_ggufs_hash_known_without_converting(cache, fake_gguf, monkeypatch):
    def no_conversion(*args):
        raise AssertionError("the identity must not convert")

    monkeypatch.setattr(gguf, "_convert", no_conversion)
    identity = spec_identity(parse_spec(f"hf:{fake_gguf}"), options())
    assert identity["fingerprint"] == hashlib.sha256(b"GGUF not really weights").hexdigest()
    assert identity["path"] == str(fake_gguf.resolve()) and identity["model"] == str(fake_gguf)
    lazy = load_model_lazily(f"hf:{fake_gguf}", options())
    assert lazy.identity() == identity and not lazy.loaded
    target = gguf_converted_folder(fake_gguf)
    assert target.parent == cache / "models" and target.name == f"tiny-model.q4_k_m-{identity['fingerprint'][:12]}"


def fake_conversion(monkeypatch, tiny_model_dir: Path, calls: list, template: bool = True) -> None:
    """`gguf._convert` replaced by a copy of the tiny model's folder (without its chat template
    when ``template`` is False, as a base model's GGUF converts)."""
    def convert(source: Path, out: Path, need_template: bool = False) -> None:
        calls.append(source)
        for item in tiny_model_dir.iterdir():
            if template or item.name != "chat_template.jinja":
                shutil.copy(item, out / item.name)
        config = json.loads((out / "tokenizer_config.json").read_text())
        if not template:
            config.pop("chat_template", None)
        (out / "tokenizer_config.json").write_text(json.dumps(config))

    monkeypatch.setattr(gguf, "_convert", convert)


def test_a_gguf_is_converted_once_and_loads_with_the_identity_its_file_gave(cache, fake_gguf, tiny_model_dir,
                                                                             monkeypatch):
    calls: list = []
    fake_conversion(monkeypatch, tiny_model_dir, calls)
    lazy = load_model_lazily(f"hf:{fake_gguf.parent}", options())
    assert lazy.chat([CONVERSATION], Decoding(max_new_tokens=3))[0] is not None  # loads: the identities agree
    assert calls == [fake_gguf.resolve()] and lazy.loaded
    again = load_model(f"hf:{fake_gguf.parent}", options())
    assert calls == [fake_gguf.resolve()]  # converted once
    assert again.identity() == lazy.identity() and again.path == str(fake_gguf.resolve())


def test_a_model_without_a_chat_template_is_one_line_and_chat_template_supplies_one(cache, fake_gguf, tiny_model_dir,
                                                                                    monkeypatch, tmp_path):
    fake_conversion(monkeypatch, tiny_model_dir, [], template=False)
    with pytest.raises(UserInputError, match=r"has no chat template \(a base model\?\).*--chat-template FILE") as info:
        load_model(f"hf:{fake_gguf}", options())
    assert "\n" not in str(info.value)
    template = tmp_path / "chat.jinja"
    template.write_text((tiny_model_dir / "chat_template.jinja").read_text())
    lazy = load_model_lazily(f"hf:{fake_gguf}", options(chat_template=str(template)))
    assert lazy.identity()["chat_template"] == hashlib.sha256(template.read_bytes()).hexdigest()
    assert isinstance(lazy.chat([CONVERSATION], Decoding(max_new_tokens=3))[0], str)  # the loaded identity agrees
    assert "chat_template" not in spec_identity(parse_spec(f"hf:{fake_gguf}"), options())


@pytest.mark.parametrize("content, message", [(None, r"--chat-template .*missing.jinja: file not found"),
                                              ("  \n", r"--chat-template .*chat.jinja: the file is empty")])
def test_a_bad_chat_template_file_is_one_line_before_anything_loads(cache, fake_gguf, tmp_path, content, message):
    path = tmp_path / ("missing.jinja" if content is None else "chat.jinja")
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserInputError, match=message):
        load_model_lazily(f"hf:{fake_gguf}", options(chat_template=str(path)))


@pytest.mark.real_model
@pytest.mark.xdist_group("smollm2")
def test_sce_audit_runs_the_embedded_gguf_as_an_hf_model(tmp_path):
    """``sce-audit --model hf:<the embedded GGUF file>``: converted once into the cache (shared
    with later runs), then audited like any hf model, with the GGUF's hash as its fingerprint."""
    from sce_checks.cli import main
    from sce_checks.models.identity import gguf_path
    from tests.test_real_model import SMALL_GRID  # 20 points: the reference search predicts the whole grid

    source = gguf_path()
    out, grid = tmp_path / "r.json", tmp_path / "small_heart.toml"
    grid.write_text(SMALL_GRID)
    assert main(["--model", f"hf:{source}", "--dataset", str(grid), "--limit", "2", "--variant", "minimal",
                 "--no-cache", "--json", str(out), "-q"]) == 0
    report = json.loads(out.read_text())
    result = report["results"][0]
    assert result["model"] == f"hf:{source}" and result["n"] == 2
    assert all(e["prediction"] in ("No heart disease", "Heart disease") for e in result["examples"])  # scored options
    environment = report["environment"]
    assert environment["model_identity"]["fingerprint"] == gguf.gguf_sha256(source) and environment["model_loaded"]


def test_sce_audit_on_a_model_without_a_chat_template_exits_2_with_one_line(cache, fake_gguf, tiny_model_dir,
                                                                            monkeypatch, capsys, tmp_path):
    from sce_checks.cli import main

    fake_conversion(monkeypatch, tiny_model_dir, [], template=False)
    monkeypatch.chdir(tmp_path)
    assert main(["--model", f"hf:{fake_gguf}", "--dataset", "income", "--limit", "1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no chat template" in err[0] and "--chat-template FILE" in err[0], err
