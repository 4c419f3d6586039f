"""A ``guard`` study's results: its runs pooled over seeds, and goodput and 429s against N.

Each stored run is one seed of one (behaviour, N, policy, guarded share);
:func:`pool_runs` gives each such point the mean of every metric over its seeds with a
percentile-bootstrap interval (:func:`swalab.stats.bootstrap_mean`), and
:func:`plot_guard` draws the fully guarded points, one column per server behaviour.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from swalab._plotting import save_png_svg
from swalab.analysis.map_figures import _pyplot
from swalab.guard.lineup import POLICY_NAMES
from swalab.stats import bootstrap_mean

Table = dict[str, np.ndarray]

#: What identifies a pooled point, in the order results are listed.
POINT = ("behaviour", "clients", "policy", "guarded")
#: Metrics pooled over seeds (mean and interval).
POOLED = (
    *("goodput_share", "reject_share", "goodput_x_accept", "lockout_windows", "p50_s", "p99_s"),
    *("fairness", "wasted_per_success", "drop_share"),
    *("guarded_succeeded_per_client", "guarded_rejected_per_client", "guarded_drop_share"),
    *("naive_succeeded_per_client", "naive_rejected_per_client", "naive_drop_share"),
)


def _value(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def pool_runs(table: Table) -> list[dict[str, Any]]:
    """One record per (behaviour, N, policy, share): each metric's mean over seeds.

    ``goodput_x_accept`` is goodput × (1 − 429 share), the score the issue ranks policies
    by. Each metric ``m`` comes with ``m_ci`` ``[low, high]`` (``None`` ends from one seed);
    ``wasted_per_success`` of a run in which nothing succeeded is undefined and left out.
    ``locked_runs`` counts seeds whose key was locked; ``counters_agree`` holds when the
    server's counters equal the clients' in every run.
    """
    if not table:
        return []
    cols = dict(table)
    cols["goodput_x_accept"] = cols["goodput_share"] * (1.0 - cols["reject_share"])
    wasted = cols["wasted_per_success"].astype(np.float64)
    cols["wasted_per_success"] = np.where(np.isfinite(wasted), wasted, np.nan)
    keys = list(zip(*(cols[k].tolist() for k in POINT), strict=True))
    first = {k: i for i, k in reversed(list(enumerate(keys)))}

    def order(p: tuple[Any, ...]) -> tuple[Any, ...]:  # the line-up's order, λ rising
        i = first[p]
        return (p[0], p[1], -p[3], POLICY_NAMES.index(cols["name"][i]), cols["lam"][i])

    out = []
    for point in sorted(first, key=order):
        at = np.array([k == point for k in keys])
        record: dict[str, Any] = dict(zip(POINT, point, strict=True))
        lam = float(cols["lam"][at][0])
        record |= {"lam": _value(lam), "seeds": int(at.sum())}
        for metric in POOLED:
            est = bootstrap_mean(cols[metric][at].astype(np.float64))
            record[metric] = _value(est.mean)
            record[f"{metric}_ci"] = [_value(est.low), _value(est.high)]
        record["locked_runs"] = int((cols["lockout_windows"][at] > 0).sum())
        record["counters_agree"] = bool(cols["counters_agree"][at].all())
        record["server_peak_rss_mib"] = float(cols["server_peak_rss_mib"][at].max())
        record["client_peak_rss_mib"] = float(cols["client_peak_rss_mib"][at].max())
        out.append(record)
    return out


def plot_guard(results: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Goodput (top) and 429 share (bottom) against N per policy; hollow markers: lockouts.

    ``results``: :func:`pool_runs`' records of the fully guarded points. Bars are the
    seeds' bootstrap intervals; a marker is hollow where the key was locked in any seed,
    so a policy's line shows both what it got and whether it got the key locked.
    """
    plt = _pyplot()
    behaviours = list(dict.fromkeys(r["behaviour"] for r in results))
    policies = list(dict.fromkeys(r["policy"] for r in results))
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
            points = sorted(
                (r for r in results if r["behaviour"] == behaviour and r["policy"] == policy),
                key=lambda r: r["clients"],
            )
            if not points:
                continue
            n = np.array([r["clients"] for r in points])
            locked = np.array([r["locked_runs"] > 0 for r in points])
            for row, key in enumerate(("goodput_share", "reject_share")):
                ax = axes[row, col]
                y = np.array([r[key] for r in points], dtype=np.float64)
                ci = np.array(
                    [[np.nan if x is None else x for x in r[f"{key}_ci"]] for r in points]
                )
                err = np.nan_to_num(np.abs(ci - y[:, None]).T)  # one seed: no bar
                line = ax.errorbar(n, y, yerr=err, marker="o", label=policy, lw=1.4, capsize=2)
                ax.scatter(
                    n[locked],
                    y[locked],
                    s=70,
                    facecolors="white",
                    edgecolors=line.lines[0].get_color(),
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
