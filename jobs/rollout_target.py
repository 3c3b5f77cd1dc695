"""Where `tide rollout` reaches a deployment: `--target aws` (DynamoDB, SageMaker, CloudWatch, EventBridge) or
`--target kubernetes` (ConfigMaps, KServe, Prometheus and Events in the serving namespace), the same service
(functions/traffic/wiring.py) the scheduled function and the stack's rollout-tick CronJob run. Names come from
schemas.naming for the --project/--stack given, so the CLI's defaults are the stack's names.

Each target's refusals become one line naming the deployment (`errors`); anything else keeps its traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

from schemas.naming import ENV_PROMETHEUS_URL, Names

TARGETS = ("aws", "kubernetes")
NO_PROMETHEUS = f"this command reads metrics: pass --prometheus-url (or set {ENV_PROMETHEUS_URL})"


def kube_clients(kubeconfig: str | None, context: str | None) -> tuple[Any, Any]:
    """(CoreV1Api, CustomObjectsApi) from the kubeconfig (--kubeconfig, else $KUBECONFIG or ~/.kube/config) or,
    in a pod with neither option given, the pod's service account (the rollout-tick CronJob)."""
    from kubernetes import client, config
    from urllib3.util.retry import Retry

    configuration = client.Configuration()
    # Retried: connections that failed before a request was sent, and 429 (the API server's priority and fairness
    # refused it unprocessed). Not a read timeout or a 5xx after a write: the write may have happened, and the
    # conditional replace that repeats it would read as a lost race.
    configuration.retries = Retry(total=4, connect=3, read=0, status=3, status_forcelist=(429,),
                                  allowed_methods=None, backoff_factor=0.2, respect_retry_after_header=True,
                                  raise_on_status=False)  # fmt: skip
    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    api = client.ApiClient(configuration)
    return client.CoreV1Api(api), client.CustomObjectsApi(api)


def _no_metrics(*_: Any) -> Any:
    from functions.traffic.adapters.prometheus import PrometheusError

    raise PrometheusError(NO_PROMETHEUS)


@dataclass(frozen=True)
class Deployment:
    project: str
    stack: str
    target: str = "aws"
    namespace: str | None = None
    prometheus_url: str | None = None
    kubeconfig: str | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        if self.target == "aws":
            options = {"namespace": self.namespace, "prometheus-url": self.prometheus_url,
                       "kubeconfig": self.kubeconfig, "context": self.context}  # fmt: skip
            given = [f"--{flag}" for flag, value in options.items() if value]
            if given:
                raise click.UsageError(f"{', '.join(given)}: only with --target kubernetes")

    @property
    def names(self) -> Names:
        return Names(self.project, self.stack)

    @property
    def serving_namespace(self) -> str:
        return self.namespace or self.names.k8s_namespace("serving")

    @property
    def where(self) -> str:
        if self.target == "aws":
            return f"{self.project}-{self.stack} on AWS"
        return f"namespace {self.serving_namespace}, store {self.names.rollout_store}"

    def service(self) -> Any:
        if self.target == "aws":
            from functions.traffic.wiring import aws_rollouts

            return aws_rollouts(self.names)
        import urllib.request

        from functions.traffic.adapters.prometheus import PrometheusAPI
        from functions.traffic.wiring import kubernetes_rollouts

        core, custom = kube_clients(self.kubeconfig, self.context)
        query_range: Any
        firing: Any
        if self.prometheus_url:
            prometheus = PrometheusAPI(self.prometheus_url, urllib.request.build_opener())
            query_range, firing = prometheus.query_range, prometheus.firing_alerts
        else:
            query_range, firing = _no_metrics, _no_metrics
        return kubernetes_rollouts(core, custom, self.serving_namespace, self.names.rollout_store, query_range, firing)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        with _aws_errors(self) if self.target == "aws" else _kube_errors(self):
            yield


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


@contextlib.contextmanager
def _aws_errors(d: Deployment) -> Iterator[None]:
    """AWS's refusals as one line for the operator, naming the deployment, instead of a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise click.ClickException(
                f"{err.response['Error'].get('Message', err)} (rollout table {d.names.rollout_table}): is stack "
                f"{d.stack!r} of {d.project!r} deployed, and are --project/--stack right?"
            ) from None
        raise click.ClickException(f"AWS refused: {err}") from None
    except BotoCoreError as err:
        raise click.ClickException(f"cannot reach AWS for {d.project}-{d.stack}: {err}") from None


@contextlib.contextmanager
def _kube_errors(d: Deployment) -> Iterator[None]:
    """The API server's and Prometheus' refusals as one line, naming the namespace and store."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    from functions.traffic.adapters.configmap_store import InvalidEndpoint
    from functions.traffic.adapters.prometheus import PrometheusError

    try:
        yield
    except ConfigException as err:
        where = d.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise click.ClickException(f"cannot load the Kubernetes config {where}: {_one_line(err)}") from None
    except ApiException as err:
        try:
            status = json.loads(err.body or "{}")
        except ValueError:
            status = {}
        message = _one_line(status.get("message") or err.reason)
        if err.status == 404 and (status.get("details") or {}).get("kind") == "namespaces":
            raise click.ClickException(
                f"namespace {d.serving_namespace!r} does not exist on the cluster: is the stack deployed (stage "
                "serving), and are --namespace/--project/--stack right?"
            ) from None
        if err.status in (401, 403):
            raise click.ClickException(
                f"the Kubernetes API server refused ({err.status} {err.reason}): {message}; the rollout commands "
                f"need the rollout-tick Role's permissions in namespace {d.serving_namespace}"
            ) from None
        raise click.ClickException(f"the Kubernetes API server answered {err.status} {err.reason} ({d.where}): "
                                   f"{message}") from None  # fmt: skip
    except HTTPError as err:  # urllib3: connection refused, TLS, timeouts, after the client's retries
        raise click.ClickException(f"cannot reach the Kubernetes API server: {_one_line(err)}") from None
    except (PrometheusError, InvalidEndpoint) as err:
        raise click.ClickException(_one_line(err)) from None
