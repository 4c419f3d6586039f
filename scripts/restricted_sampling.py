"""The llama.cpp backend's restricted sampling on and off, side by side in one process.

    python scripts/restricted_sampling.py [--agents 100] [--rounds 2] [--model gemma-3-270m]

Plays one step of an N-agent episode of the paper's protocol (capacity 4 per agent,
λ = 0.8) through the embedded model, alternating ``LlamaCppModel.restrict`` off and on
``--rounds`` times (these machines are noisy: compare within a run), and prints the
decisions/s and output tokens of each. Restricted sampling scores only the tokens that can
spell the proposal format and skips the logits a forced token does not need; the answers
are draws from the same distribution, not the same draws (the random streams are consumed
differently).
"""

from __future__ import annotations

import argparse
import time

from swalab.llm import ProtocolConfig, run_llm_episodes
from swalab.llm.backends.llamacpp import LlamaCppModel
from swalab.swi import SimulationConfig


def main() -> None:
    """Print one line per run: restrict, seconds, decisions/s, output tokens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    model = LlamaCppModel(args.model)
    model.generate(["warm up"], max_tokens=1)
    n = args.agents
    config = SimulationConfig(n_agents=n, capacity=4.0 * n, steps=1)
    print("restrict  seconds  decisions/s  output tokens")
    for _ in range(args.rounds):
        for restrict in (False, True):
            model.restrict = restrict
            start = time.perf_counter()
            (episode,) = run_llm_episodes(config, model, [0.8], [0], ProtocolConfig())
            wall = time.perf_counter() - start
            out = episode.accounting["tokens_out"]
            print(f"{restrict!s:>8}  {wall:7.1f}  {n / wall:11.2f}  {out:13.0f}")
    model.close()


if __name__ == "__main__":
    main()
