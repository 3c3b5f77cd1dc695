"""The ingest function: raw object-created events -> curated Parquet or a quarantined file with a reason."""
