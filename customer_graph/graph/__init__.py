"""Everything that speaks Cypher: driver lifecycle, constraints, writes, reads, resolution."""
