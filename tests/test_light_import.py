import subprocess
import sys

HEAVY = [
    "torch",
    "llama_cpp",
    "vllm",
    "ray",
    "transformers",
    "openai",
    "tenacity",
    "duckdb",
    "httpx",
    "uvicorn",
]


def test_import_swalab_stays_light():
    code = (
        "import sys, swalab, swalab.theory, swalab.swi, swalab.envs, swalab.cli, swalab.llm, "
        "swalab.llm.stack, swalab.experiments.studies.bench, swalab.experiments, swalab.guard, "
        "swalab.guard.harness, swalab.guard.server, swalab.llm.scale; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
