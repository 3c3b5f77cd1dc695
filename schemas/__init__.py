"""Data contracts, event models and the one source of resource names shared by infra, functions and jobs."""
