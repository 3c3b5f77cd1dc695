"""Pieces every function shares (small, no heavy imports)."""
