"""The local backend: Dask's threaded scheduler (grep) on this machine."""

from __future__ import annotations

import pytest

from tests.backends.conformance import BackendConformance


class TestLocalOneWorker(BackendConformance):
    @pytest.fixture
    def run_options(self):
        return {"backend": "local", "workers": 1}


class TestLocalAllCores(BackendConformance):
    @pytest.fixture
    def run_options(self):
        return {"backend": "local"}


def test_backend_is_reused_across_calls():
    from workbench.backends import get_backend

    assert get_backend("local", workers=2) is get_backend("local", workers=2)
    assert get_backend("local", workers=1) is not get_backend("local", workers=2)
