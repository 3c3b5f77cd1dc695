"""Batch ingestion on Dask: curated partitions -> a versioned, sharded training dataset + manifest.

Importing this package imports nothing heavy; dask is imported by jobs.batch.build only.
"""
