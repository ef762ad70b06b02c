"""Shared fixtures: a fresh home, prepared built-in competitions, the PostgreSQL URL."""

from __future__ import annotations

import os
import shutil

import pytest

from harness.home import find_spec_path, load_prepared
from harness.splits import prepare

POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL", "")


@pytest.fixture
def home(tmp_path):
    """An empty home folder."""
    return tmp_path / "home"


@pytest.fixture(scope="session")
def _prepared_home(tmp_path_factory):
    """One home with every small built-in prepared once per session (copied per test)."""
    h = tmp_path_factory.mktemp("prepared") / "home"
    for slug in ("digits", "breast-cancer", "fertility", "noise-binary"):
        prepare(find_spec_path(slug), h)
    return h


@pytest.fixture
def prepared_home(_prepared_home, tmp_path):
    """A home of its own for each test, holding the prepared built-ins."""
    h = tmp_path / "phome"
    shutil.copytree(_prepared_home, h)
    return h


@pytest.fixture
def digits(prepared_home):
    """The prepared `digits` competition in a test's own home."""
    return load_prepared(prepared_home, "digits")


@pytest.fixture
def postgres_url():
    """The PostgreSQL URL for tests that need it; skips with the reason when absent."""
    if not POSTGRES_URL:
        pytest.skip("HARNESS_TEST_POSTGRES_URL is not set (CI sets it in .ci/run)")
    try:
        import sqlalchemy as sa

        sa.create_engine(POSTGRES_URL).connect().close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    return POSTGRES_URL
