"""Distributed training on torch. Only jobs.train.model/worker/checkpoint import torch."""
