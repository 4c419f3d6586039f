"""Every failure a user or a backend can cause in swalab.llm, caused for real."""

import importlib.util

import pytest

from swalab.cli import main
from swalab.llm import ProtocolConfig, ScriptedModel, run_llm_episodes
from swalab.llm.presets import resolve
from swalab.llm.runner import _unique_generate
from swalab.swi.config import SimulationConfig

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAS_OPENAI = importlib.util.find_spec("openai") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None


def cli(capsys, *args):
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "nope"], '--backend="nope": is not a known backend'),
        (["--backend", "scripted", "--seeds", "0"], "--seeds=0: Input should be greater"),
        (["--backend", "llamacpp", "--selector", "best"], '--selector="best": Input should be'),
        (["--backend", "llamacpp", "--fallback", "guess"], '--fallback="guess": Input should'),
    ],
)
def test_cli_llm_errors_are_one_line(capsys, args, message):
    code, err = cli(capsys, "simulate", *args)
    assert code == 2
    assert err.startswith("swalab: error: ") and message in err
    assert err.count("\n") == 1


@pytest.mark.skipif(not HAS_LLAMA, reason="needs the llamacpp extra")
def test_cli_missing_gguf_is_one_line(capsys, tmp_path):
    code, err = cli(
        capsys, "simulate", "--backend", "llamacpp", "--model", str(tmp_path / "none.gguf")
    )
    assert code == 2 and "nor a GGUF file" in err and err.count("\n") == 1


def test_paper_models_need_a_gguf_on_llamacpp():
    with pytest.raises(ValueError, match="has no embedded GGUF"):
        resolve("llamacpp", "qwen2.5-7b-instruct")
    assert resolve("openai", "qwen2.5-7b-instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert resolve("openai", "my-served-name") == "my-served-name"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k=0"),
        ({"fallback": "guess"}, "fallback='guess'"),
        ({"max_tokens": 0}, "max_tokens=0"),
        ({"temperature": -0.1}, "temperature=-0.1"),
    ],
)
def test_protocol_settings_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProtocolConfig(**kwargs)


def test_scripted_model_misuse():
    with pytest.raises(ValueError, match="needs answer="):
        ScriptedModel()
    with pytest.raises(IndexError, match="ran out of its 1 answers"):
        ScriptedModel(answers=["x"]).generate(["a", "b"])


def test_a_backend_that_loses_completions_is_refused():
    class Lossy(ScriptedModel):
        def complete(self, request):
            return super().complete(request)[:-1]

    with pytest.raises(RuntimeError, match="returned 1 completions for 2 prompts"):
        _unique_generate(
            Lossy(answers=["a", "b"]),
            ["p", "q"],
            [None, None],
            [0, 0],
            temperature=0.7,
            max_tokens=4,
        )
    with pytest.raises(RuntimeError, match="completions for"):
        run_llm_episodes(SimulationConfig(steps=1), Lossy(answer=lambda p, s: "[1]"), [0.5], [0])


@pytest.mark.skipif(not HAS_OPENAI, reason="needs the openai extra")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint": "edits"}, "endpoint='edits' is not known"),
        ({"concurrency": 0}, "concurrency=0"),
        ({"timeout": 0}, "timeout=0"),
    ],
)
def test_openai_options_name_the_field(kwargs, message):
    from swalab.llm.backends.openai_compat import OpenAIModel

    with pytest.raises(ValueError, match=message):
        OpenAIModel("x", **kwargs)


@pytest.mark.skipif(not HAS_TORCH, reason="needs the transformers extra")
def test_transformers_batch_size_is_checked_before_loading():
    from swalab.llm.backends.transformers_hf import TransformersModel

    with pytest.raises(ValueError, match="batch_size=0 is out of range"):
        TransformersModel(batch_size=0)


@pytest.mark.skipif(not HAS_LLAMA, reason="needs the llamacpp extra")
def test_llamacpp_bad_arguments(tmp_path):
    from swalab.llm.backends.llamacpp import LlamaCppModel

    with pytest.raises(ValueError, match="is not a file"):
        LlamaCppModel(str(tmp_path / "none.gguf"))
    with pytest.raises(ValueError, match="n_seq_max=1 is out of range"):
        LlamaCppModel(n_seq_max=1)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match=r"could not be loaded by llama\.cpp"):
        LlamaCppModel(str(junk))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LLAMA, reason="needs the llamacpp extra")
def test_llamacpp_rejects_a_broken_grammar():
    from swalab.llm.backends.llamacpp import LlamaCppModel
    from swalab.llm.constraints import NumberList

    class Broken(NumberList):
        def gbnf(self):
            return "root ::= ( unclosed\n"

    m = LlamaCppModel(n_ctx=512, n_seq_max=2)
    with pytest.raises(ValueError, match="rejected the grammar"):
        m.generate(["Numbers:"], constraint=Broken(k=2, x_max=10), max_tokens=4)
    # The model is still usable afterwards.
    assert m.generate(["Numbers:"], max_tokens=2)[0].ok
    m.close()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LLAMA, reason="needs the server extra")
def test_llama_server_that_cannot_start_says_why(tmp_path):
    from swalab.testing.servers import llama_server

    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf")
    with pytest.raises(RuntimeError, match="server exited"), llama_server(junk, timeout=60):
        pass
