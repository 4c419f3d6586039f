"""A counter-based random stream for candidate draws (SplitMix64 + Floyd's sampling).

Each (seed, step, agent) names its own stream, so a draw never depends on how many other
draws came before it, on batch composition, chunking or thread scheduling. The per-agent
path runs this Python version; the lockstep engine compiles an identical copy
(:mod:`swalab.swi._kernels`), and a test checks that both draw the same numbers.
"""

from __future__ import annotations

import math

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def mix64(z: int) -> int:
    """Return SplitMix64's finaliser of ``z`` (a bijection of 64-bit integers)."""
    z = ((z ^ (z >> 30)) * MIX1) & MASK
    z = ((z ^ (z >> 27)) * MIX2) & MASK
    return z ^ (z >> 31)


def episode_key(seed: int) -> int:
    """Return the key of an episode's streams (computed once per episode)."""
    return mix64((seed + GOLDEN) & MASK)


def step_key(episode: int, step: int) -> int:
    """Return the key of one step's streams, from :func:`episode_key`."""
    return mix64(((episode ^ step) + GOLDEN) & MASK)


def agent_key(step: int, agent: int) -> int:
    """Return the starting state of one agent's stream, from :func:`step_key`."""
    return mix64(((step ^ agent) + GOLDEN) & MASK)


def stream_key(seed: int, step: int, agent: int) -> int:
    """Return the starting state of the stream for one agent's draw at one step."""
    return agent_key(step_key(episode_key(seed), step), agent)


def floyd_sample(key: int, population: int, k: int) -> list[int]:
    """Return ``k`` distinct indices below ``population`` (Floyd's algorithm).

    Each 64-bit output serves two draws, its high then its low 32 bits; ``(b · m) >> 32``
    maps 32 bits ``b`` to ``[0, m)`` without a division (bias below ``m/2³²``).
    """
    state = key
    r = 0
    chosen: list[int] = []
    for n, j in enumerate(range(population - k, population)):
        if n % 2 == 0:
            state = (state + GOLDEN) & MASK
            r = mix64(state)
            bits = r >> 32
        else:
            bits = r & 0xFFFFFFFF
        t = (bits * (j + 1)) >> 32
        chosen.append(j if t in chosen else t)
    return chosen


#: Stream offsets (added to the agent index) that keep each use of randomness apart from
#: the candidate draws (stream = agent) and the LLM's proposal and choose seeds.
NOISE_STREAM = 1 << 21
OUTSIDER_STREAM = 1 << 22
HORIZON_STREAM = 1 << 23
TWO_PI = 6.283185307179586


def uniform(key: int, draw: int) -> float:
    """Return the ``draw``-th uniform number in [0, 1) of the stream ``key`` (53 bits)."""
    return (mix64((key + (draw + 1) * GOLDEN) & MASK) >> 11) * 2.0**-53


def gaussian(key: int) -> float:
    """Return one standard normal draw of the stream ``key`` (Box–Muller)."""
    radius = math.sqrt(-2.0 * math.log(1.0 - uniform(key, 0)))
    return radius * math.cos(TWO_PI * uniform(key, 1))
