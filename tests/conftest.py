"""Shared test settings."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "swalab", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("swalab")
