"""One way to write a figure: PNG for pages, SVG for papers, side by side, then closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_png_svg(fig: Any, out_dir: Path, stem: str, dpi: int | None = None) -> list[Path]:
    """Write ``out_dir/stem.png`` and ``stem.svg``, close the figure, return both paths.

    The SVG carries no date, so the same data gives the same file.
    """
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    for path in paths:
        meta = {"Date": None} if path.suffix == ".svg" else None
        fig.savefig(path, dpi=dpi, metadata=meta, bbox_inches="tight")  # legends outside axes
    plt.close(fig)
    return paths
