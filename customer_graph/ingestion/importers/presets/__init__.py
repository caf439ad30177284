"""Column maps of CRM exports, one module per CRM; `GENERIC` when no preset is named."""

from __future__ import annotations

from customer_graph.ingestion.importers.layouts import Preset
from customer_graph.ingestion.importers.presets.dynamics import DYNAMICS
from customer_graph.ingestion.importers.presets.generic import GENERIC
from customer_graph.ingestion.importers.presets.hubspot import HUBSPOT
from customer_graph.ingestion.importers.presets.salesforce import SALESFORCE
from customer_graph.ingestion.importers.presets.zoho import ZOHO

PRESETS: dict[str, Preset] = {p.name: p for p in (SALESFORCE, HUBSPOT, DYNAMICS, ZOHO)}


def preset(name: str | None) -> Preset:
    """The preset called `name`, or the generic layout for None."""
    if name is None:
        return GENERIC
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


__all__ = ["GENERIC", "PRESETS", "preset"]
