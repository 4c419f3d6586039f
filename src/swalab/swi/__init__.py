"""The Socially-Weighted Inference (SWI) decision rule.

Candidates (:mod:`~swalab.swi.candidates`) are scored (:mod:`~swalab.swi.scorers`) under
a belief about the others (:mod:`~swalab.swi.beliefs`) and chosen by
:class:`~swalab.swi.policy.SWIPolicy`. A :class:`~swalab.swi.config.SimulationConfig`
describes a model-based experiment; :mod:`~swalab.swi.simulation` plays it one agent at a
time, :mod:`~swalab.swi.engine` plays many episodes in lockstep, and :mod:`~swalab.swi.sweep`
sweeps λ with either.
"""

from swalab.swi.beliefs import BeliefModel, EMABelief
from swalab.swi.candidates import (
    REFERENCE_ANCHORS,
    AnchorCandidates,
    CandidateSet,
    CandidateSource,
    FixedCandidates,
    GridCandidates,
    RandomGridCandidates,
    candidate_set,
    demand_grid,
)
from swalab.swi.config import SimulationConfig
from swalab.swi.policy import Decision, SWIPolicy, combine, select
from swalab.swi.scorers import (
    SCORERS,
    ConsistentScorer,
    LoadContext,
    PaperScorer,
    Scorer,
    make_scorer,
)
from swalab.swi.simulation import Episode, replay_decisions, run_episode
from swalab.swi.sweep import LambdaSummary, simulate

__all__ = [
    "REFERENCE_ANCHORS",
    "SCORERS",
    "AnchorCandidates",
    "BeliefModel",
    "CandidateSet",
    "CandidateSource",
    "ConsistentScorer",
    "Decision",
    "EMABelief",
    "Episode",
    "FixedCandidates",
    "GridCandidates",
    "LambdaSummary",
    "LoadContext",
    "PaperScorer",
    "RandomGridCandidates",
    "SWIPolicy",
    "Scorer",
    "SimulationConfig",
    "candidate_set",
    "combine",
    "demand_grid",
    "make_scorer",
    "replay_decisions",
    "run_episode",
    "select",
    "simulate",
]
