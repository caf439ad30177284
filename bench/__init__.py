"""Benchmarks: `python -m bench` (or `make bench`) measures what users feel beside a floor."""

from __future__ import annotations
