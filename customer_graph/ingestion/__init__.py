"""The ways data comes in: the tracking API, CRM importers, and the batching workers."""
