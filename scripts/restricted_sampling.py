"""The llama.cpp backend's restricted sampling on and off, side by side in one process.

    python scripts/restricted_sampling.py [--agents 100] [--rounds 2] [--model gemma-3-270m]

Then the cost of one token in a decode of 63 sequences (the real prompts' KV cache behind
them) with and without its logits: what a forced token saves, and how much of a step the
output layer is.

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

import llama_cpp

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
    decode_cost(model)
    model.close()


def decode_cost(model: LlamaCppModel, seqs: int = 63, reps: int = 5) -> None:
    """Milliseconds per token of a ``seqs``-sequence decode, with logits and without."""
    from swalab.llm.backends import common_prefix
    from swalab.llm.protocol import Board, proposal_prompt

    board = Board(step=1, steps=20, n_agents=100, capacity=400, beta=1.6, last_demands=None)
    template = ProtocolConfig().proposal_template
    toks = [
        model.tokenize(proposal_prompt(template, board, agent=i, belief=4, x_max=10, k=7, lam=0.8))
        for i in range(seqs)
    ]
    common = min(common_prefix(toks[0], t) for t in toks)
    llama_cpp.llama_memory_clear(model._mem, True)
    model._resident = []
    model._decode([(x, j, 0, False) for j, x in enumerate(toks[0][:common])])
    for s in range(seqs):
        llama_cpp.llama_memory_seq_cp(model._mem, 0, s + 1, -1, -1)
    model._decode(
        [
            (x, common + j, s + 1, False)
            for s, t in enumerate(toks)
            for j, x in enumerate(t[common:])
        ]
    )
    pos = [len(t) for t in toks]
    for logits in (True, False, True, False):
        best = float("inf")
        for _ in range(reps):
            items = [(toks[s][-1], pos[s], s + 1, logits) for s in range(seqs)]
            start = time.perf_counter()
            model._decode(items)
            best = min(best, time.perf_counter() - start)
            pos = [p + 1 for p in pos]
        print(
            f"decode of {seqs} sequences, logits={logits!s:>5}: {1000 * best / seqs:.2f} ms a token"
        )
    llama_cpp.llama_memory_clear(model._mem, True)
    model._resident = []


if __name__ == "__main__":
    main()
