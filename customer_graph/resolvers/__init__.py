"""Query and mutation functions, DataLoaders and permissions."""
