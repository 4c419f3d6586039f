"""The lockstep engine: many model-based SWI episodes advanced together.

The per-agent path (:func:`swalab.swi.run_episode`) decides one agent at a time in Python,
about 2e4 decisions per second here. The engine plays E episodes × N agents × K candidates
in one compiled, multi-core kernel with the same arithmetic, fast enough for phase diagrams
over (λ, β, N) with hundreds of seeds. Parameters may differ per episode (λ, β, C, margin,
γ, α, initial belief, seed, belief model, noise, delay, horizon) and per agent (λ_i, impact
w_i, value v_i, x_max_i, agent kind); N is one per batch (group episodes by N;
:func:`swalab.swi.phase.phase_diagram` does).

Memory stays bounded: without ``record`` the kernel keeps only per-episode sums; with it,
episodes run in chunks so a trajectory buffer never exceeds ``chunk_bytes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.swi.beliefs import BELIEF_KINDS
from swalab.swi.config import SimulationConfig
from swalab.swi.outsiders import AGENT_KINDS, KIND_CODES

#: What SWI agents may be told before each step, in the kernel's order (``LockstepBatch.talk``).
TALKS = ("none", "cheap", "mediator")

PerAgent = float | Sequence[float] | FloatArray


def _column(name: str, values: object, n_episodes: int, check: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    arr = np.broadcast_to(arr, (n_episodes,)) if arr.ndim == 0 else arr
    if arr.shape != (n_episodes,):
        raise ValueError(f"{name} has shape {arr.shape}: must be one value per episode")
    _check_all(name, arr, check)
    return np.ascontiguousarray(arr)


def _matrix(name: str, values: object, n_episodes: int, n_agents: int, check: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    try:  # a per-episode value is given as shape (E, 1)
        out = np.broadcast_to(arr, (n_episodes, n_agents))
    except ValueError:
        raise ValueError(
            f"{name} has shape {arr.shape}: must broadcast to (episodes, agents) = "
            f"({n_episodes}, {n_agents})"
        ) from None
    _check_all(name, out, check)
    return np.ascontiguousarray(out)


_CHECKS: dict[str, tuple[Callable[[FloatArray], NDArray[np.bool_]], str]] = {
    "positive": (lambda a: np.isfinite(a) & (a > 0), "must be a finite number > 0"),
    "non_negative": (lambda a: np.isfinite(a) & (a >= 0), "must be a finite number >= 0"),
    "unit_interval": (lambda a: (a >= 0) & (a <= 1), "must lie in [0, 1]"),
    "alpha": (lambda a: (a > 0) & (a <= 1), "must lie in (0, 1]"),
    "any": (lambda a: ~np.isinf(a), "must be a finite number or NaN"),
}


def _integers(name: str, values: object, shape: tuple[int, ...], minimum: int) -> NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu" and not (
        arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    ):
        raise ValueError(f"{name}={values!r} is out of range: must be whole numbers")
    try:
        out = np.broadcast_to(arr.astype(np.int64), shape)
    except ValueError:
        raise ValueError(f"{name} has shape {arr.shape}: must broadcast to {shape}") from None
    if np.any(out < minimum):
        raise ValueError(f"{name}={int(out.min())} is out of range: must be >= {minimum}")
    return np.ascontiguousarray(out)


def _codes(
    name: str, values: object, shape: tuple[int, ...], names: tuple[str, ...]
) -> NDArray[np.int64]:
    """Names (or their codes, index in ``names``) broadcast to ``shape`` as int codes."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        codes = arr.astype(np.int64)
        if np.any((codes < 0) | (codes >= len(names))):
            raise ValueError(f"{name} holds a code outside 0..{len(names) - 1}")
    else:
        lookup = {k: i for i, k in enumerate(names)}
        flat = [lookup.get(str(x), -1) for x in arr.reshape(-1)]
        if -1 in flat:
            bad = str(arr.reshape(-1)[flat.index(-1)])
            raise ValueError(f"{name}={bad!r} is not known: choose one of {list(names)}")
        codes = np.asarray(flat, dtype=np.int64).reshape(arr.shape)
    try:
        return np.ascontiguousarray(np.broadcast_to(codes, shape))
    except ValueError:
        raise ValueError(f"{name} has shape {arr.shape}: must broadcast to {shape}") from None


def _check_all(name: str, arr: FloatArray, check: str) -> None:
    ok, allowed = _CHECKS[check]
    bad = np.argwhere(~ok(arr))
    if bad.size:
        idx = tuple(int(i) for i in bad[0])
        where = ",".join(map(str, idx))
        raise ValueError(f"{name}[{where}]={float(arr[idx])!r} is out of range: {allowed}")


@dataclass(frozen=True, kw_only=True)
class LockstepBatch:
    """E episodes of the same N, with per-episode and per-agent parameters.

    Build one with :meth:`from_config` (a :class:`SimulationConfig` × λ values × seeds) or
    directly; :meth:`validated` broadcasts scalars and checks every value.

    Attributes:
        n_agents: Agents per episode.
        steps: Horizon T.
        scorer: ``"paper"`` or ``"consistent"``.
        candidates: ``"grid"``, ``"random"``, ``"anchors"`` (the anchors alone) or ``"given"``
            (candidates passed to the run).
        k: Random draws per agent and step.
        grid_step: Demand grid spacing.
        anchors: Always-present candidates (clipped to each agent's ``[0, x_max_i]``).
        lam: Social weights, shape (E, N).
        capacity: Per episode.
        beta: Per episode.
        x_max: Per agent, shape (E, N).
        weights: Impacts w_i, shape (E, N).
        values: Private values v_i, shape (E, N).
        margin: Safety margin per episode.
        gamma: Centering strength per episode.
        alpha: EMA smoothing per episode.
        initial_belief: μ̂₀ per episode (NaN means C/N).
        seed: Seed per episode (random candidate, noise and outsider streams).
        belief: Belief kind per episode (``ema``, ``last``, ``window``).
        window: Observations a window belief pools, per episode.
        private: Per episode: agents observe the others' mean, not the public mean.
        delay: Per episode: agents decide with the belief of ``delay`` steps earlier.
        noise: Per episode: σ of Gaussian noise on every belief.
        agents: Agent kinds (:data:`~swalab.swi.outsiders.AGENT_KINDS`), shape (E, N).
        agent_demands: Demand parameter of fixed / tit-for-tat agents (NaN: default).
        episode_steps: Realised horizon per episode (default ``steps`` for all); ``steps``
            must be at least the largest.
        eps: Normaliser guard of the paper scorer.
        talk: What SWI agents are told before each step (an institution of value drift):
            ``"none"``; ``"cheap"`` — every agent announces the demand it intends and SWI
            agents decide again believing the others' announced mean; ``"mediator"`` —
            they are told the others will ask the fair share ``C/N``. The per-agent path
            has neither: batches that talk run here alone.
    """

    n_agents: int
    steps: int
    scorer: str = "paper"
    candidates: str = "random"
    k: int = 7
    grid_step: float = 0.25
    anchors: tuple[float, ...] = (0.0, 2.0, 3.0, 4.0, 4.5)
    lam: FloatArray
    capacity: FloatArray
    beta: FloatArray
    x_max: FloatArray
    weights: FloatArray = field(default_factory=lambda: np.ones(1))
    values: FloatArray = field(default_factory=lambda: np.ones(1))
    margin: FloatArray = field(default_factory=lambda: np.asarray(2.0))
    gamma: FloatArray = field(default_factory=lambda: np.asarray(0.02))
    alpha: FloatArray = field(default_factory=lambda: np.asarray(0.2))
    initial_belief: FloatArray = field(default_factory=lambda: np.asarray(np.nan))
    seed: NDArray[np.int64] = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    belief: Any = "ema"
    window: Any = 5
    private: Any = False
    delay: Any = 0
    noise: FloatArray = field(default_factory=lambda: np.asarray(0.0))
    agents: Any = "swi"
    agent_demands: FloatArray = field(default_factory=lambda: np.asarray(np.nan))
    episode_steps: NDArray[np.int64] | None = None
    eps: float = 1e-8
    talk: str = "none"

    @property
    def n_episodes(self) -> int:
        """Number of episodes E (the first axis of ``lam``)."""
        return int(np.asarray(self.lam).reshape(-1, self.n_agents).shape[0])

    def validated(self) -> LockstepBatch:
        """Return a copy with every array broadcast to its full shape and checked."""
        n = v.integer_at_least("n_agents", self.n_agents, 2)
        v.integer_at_least("steps", self.steps, 1)
        if self.scorer not in ("paper", "consistent"):
            raise ValueError(f"scorer={self.scorer!r} is not known: choose paper or consistent")
        if self.candidates not in ("grid", "random", "anchors", "given"):
            raise ValueError(
                f"candidates={self.candidates!r} is not known: choose grid, random, anchors "
                "or given"
            )
        if self.talk not in TALKS:
            raise ValueError(f"talk={self.talk!r} is not known: choose one of {list(TALKS)}")
        if self.candidates == "anchors" and not len(self.anchors):
            raise ValueError("candidates='anchors' needs at least one anchor (anchors=[])")
        v.positive("grid_step", self.grid_step)
        v.integer_at_least("k", self.k, 1)
        lam = np.asarray(self.lam, dtype=np.float64)
        e = lam.shape[0] if lam.ndim >= 1 else 1
        x_max = _matrix("x_max", self.x_max, e, n, "positive")
        if self.candidates == "random":
            smallest = int(np.floor(x_max.min() / self.grid_step + 1e-9)) + 1
            if self.k > smallest:
                raise ValueError(f"k={self.k} is out of range: a grid has only {smallest} points")
        capacity = _column("capacity", self.capacity, e, "positive")
        margin = _column("margin", self.margin, e, "non_negative")
        if np.any(margin >= capacity):
            i = int(np.argmax(margin >= capacity))
            raise ValueError(
                f"margin[{i}]={float(margin[i])!r} is out of range: must be < capacity"
            )
        belief0 = np.asarray(self.initial_belief, dtype=np.float64)
        belief0 = np.broadcast_to(belief0, (e,)).copy()
        belief0 = np.where(np.isnan(belief0), capacity / n, belief0)
        _check_all("initial_belief", belief0, "non_negative")
        seed = np.broadcast_to(np.asarray(self.seed, dtype=np.int64), (e,))
        if np.any(seed < 0):
            raise ValueError(f"seed={int(seed.min())} is out of range: must be >= 0")
        episode_steps = _integers(
            "episode_steps",
            self.steps if self.episode_steps is None else self.episode_steps,
            (e,),
            1,
        )
        if episode_steps.max() > self.steps:
            raise ValueError(
                f"episode_steps={int(episode_steps.max())} is out of range: "
                f"must be <= steps={self.steps}"
            )
        agents = _codes("agents", self.agents, (e, n), AGENT_KINDS)
        agent_demands = _matrix("agent_demands", self.agent_demands, e, n, "any")
        for ei, i in zip(*np.nonzero(agents == KIND_CODES["fixed"]), strict=True):
            if np.isnan(agent_demands[ei, i]):
                raise ValueError(f"agents[{ei},{i}]='fixed' needs a demand in agent_demands")
        given = ~np.isnan(agent_demands)
        if np.any(given & (agent_demands < 0)):
            raise ValueError("agent_demands holds a negative demand: must be >= 0 (or NaN)")
        return replace(
            self,
            n_agents=n,
            anchors=v.float_list("anchors", self.anchors),
            lam=_matrix("lam", lam, e, n, "unit_interval"),
            capacity=capacity,
            beta=_column("beta", self.beta, e, "positive"),
            x_max=x_max,
            weights=_matrix("weights", self.weights, e, n, "positive"),
            values=_matrix("values", self.values, e, n, "positive"),
            margin=margin,
            gamma=_column("gamma", self.gamma, e, "non_negative"),
            alpha=_column("alpha", self.alpha, e, "alpha"),
            initial_belief=belief0,
            seed=np.ascontiguousarray(seed),
            belief=_codes("belief", self.belief, (e,), BELIEF_KINDS),
            window=_integers("window", self.window, (e,), 1),
            private=np.ascontiguousarray(np.broadcast_to(np.asarray(self.private, bool), (e,))),
            delay=_integers("delay", self.delay, (e,), 0),
            noise=_column("noise", self.noise, e, "non_negative"),
            agents=agents,
            agent_demands=agent_demands,
            episode_steps=episode_steps,
        )

    @classmethod
    def from_config(
        cls,
        config: SimulationConfig,
        lams: Sequence[PerAgent],
        seeds: Sequence[int],
        betas: Sequence[float] | None = None,
    ) -> LockstepBatch:
        """Return the episodes ``[betas ×] lams × seeds`` of ``config``, in that nesting order.

        Args:
            config: Every parameter not swept.
            lams: Social weights: one number, or one per agent, per entry.
            seeds: Seeds; each (β, λ) cell runs every seed.
            betas: Optional severities to sweep (default: ``config.beta`` only).
        """
        n = config.n_agents
        lam_rows = np.stack([v.per_agent("lam", x, n, 0.0, check="unit_interval") for x in lams])
        seed_arr = np.asarray(list(seeds), dtype=np.int64)
        beta_arr = np.asarray([config.beta] if betas is None else list(betas), dtype=np.float64)
        per_beta = lam_rows.shape[0] * seed_arr.size
        init = np.nan if config.initial_belief is None else config.initial_belief
        kinds, demands = config.agent_kinds()
        seed_col = np.tile(seed_arr, lam_rows.shape[0] * beta_arr.size)
        horizon = np.array([config.realized_steps(int(s)) for s in seed_col], dtype=np.int64)
        return cls(
            n_agents=n,
            steps=int(horizon.max()) if horizon.size else config.steps,
            scorer=config.scorer,
            candidates=config.candidates,
            k=config.k,
            grid_step=config.grid_step,
            anchors=config.anchors,
            lam=np.tile(np.repeat(lam_rows, seed_arr.size, axis=0), (beta_arr.size, 1)),
            capacity=np.asarray(config.capacity),
            beta=np.repeat(beta_arr, per_beta),
            x_max=np.asarray(config.x_max),
            weights=np.asarray(1.0 if config.weights is None else config.weights),
            values=np.asarray(1.0 if config.values is None else config.values),
            margin=np.asarray(config.margin),
            gamma=np.asarray(config.gamma),
            alpha=np.asarray(config.alpha),
            initial_belief=np.asarray(init),
            seed=seed_col,
            belief=config.belief_kind,
            window=config.window,
            private=config.private,
            delay=config.delay,
            noise=np.asarray(config.noise),
            agents=np.asarray(kinds),
            agent_demands=np.asarray(demands),
            episode_steps=horizon,
        ).validated()


@dataclass(frozen=True, kw_only=True)
class LockstepResult:
    """Per-episode metrics, and trajectories when recorded.

    Attributes:
        overload_rate: Fraction of steps with X > C, shape (E,).
        mean_welfare: Episode-mean welfare.
        mean_load: Episode-mean load.
        fairness: Episode-mean Jain fairness of demands.
        steps_to_stable: First step from which the load stays ≤ C (T: never).
        steps_played: Realised horizon of each episode.
        demands: (E, T, N) when recorded (NaN past an episode's horizon).
        loads: (E, T) when recorded.
        welfare: (E, T) when recorded.
        beliefs: (E, T, N) beliefs the agents decided with, when recorded.
        rewards: (E, T, N) when recorded.
    """

    overload_rate: FloatArray
    mean_welfare: FloatArray
    mean_load: FloatArray
    fairness: FloatArray
    steps_to_stable: FloatArray
    steps_played: NDArray[np.int64]
    demands: FloatArray | None = None
    loads: FloatArray | None = None
    welfare: FloatArray | None = None
    beliefs: FloatArray | None = None
    rewards: FloatArray | None = None


def run_lockstep(
    batch: LockstepBatch,
    *,
    record: bool = False,
    given: FloatArray | None = None,
    chunk_bytes: int = 256 * 2**20,
) -> LockstepResult:
    """Play every episode of ``batch``.

    Args:
        batch: The episodes (validated here).
        record: Keep full trajectories (memory ``~ 8·E·T·(3N + 2)`` bytes, chunked).
        given: For ``candidates="given"``: shape (T, E, N, K), NaN-padded.
        chunk_bytes: Largest trajectory buffer of one chunk when recording.

    Returns:
        Metrics per episode, and trajectories if ``record``.
    """
    from swalab.swi import _kernels as kern

    b = batch.validated()
    e_total, n, t = b.n_episodes, b.n_agents, b.steps
    assert b.episode_steps is not None  # validated() fills it
    mode = {
        "grid": kern.MODE_GRID,
        "random": kern.MODE_RANDOM,
        "anchors": kern.MODE_ANCHORS,
        "given": kern.MODE_GIVEN,
    }[b.candidates]
    if mode == kern.MODE_GIVEN:
        if given is None or given.ndim != 4 or given.shape[:3] != (t, e_total, n):
            shape = None if given is None else given.shape
            raise ValueError(
                f"given has shape {shape}: candidates='given' needs (steps, episodes, agents, "
                f"K) = ({t}, {e_total}, {n}, K)"
            )
        given_arr = np.ascontiguousarray(given, dtype=np.float64)
        bad = ~np.isnan(given_arr) & ((given_arr < 0) | (given_arr > b.x_max[None, :, :, None]))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"given[{','.join(map(str, idx))}]={float(given_arr[idx])!r} is out of range: "
                f"must lie in [0, x_max] of its agent (NaN marks padding)"
            )
    else:
        given_arr = np.empty((0, 0, 0, 0))
    scorer = kern.SCORER_PAPER if b.scorer == "paper" else kern.SCORER_CONSISTENT
    anchors = np.asarray(b.anchors, dtype=np.float64)
    summary = np.empty((e_total, kern.N_SUMMARY))
    per_episode = 8 * t * (3 * n + 2)
    chunk = max(1, chunk_bytes // per_episode) if record else e_total
    outs: dict[str, list[FloatArray]] = {k: [] for k in ("d", "l", "w", "b", "r")}
    empty3, empty2 = np.empty((0, 0, 0)), np.empty((0, 0))
    for start in range(0, e_total, chunk):
        sl = slice(start, min(start + chunk, e_total))
        size = sl.stop - sl.start
        buf = {
            "d": np.empty((size, t, n)) if record else empty3,
            "l": np.empty((size, t)) if record else empty2,
            "w": np.empty((size, t)) if record else empty2,
            "b": np.empty((size, t, n)) if record else empty3,
            "r": np.empty((size, t, n)) if record else empty3,
        }
        kern.run_episodes(
            b.lam[sl],
            b.capacity[sl],
            b.beta[sl],
            b.x_max[sl],
            b.weights[sl],
            b.values[sl],
            b.margin[sl],
            b.gamma[sl],
            b.alpha[sl],
            b.initial_belief[sl],
            b.seed[sl],
            b.episode_steps[sl],
            b.agents[sl],
            b.agent_demands[sl],
            b.belief[sl],
            b.window[sl],
            b.private[sl],
            b.delay[sl],
            b.noise[sl],
            scorer,
            mode,
            b.k,
            b.grid_step,
            anchors,
            given_arr[:, sl] if mode == kern.MODE_GIVEN else given_arr,
            b.eps,
            TALKS.index(b.talk),
            summary[sl],
            record,
            buf["d"],
            buf["l"],
            buf["w"],
            buf["b"],
            buf["r"],
        )
        if record:
            for key, arr in buf.items():
                outs[key].append(arr)
    traj = {k: np.concatenate(x) if record else None for k, x in outs.items()}
    played = b.episode_steps.astype(np.float64)
    return LockstepResult(
        overload_rate=summary[:, kern.SUM_OVERLOADED] / played,
        mean_welfare=summary[:, kern.SUM_WELFARE] / played,
        mean_load=summary[:, kern.SUM_LOAD] / played,
        fairness=summary[:, kern.SUM_FAIRNESS] / played,
        steps_to_stable=summary[:, kern.LAST_OVERLOADED].copy(),
        steps_played=b.episode_steps.copy(),
        demands=traj["d"],
        loads=traj["l"],
        welfare=traj["w"],
        beliefs=traj["b"],
        rewards=traj["r"],
    )


__all__ = ["LockstepBatch", "LockstepResult", "run_lockstep"]
