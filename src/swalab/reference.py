"""The SWA paper's reference configuration, written once.

Every default in swalab that means "as in the paper" — the environment, the simulation and
engine configs, the YAML schema, the LLM protocol, the command line — reads it from here,
so the reference game is one edit away from any change. The values are those of the
paper's own code (``run.py`` of github furkanmumcu/swa); ``docs/theory.md`` derives what
they imply (λ* = 0.85, λ̃ = 0.75).
"""

from __future__ import annotations

#: Agents N.
N_AGENTS = 5
#: Capacity C.
CAPACITY = 20.0
#: Congestion severity β.
BETA = 1.6
#: Largest demand x_max of every agent.
X_MAX = 10.0
#: Horizon T.
STEPS = 20

#: Candidate proposals per agent and step (LLM proposals, or random grid draws).
K = 7
#: Spacing of the demand grid that candidates are taken from.
GRID_STEP = 0.25
#: Candidates always present besides the proposals.
ANCHORS: tuple[float, ...] = (0.0, 2.0, 3.0, 4.0, 4.5)
#: Safety margin m of the scorer (effective capacity C − m).
MARGIN = 2.0
#: Centering strength γ of the paper scorer's predicted welfare.
GAMMA = 0.02
#: EMA smoothing α of the belief about the others' mean demand.
ALPHA = 0.2

#: Sampling temperature of the proposal call.
TEMPERATURE = 0.7
#: Most tokens of a proposal.
MAX_TOKENS = 120
#: Most tokens of the greedy "choose a row of the table" call.
CHOOSE_MAX_TOKENS = 80

#: The λ grid of the reference sweeps: 0, 0.05, …, 1.
LAMBDAS: tuple[float, ...] = tuple(round(i * 0.05, 2) for i in range(21))
