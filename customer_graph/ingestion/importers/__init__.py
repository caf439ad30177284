"""CRM importers: stream CSV or JSONL exports into the graph through the write path.

`reader` reads rows in constant memory, `mapping` (with `presets/`) turns a row into records,
and `runner` writes them in chunks, one transaction each, and writes the rejects file.
"""

from __future__ import annotations
