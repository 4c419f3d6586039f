"""Reading Retry-After and the RateLimit-* / X-RateLimit-* headers."""

import email.utils

import pytest

from swalab.guard.headers import Limits, parse_limits


def test_draft_names_and_x_names_both_read():
    got = parse_limits(
        {"RateLimit-Limit": "100", "RateLimit-Remaining": "7", "RateLimit-Reset": "0.25"}
    )
    assert got == Limits(retry_after=None, limit=100, remaining=7, reset=0.25)
    x = parse_limits({"x-ratelimit-limit": "60", "X-RateLimit-Remaining": "0"})
    assert (x.limit, x.remaining) == (60, 0)


def test_draft_lists_take_the_first_item():
    assert parse_limits({"RateLimit-Limit": "100, 100;w=60"}).limit == 100


@pytest.mark.parametrize("value", ["soon", "-3", "nan", "inf", ""])
def test_unparseable_values_are_ignored(value):
    assert parse_limits({"Retry-After": value, "RateLimit-Remaining": value}) == Limits()


def test_retry_after_as_an_http_date_and_reset_as_an_epoch():
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    got = parse_limits({"Retry-After": date, "X-RateLimit-Reset": str(int(now) + 12)}, now)
    assert got.retry_after == pytest.approx(30, abs=1) and got.reset == pytest.approx(12)
