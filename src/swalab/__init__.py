"""swalab: Socially-Weighted Alignment for multi-agent LLM systems sharing a resource.

The top-level import stays light (numpy only): environments pull in PettingZoo when
``swalab.envs`` is imported, and LLM backends load their heavy libraries only when chosen.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
