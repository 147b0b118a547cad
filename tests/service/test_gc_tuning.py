"""The collector settings the command line applies before any goal runs."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from connector.gc_tuning import THRESHOLDS, tune_garbage_collector


@pytest.fixture
def restore_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.usefixtures("restore_collector")
def test_tuning_freezes_start_up_objects_and_raises_the_thresholds() -> None:
    start_up = {"settings": ["kept for the whole process"]}
    tune_garbage_collector()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert start_up["settings"]  # frozen objects stay alive and usable


@pytest.mark.usefixtures("restore_collector")
def test_cycles_made_after_tuning_are_still_collected() -> None:
    tune_garbage_collector()

    class Node:
        partner: object = None

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    del first, second
    assert gc.collect() >= 2
