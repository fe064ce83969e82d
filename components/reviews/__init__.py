"""Customer reviews: schema, synthetic generation, ingest and validation."""
