"""Commands write their studies under results/ of the working directory: use a fresh one."""

import pytest


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
