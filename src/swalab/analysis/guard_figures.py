"""The client-policy benchmark's figure: goodput and 429s against N, one line per policy.

Drawn from the ``rows`` table of a ``bench`` study with ``benchmark: guard``
(:func:`swalab.guard.bench.guard_benchmark`), one column per server behaviour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swalab._plotting import save_png_svg
from swalab.analysis.map_figures import _pyplot

Table = dict[str, np.ndarray]


def plot_guard(table: Table, out_dir: Path) -> list[Path]:
    """Goodput (top) and 429 share (bottom) against N per policy; hollow markers: lockouts.

    A marker is hollow where the key was locked out in that run, so a policy's line shows
    both what it got and whether it got the key locked.
    """
    plt = _pyplot()
    behaviours = list(dict.fromkeys(table["behaviour"].tolist()))
    policies = list(dict.fromkeys(table["policy"].tolist()))
    fig, axes = plt.subplots(
        2,
        len(behaviours),
        figsize=(4.4 * len(behaviours), 6.4),
        squeeze=False,
        sharex=True,
        constrained_layout=True,
    )
    for col, behaviour in enumerate(behaviours):
        for policy in policies:
            at = (table["behaviour"] == behaviour) & (table["policy"] == policy)
            order = np.argsort(table["clients"][at])
            n = table["clients"][at][order]
            locked = table["lockout_windows"][at][order] > 0
            for row, key in enumerate(("goodput_share", "reject_share")):
                ax = axes[row, col]
                y = table[key][at][order]
                (line,) = ax.plot(n, y, marker="o", label=policy, lw=1.4)
                ax.scatter(
                    n[locked],
                    y[locked],
                    s=70,
                    facecolors="white",
                    edgecolors=line.get_color(),
                    zorder=3,
                )
        axes[0, col].set_title(behaviour)
        axes[0, col].set_ylabel("goodput (share of the limit)")
        axes[1, col].set_ylabel("429 share of attempts")
        axes[1, col].set_xlabel("clients N")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.set_ylim(-0.03, 1.08)
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    return save_png_svg(fig, out_dir, "guard")
