"""Shared test settings."""

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "swalab", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("swalab")


@pytest.fixture
def quick_on_openai():
    """``swalab run quick`` arguments for one tiny cell served by the openai backend at a URL."""

    def args(out, url, *extra):
        sets = [
            "seeds=1",
            "grid.lam=[0.5]",
            "game.steps=1",
            "model.backend=openai",
            "model.name=x",
            f"model.options.base_url={url}",
            "model.cache=false",
            *extra,
        ]
        return ["run", "quick", "--out", str(out)] + [a for s in sets for a in ("--set", s)]

    return args
