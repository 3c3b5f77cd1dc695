"""Launchers of a training job behind one interface: local torchrun, Kubernetes PyTorchJob, SageMaker."""
