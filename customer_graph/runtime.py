"""Tuning of the Python runtime for the long-running processes: the API and the importer."""

from __future__ import annotations

import gc


def tune_garbage_collection(gen0_threshold: int) -> None:
    """Collect young objects every `gen0_threshold` net allocations instead of Python's 700,
    and take what exists now (modules, the GraphQL schema, settings) out of collections.

    A request allocates thousands of short-lived containers (parsed messages, rows, GraphQL
    results), nearly all freed by reference counting. With the default threshold the cyclic
    collector still ran many times per request, and its full runs walked every long-lived
    object, including the normalization and keyed-hash caches that fill as traffic comes: about
    a fifth of the API's CPU on ingestion, and growing with the caches. 0 keeps the defaults.
    """
    if gen0_threshold <= 0:
        return
    gc.collect()  # what is garbage now must not be frozen for good
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
