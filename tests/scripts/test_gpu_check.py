"""scripts/gpu_check.sh dry-run on the CPU, and on a machine that lacks swalab's own needs.

The GPU machine it is written for has PyTorch and transformers and little else; here the
packages it lacks are hidden by running Python without site-packages, on a copy of them
that leaves gymnasium and pettingzoo out, so the script must take them from the prepared
wheels (or say how to prepare them).
"""

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs the transformers extra")
pytest.importorskip("transformers", reason="needs the transformers extra")

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = ("gymnasium", "pettingzoo", "farama_notifications", "cloudpickle")
DRY = ["--device", "cpu", "--weights", "untrained", "--shape", "tiny", "--steps", "1"]


def _run(cmd, env_extra, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env_extra
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_dry_run_measures_every_n(tmp_path):
    out = tmp_path / "gpu.json"
    bundle = tmp_path / "empty-bundle"  # no Gemma tokenizer: the byte-level one
    done = _run(
        ["bash", "scripts/gpu_check.sh", *DRY, "--agents", "5,12", "--json", str(out)],
        {"PYTHON": sys.executable, "SWALAB_GPU_CHECK_BUNDLE": str(bundle)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "UNTRAINED" in done.stdout and "byte-level tokenizer" in done.stdout
    result = json.loads(out.read_text())
    assert result["untrained"] and result["model_id"] == "untrained-tiny-bytes"
    assert [r["agents"] for r in result["rows"]] == [5, 12]
    for row in result["rows"]:
        assert row["swalab_parse_failure_rate"] == 0 and not row["swalab_episode_failed"]
        assert row["swalab_decisions_per_s"] > 0 and row["reference_decisions_per_s"] > 0
        assert row["gpu_peak_mib"] is None  # no GPU: no number invented
    assert result["rows"][1]["reference_agents_asked"] == 10


def _bare_site(tmp_path: Path) -> Path:
    """site-packages without the hidden packages (links to everything else)."""
    bare = tmp_path / "site"
    bare.mkdir()
    for entry in Path(site.getsitepackages()[0]).iterdir():
        name = entry.name.split("-")[0].lower()
        if name not in HIDDEN and not entry.name.endswith(".pth"):
            (bare / entry.name).symlink_to(entry)
    return bare


def test_missing_packages_come_from_the_prepared_wheels(tmp_path):
    bare = _bare_site(tmp_path)
    env = {"PYTHONPATH": str(bare), "SWALAB_GPU_CHECK_BUNDLE": str(tmp_path / "bundle")}
    cmd = [sys.executable, "-S", "scripts/gpu_check.py", *DRY, "--agents", "5"]
    missing = _run(cmd, env)
    assert missing.returncode != 0
    assert "is not installed and no wheel of it is in" in missing.stderr
    assert "scripts/gpu_check.sh --prepare" in missing.stderr
    # Wheels as --prepare leaves them (a wheel is a zip of the package's directory).
    wheels = tmp_path / "bundle" / "wheels"
    wheels.mkdir(parents=True)
    installed = Path(site.getsitepackages()[0])
    for module in HIDDEN:
        src = installed / module
        with zipfile.ZipFile(wheels / f"{module}-0-py3-none-any.whl", "w") as whl:
            files = src.rglob("*") if src.is_dir() else [installed / f"{module}.py"]
            for f in (f for f in files if f.is_file() and "__pycache__" not in f.parts):
                whl.write(f, f.relative_to(installed))
    done = _run(cmd, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "from build/gpu_check/wheels: gymnasium-0-py3-none-any.whl" in done.stdout
    assert json.loads(done.stdout[done.stdout.index("{") :])["rows"][0]["agents"] == 5


def test_asking_for_cuda_without_it_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = _run(
        ["bash", "scripts/gpu_check.sh", "--weights", "untrained", "--shape", "tiny"],
        {"PYTHON": sys.executable, "SWALAB_GPU_CHECK_BUNDLE": str(tmp_path)},
    )
    assert done.returncode != 0
    assert "torch sees no CUDA device (use --device cpu for a dry run)" in done.stderr
