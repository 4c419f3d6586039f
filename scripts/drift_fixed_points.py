"""Where value drift settles, predicted and simulated, for each rule and institution.

    python scripts/drift_fixed_points.py [--agents 2000] [--rounds 150] [--seeds 3]

For the reference game (T = 5 a round, the paper scorer: switch λ̃ = 0.75) and the two types
λ = 0.9 / 0.3, prints per case the stable fixed points the theory predicts
(:mod:`swalab.theory.drift`: the mean-field map's for imitation and the replicator, the
logit equilibria for reinforcement) and the prosocial share the simulation holds over its
last 20 rounds (mean of the seeds) from a start of 90 % prosocial. Payoff tables are
measured on the engine over 20 seeds.
"""

from __future__ import annotations

import argparse

import numpy as np

from swalab.swi import SimulationConfig
from swalab.swi.drift import DriftRule, Institution, payoff_table, run_drift, two_types
from swalab.theory import drift as th

GAME = SimulationConfig(steps=5, candidates="grid")
TYPES = (0.9, 0.3)
CASES: list[tuple[str, DriftRule, Institution]] = [
    ("imitation", DriftRule(kind="imitation", rate=0.2), Institution()),
    ("imitation, μ = 0.05", DriftRule(kind="imitation", rate=0.3, mutation=0.05), Institution()),
    ("replicator, μ = 0.05", DriftRule(kind="replicator", rate=0.3, mutation=0.05), Institution()),
    ("imitation, fine 2", DriftRule(kind="imitation", rate=0.2), Institution(fine=2.0)),
    ("imitation, price 2", DriftRule(kind="imitation", rate=0.2), Institution(price=2.0)),
    (
        "imitation, reputation 1.4",
        DriftRule(kind="imitation", rate=0.2),
        Institution(reputation=1.4),
    ),
    ("imitation, cheap talk", DriftRule(kind="imitation", rate=0.2), Institution(talk="cheap")),
    ("imitation, mediator", DriftRule(kind="imitation", rate=0.2), Institution(talk="mediator")),
    ("reinforcement", DriftRule(kind="reinforcement", rate=0.3), Institution()),
    ("reinforcement, fine 2", DriftRule(kind="reinforcement", rate=0.3), Institution(fine=2.0)),
    ("reinforcement, fine 3", DriftRule(kind="reinforcement", rate=0.3), Institution(fine=3.0)),
]


def predicted(rule: DriftRule, table: th.PayoffTable) -> list[float]:
    """The stable fixed points of the case's theory."""
    if rule.kind == "reinforcement":
        points = th.logit_fixed_points(table, selection=rule.selection, mutation=rule.mutation)
    else:
        points = th.fixed_points(
            table, rule=rule.kind, selection=rule.selection, rate=rule.rate, mutation=rule.mutation
        )
    return [p.share for p in points if p.stable]


def main() -> None:
    """Print the table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("| case | stable fixed points (theory) | simulated share, last 20 rounds |")
    print("|---|---|---|")
    for name, rule, institution in CASES:
        table = payoff_table(GAME, TYPES, seeds=20, institution=institution)
        tails = [
            run_drift(
                GAME, two_types(args.agents, TYPES, 0.9), args.rounds, rule, seed=s,
                institution=institution,
            ).prosocial[-20:].mean()
            for s in range(args.seeds)
        ]  # fmt: skip
        points = ", ".join(f"{p:.3f}" for p in predicted(rule, table))
        spread = f"seeds {min(tails):.3f}–{max(tails):.3f}"
        print(f"| {name} | {points} | {np.mean(tails):.3f} ({spread}) |")


if __name__ == "__main__":
    main()
