from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from customer_graph.runtime import tune_garbage_collection
from customer_graph.settings import Settings


@pytest.fixture
def restored_gc() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.unfreeze()
    gc.set_threshold(*before)


def test_the_threshold_is_raised_and_what_exists_is_frozen(
    restored_gc: tuple[int, int, int],
) -> None:
    gc.unfreeze()
    tune_garbage_collection(20_000)
    assert gc.get_threshold() == (20_000, restored_gc[1], restored_gc[2])
    assert gc.get_freeze_count() > 0


def test_zero_keeps_pythons_defaults(restored_gc: tuple[int, int, int]) -> None:
    gc.unfreeze()
    tune_garbage_collection(0)
    assert gc.get_threshold() == restored_gc
    assert gc.get_freeze_count() == 0


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMER_GRAPH_GC_GEN0_THRESHOLD", "5000")
    assert Settings().gc_gen0_threshold == 5000
    monkeypatch.setenv("CUSTOMER_GRAPH_GC_GEN0_THRESHOLD", "-1")
    with pytest.raises(ValueError, match="gc_gen0_threshold"):
        Settings()
