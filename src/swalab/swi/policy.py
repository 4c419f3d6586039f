"""``SWIPolicy``: the Socially-Weighted Inference selection rule (paper §4.1 step 3).

The policy is a small decision layer a builder can put in front of any agent: give it
candidate actions and a scorer (one of swalab's or any callable returning private and
group scores) and it returns ``argmax_a (1 − λ)·private(a) + λ·group(a)`` together with
everything that went into the choice, so the decision can be logged and audited.

Tie rule: among candidates whose utility equals the maximum exactly, the one with the
smallest action value wins. It does not depend on the order candidates arrive in, and it
errs toward using less of the shared resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.swi.scorers import Scorer


@dataclass(frozen=True, kw_only=True)
class Decision:
    """One agent's choice and the scores behind it.

    Attributes:
        action: The chosen candidate.
        index: Its position in ``candidates``.
        candidates: The candidates as given.
        private: Private score of each candidate.
        group: Group score of each candidate.
        utility: ``(1 − λ)·private + λ·group`` of each candidate.
    """

    action: float
    index: int
    candidates: FloatArray
    private: FloatArray
    group: FloatArray
    utility: FloatArray


def combine(private: ArrayLike, group: ArrayLike, lam: ArrayLike) -> FloatArray:
    """Return the SWI utility ``(1 − λ)·private + λ·group`` (broadcasting)."""
    lam_arr = np.asarray(lam, dtype=np.float64)
    result: FloatArray = (1.0 - lam_arr) * np.asarray(private) + lam_arr * np.asarray(group)
    return result


def select(candidates: FloatArray, utility: FloatArray) -> int:
    """Return the index of the best candidate, ties going to the smallest action.

    Raises:
        ValueError: If any utility is NaN (a broken scorer must not pick silently).
    """
    if np.isnan(utility).any():
        raise ValueError("utility contains NaN: the scorer returned an invalid score")
    best = np.flatnonzero(utility == utility.max())
    return int(best[np.argmin(candidates[best])])


@dataclass(frozen=True, kw_only=True)
class SWIPolicy:
    """Pick among candidates by ``(1 − λ)·private + λ·group``.

    Attributes:
        scorer: Returns ``(private, group)`` for an array of candidates and a context.
        lam: Default social weight in [0, 1]; :meth:`decide` can override it per call
            (agents with their own λ_i share one policy object).
    """

    scorer: Scorer[Any]
    lam: float = 0.0

    def __post_init__(self) -> None:
        v.unit_interval("lam", self.lam)

    def decide(
        self,
        candidates: Sequence[float] | FloatArray,
        context: Any,
        *,
        lam: float | None = None,
    ) -> Decision:
        """Score ``candidates`` in ``context`` and return the SWI choice.

        Raises:
            ValueError: On an empty candidate list, λ outside [0, 1], or scores that do
                not match the candidates' shape or contain NaN.
        """
        cands = np.asarray(candidates, dtype=np.float64).ravel()
        if cands.size == 0:
            raise ValueError("candidates is empty: the policy needs at least one action")
        weight = self.lam if lam is None else v.unit_interval("lam", lam)
        private, group = self.scorer(cands, context)
        try:
            private = np.broadcast_to(np.asarray(private, dtype=np.float64), cands.shape)
            group = np.broadcast_to(np.asarray(group, dtype=np.float64), cands.shape)
        except ValueError:
            raise ValueError(
                f"scorer returned scores of shapes {np.shape(private)} and {np.shape(group)}: "
                f"each must match the {cands.size} candidates"
            ) from None
        utility = combine(private, group, weight)
        index = select(cands, utility)
        return Decision(
            action=float(cands[index]),
            index=index,
            candidates=cands,
            private=private,
            group=group,
            utility=utility,
        )
