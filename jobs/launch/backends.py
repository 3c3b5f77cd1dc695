"""Which launcher a `tide train` backend gets, configured from the deployed stack's outputs where it has them.

kubernetes: the PyTorchJob goes where the stack put training (namespace, IRSA service account, PriorityClass,
GPUs: output k8s_training_job). sagemaker: the training role is the stack's (output training_role_arn) and the
SDK's job files go to the artifacts bucket under training-jobs/, which that role may read. Clients are created
here, at the edge, and handed to the launchers.
"""

from __future__ import annotations

from jobs.launch.base import Launcher
from jobs.launch.kubernetes import KubernetesPyTorchJob, Placement, PlacementError
from jobs.stack_outputs import StackOutputs, StackOutputsError
from schemas.naming import TRAINING_JOBS_ROOT


class BackendError(ValueError):
    """The backend cannot be set up as asked (a missing client library, output or option); one line says why."""


def kubernetes_launcher(outputs: StackOutputs | None) -> Launcher:
    if outputs is None:
        raise BackendError(
            "--backend kubernetes needs --stack-outputs (the stack's training namespace, service account, "
            "PriorityClass and GPUs come from `pulumi stack output --json`)"
        )
    placement = Placement.from_outputs(outputs.require("k8s_training_job"))
    try:
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config
    except ImportError:
        raise BackendError("the kubernetes backend needs the kubernetes client (pip install kubernetes)") from None
    k8s_config.load_config()  # in-cluster service account (the retraining runner), else the local kubeconfig
    return KubernetesPyTorchJob(k8s_client.CustomObjectsApi(), placement)


def sagemaker_launcher(outputs: StackOutputs | None, role: str | None, instance_type: str) -> Launcher:
    from sagemaker.core.helper.session_helper import Session

    from jobs.launch.sagemaker import SageMakerTrainingJob

    if role is None and outputs is not None:
        role = str(outputs.require("training_role_arn"))
    if not role:
        raise BackendError("--backend sagemaker needs --role or --stack-outputs (output training_role_arn)")
    if outputs is None:
        return SageMakerTrainingJob(Session(), role, instance_type)
    session = Session(default_bucket=outputs.bucket("artifacts"), default_bucket_prefix=TRAINING_JOBS_ROOT.rstrip("/"))
    return SageMakerTrainingJob(session, role, instance_type)


def launcher_for(backend: str, outputs: StackOutputs | None, role: str | None, instance_type: str) -> Launcher:
    try:
        if backend == "local":
            from jobs.launch.local import LocalTorchrun

            return LocalTorchrun()
        if backend == "kubernetes":
            return kubernetes_launcher(outputs)
        return sagemaker_launcher(outputs, role, instance_type)
    except (StackOutputsError, PlacementError) as err:
        raise BackendError(str(err)) from None
