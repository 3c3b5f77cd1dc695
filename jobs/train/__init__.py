"""Distributed training on torch. Only jobs.train.worker/checkpoint (and serving.net, the model) import torch."""
