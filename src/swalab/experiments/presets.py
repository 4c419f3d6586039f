"""The YAML presets shipped with swalab (``configs/`` in the repository is this folder).

``swalab run quick`` finds a preset by name; a path to any YAML file works as well.
"""

from __future__ import annotations

from pathlib import Path

#: Folder holding the preset YAML files (installed with the package).
PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


def preset_names() -> list[str]:
    """Names of the shipped presets (file stems)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def preset_path(name_or_path: str) -> Path:
    """A preset's file if ``name_or_path`` names one (and is not an existing file)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    candidate = PRESETS_DIR / f"{name_or_path}.yaml"
    return candidate if candidate.exists() else path
