"""infra/k8s under Pulumi mocks, for the aws target (Pulumi.yaml defaults) and the kubernetes target (onprem).

Each test is decorated with @pulumi.runtime.test and returns the Output whose apply runs the checks, so a
failing assertion fails the test (an undecorated check would pass silently).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from infra.k8s import build_kubernetes_stack
from infra.k8s import config as k8s_config
from infra.k8s.charts import CLUSTER_AUTOSCALER, DASK_OPERATOR, KNATIVE_OPERATOR, KSERVE, TRAINING_OPERATOR
from infra.k8s.policies import AUTOSCALER_DESCRIBE_ACTIONS
from schemas import manifests
from schemas.naming import Names, platform_image
from tests.infra import k8s_harness as h

KMS = "arn:aws:kms:eu-west-1:123456789012:key/data"
HANDOFF = (
    "arn:aws:sqs:eu-west-1:123456789012:tidewater-dev-handoff",
    "arn:aws:events:eu-west-1:123456789012:event-bus/tidewater-dev-events",
)
TAINT_KEY = "nvidia.com/gpu"
SECRET_SIG_KEY, SECRET_SIG = rpc._special_sig_key, rpc._special_secret_sig  # how the SDK marks a secret value


VERSION = "3f9c2a71b04d8e65"  # the trained model Pulumi.onprem.yaml serves (stage serving)


def _deploy(stack: str | None, stack_name: str, check: Any, **overrides: Any) -> pulumi.Output[None]:
    mocks = h.start(stack_name, h.stack_config(stack, overrides))
    served = ("fraud", VERSION) if stack == "onprem" else None
    component = build_kubernetes_stack(Names("tidewater", stack_name), kms_key_arn=KMS, served_model=served)
    return h.after_all(component, lambda: check(mocks, component))


def _walk(value: Any, key: str) -> list[Any]:
    """Every value stored under `key` anywhere in a nested dict/list."""
    found: list[Any] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                found.append(v)
            found.extend(_walk(v, key))
    elif isinstance(value, list):
        for item in value:
            found.extend(_walk(item, key))
    return found


def _k8s_workloads(mocks: h.RecordingMocks) -> list[h.Registered]:
    return [r for r in mocks.resources if r.typ.startswith("kubernetes:") and "spec" in r.inputs]


# ---------------------------------------------------------------------------------------------- aws target


@pulumi.runtime.test
def test_aws_gpu_nodes_are_tainted_and_only_gpu_workloads_tolerate_it() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        gpu = mocks.named("aws:eks/nodeGroup:NodeGroup", "-gpu").inputs
        system = mocks.named("aws:eks/nodeGroup:NodeGroup", "-system").inputs
        assert gpu["taints"] == [{"key": TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"}]
        assert gpu["labels"] == {manifests.POOL_LABEL: "gpu"}
        assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
        assert gpu["instanceTypes"] == ["g5.xlarge", "g5.2xlarge"]
        assert gpu["scalingConfig"] == {"minSize": 0, "desiredSize": 1, "maxSize": 4}
        assert gpu["capacityType"] == "ON_DEMAND"
        assert not system.get("taints")
        assert system["labels"] == {manifests.POOL_LABEL: "system"}

        tolerating = {r.inputs["kind"] for r in _k8s_workloads(mocks) if _walk(r.inputs, "tolerations")}
        assert tolerating == {"DaemonSet"}  # the NVIDIA device plugin, and nothing else the platform runs
        plugin = mocks.of_type("kubernetes:apps/v1:DaemonSet")[0].inputs["spec"]["template"]["spec"]
        assert plugin["tolerations"][0]["key"] == TAINT_KEY
        assert plugin["nodeSelector"] == {manifests.POOL_LABEL: "gpu"}
        (dask,) = mocks.custom("DaskCluster")
        assert set(_walk(dask.inputs, "nodeSelector")[0].values()) == {"system"}

    return _deploy(None, "dev", check)


@pulumi.runtime.test
def test_aws_spot_gpu_pool_and_instance_types_follow_config() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        gpu = mocks.named("aws:eks/nodeGroup:NodeGroup", "-gpu").inputs
        assert gpu["capacityType"] == "SPOT"
        assert gpu["instanceTypes"] == ["p4d.24xlarge"]
        assert gpu["scalingConfig"] == {"minSize": 1, "desiredSize": 2, "maxSize": 3}

    return _deploy(
        None,
        "dev",
        check,
        k8s_gpu_spot=True,
        k8s_gpu_instance_types=["p4d.24xlarge"],
        k8s_gpu_min_size=1,
        k8s_gpu_desired_size=2,
        k8s_gpu_max_size=3,
    )


@pulumi.runtime.test
def test_aws_operators_installed_pinned() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        (training,) = mocks.of_type("kubernetes:kustomize/v2:Directory")
        assert training.inputs["directory"] == TRAINING_OPERATOR
        assert "/tree/v1." in TRAINING_OPERATOR  # a release tag, not a branch
        releases = {r.inputs["chart"]: r.inputs for r in mocks.of_type("kubernetes:helm.sh/v3:Release")}
        dask = releases["dask-kubernetes-operator"]
        assert dask["version"] == DASK_OPERATOR.version
        assert dask["repositoryOpts"] == {"repo": "https://helm.dask.org"}
        assert KSERVE.chart not in releases  # serving is SageMaker's on aws
        assert not mocks.custom("InferenceService")

    return _deploy(None, "dev", check)


@pulumi.runtime.test
def test_aws_dask_cluster_and_autoscaler_match_config() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, component: Any) -> None:
        (cluster,) = mocks.custom("DaskCluster")
        (scaler,) = mocks.custom("DaskAutoscaler")
        assert scaler.inputs["apiVersion"] == cluster.inputs["apiVersion"] == "kubernetes.dask.org/v1"
        assert scaler.inputs["spec"] == {"cluster": "tidewater-dev-dask", "minimum": 2, "maximum": 7}
        assert cluster.inputs["metadata"] == {"name": "tidewater-dev-dask", "namespace": "tidewater-dev-ingestion"}
        assert cluster.inputs["spec"]["idleTimeout"] == 900
        assert cluster.inputs["spec"]["worker"]["replicas"] == 2
        worker = cluster.inputs["spec"]["worker"]["spec"]
        assert worker["serviceAccountName"] == "tidewater-ingestion"
        assert worker["priorityClassName"] == "tidewater-dev-ingestion"
        assert (
            component.outputs["dask_scheduler_address"]
            == "tcp://tidewater-dev-dask-scheduler.tidewater-dev-ingestion.svc.cluster.local:8786"
        )

    return _deploy(None, "dev", check, k8s_dask_min_workers=2, k8s_dask_max_workers=7, k8s_dask_idle_timeout=900)


@pulumi.runtime.test
def test_aws_irsa_roles_trust_one_service_account_and_reach_only_their_prefixes() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        accounts = {
            r.inputs["metadata"]["namespace"]: r.inputs["metadata"]
            for r in mocks.of_type("kubernetes:core/v1:ServiceAccount")
        }
        expected = {
            "training": ("tidewater-dev-training", "tidewater-training"),
            "ingestion": ("tidewater-dev-ingestion", "tidewater-ingestion"),
        }
        issuer = h.ISSUER.removeprefix("https://")
        for role, (namespace, account) in expected.items():
            irsa = mocks.named("aws:iam/role:Role", f"-{role}-irsa")
            trust = json.loads(irsa.inputs["assumeRolePolicy"])
            (statement,) = trust["Statement"]
            assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
            assert statement["Principal"]["Federated"].endswith(issuer)
            assert statement["Condition"]["StringEquals"] == {
                f"{issuer}:sub": f"system:serviceaccount:{namespace}:{account}",
                f"{issuer}:aud": "sts.amazonaws.com",
            }
            assert accounts[namespace]["annotations"]["eks.amazonaws.com/role-arn"].endswith(f"/{irsa.name}")

            policy = json.loads(mocks.named("aws:iam/rolePolicy:RolePolicy", f"-{role}-access").inputs["policy"])
            assert mocks.named("aws:iam/rolePolicy:RolePolicy", f"-{role}-access").inputs["role"] == irsa.id
            for st in policy["Statement"]:
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                for arn in resources:
                    assert arn != "*"
                    assert arn == KMS or arn.startswith("arn:aws:s3:::tidewater-dev-") or arn in HANDOFF, arn

        def writable(role: str) -> set[str]:
            policy = json.loads(mocks.named("aws:iam/rolePolicy:RolePolicy", f"-{role}-access").inputs["policy"])
            return {st["Resource"] for st in policy["Statement"] if "s3:PutObject" in st["Action"]}

        assert writable("training") == {
            "arn:aws:s3:::tidewater-dev-artifacts/models/*",
            "arn:aws:s3:::tidewater-dev-artifacts/checkpoints/*",
        }
        assert writable("ingestion") == {
            "arn:aws:s3:::tidewater-dev-curated/*",
            "arn:aws:s3:::tidewater-dev-quarantine/*",
            "arn:aws:s3:::tidewater-dev-datasets/*",
        }
        # Only batch ingestion consumes the hand-off queue and publishes on the bus (`tide curate-handoffs`).
        for role in ("training", "ingestion"):
            policy = json.loads(mocks.named("aws:iam/rolePolicy:RolePolicy", f"-{role}-access").inputs["policy"])
            reached = {r for st in policy["Statement"] for r in ([st["Resource"]] if isinstance(st["Resource"], str)
                       else st["Resource"]) if r in HANDOFF}  # fmt: skip
            assert reached == (set(HANDOFF) if role == "ingestion" else set())
        assert not mocks.of_type("aws:iam/role:Role") or not any(
            r.name.endswith("-serving-irsa") for r in mocks.of_type("aws:iam/role:Role")
        )

    return _deploy(None, "dev", check)


@pulumi.runtime.test
def test_aws_cluster_autoscaler_can_grow_the_gpu_group_and_nothing_else() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        release = next(
            r for r in mocks.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == CLUSTER_AUTOSCALER.chart
        ).inputs
        assert release["version"] == CLUSTER_AUTOSCALER.version
        assert release["values"]["autoDiscovery"] == {"clusterName": "tidewater-dev-compute"}
        assert release["values"]["awsRegion"] == "eu-west-1"
        role = mocks.named("aws:iam/role:Role", "-autoscaler-irsa")
        account = release["values"]["rbac"]["serviceAccount"]
        assert account["annotations"]["eks.amazonaws.com/role-arn"].endswith(f"/{role.name}")
        issuer = h.ISSUER.removeprefix("https://")
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
        assert (
            trust["Condition"]["StringEquals"][f"{issuer}:sub"]
            == f"system:serviceaccount:kube-system:{account['name']}"
        )
        policy = json.loads(mocks.named("aws:iam/rolePolicy:RolePolicy", "-autoscaler-access").inputs["policy"])
        scale, describe, nodegroups = policy["Statement"]
        assert describe["Action"] == list(AUTOSCALER_DESCRIBE_ACTIONS)
        assert scale["Condition"] == {
            "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/tidewater-dev-compute": "owned"}
        }
        assert nodegroups["Resource"] == f"arn:aws:eks:eu-west-1:{h.ACCOUNT}:nodegroup/tidewater-dev-compute/*"

    return _deploy(None, "dev", check)


@pulumi.runtime.test
def test_aws_no_unconditioned_wildcard_resource_outside_documented_describe_calls() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        for policy in mocks.of_type("aws:iam/rolePolicy:RolePolicy"):
            for st in json.loads(policy.inputs["policy"])["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                assert "*" not in actions
                if st["Resource"] == "*":
                    # AWS has no resource-level permissions for these reads; writes need the cluster-tag condition.
                    assert set(actions) <= set(AUTOSCALER_DESCRIBE_ACTIONS) or "Condition" in st, (policy.name, st)

    return _deploy(None, "dev", check)


@pulumi.runtime.test
def test_aws_quotas_and_priority_classes_exist() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        quotas = {
            r.inputs["metadata"]["namespace"]: r.inputs["spec"]["hard"]
            for r in mocks.of_type("kubernetes:core/v1:ResourceQuota")
        }
        assert set(quotas) == {"tidewater-dev-training", "tidewater-dev-ingestion"}
        assert quotas["tidewater-dev-training"]["requests.nvidia.com/gpu"] == "8"
        assert quotas["tidewater-dev-ingestion"]["requests.nvidia.com/gpu"] == "0"
        assert quotas["tidewater-dev-training"]["requests.cpu"] == "64"
        # Each quota'd namespace has defaults, so injected sidecars/init containers are admitted.
        assert {r.inputs["metadata"]["namespace"] for r in mocks.of_type("kubernetes:core/v1:LimitRange")} == set(
            quotas
        )
        classes = {
            r.inputs["metadata"]["name"]: r.inputs
            for r in mocks.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")
        }
        assert set(classes) == {"tidewater-dev-training", "tidewater-dev-ingestion"}
        assert classes["tidewater-dev-training"]["value"] > classes["tidewater-dev-ingestion"]["value"]
        assert classes["tidewater-dev-ingestion"]["preemptionPolicy"] == "Never"

    return _deploy(None, "dev", check)


@pulumi.runtime.test
def test_aws_existing_subnets_skip_the_vpc_and_kubeconfig_is_secret_and_exec_based() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, component: Any) -> None:
        assert not mocks.of_type("aws:ec2/vpc:Vpc")
        cluster = mocks.of_type("aws:eks/cluster:Cluster")[0].inputs
        assert cluster["vpcConfig"]["subnetIds"] == ["subnet-a", "subnet-b"]
        (provider,) = mocks.of_type("pulumi:providers:kubernetes")
        kubeconfig = json.loads(provider.inputs["kubeconfig"])
        user = kubeconfig["users"][0]["user"]
        assert user["exec"]["command"] == "aws" and "get-token" in user["exec"]["args"]
        assert "token" not in user

    return _deploy(None, "dev", check, k8s_subnet_ids=["subnet-a", "subnet-b"])


@pulumi.runtime.test
def test_aws_without_gpu_group_and_cpu_training() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        assert [r.name for r in mocks.of_type("aws:eks/nodeGroup:NodeGroup")] == ["compute-eks-system"]
        assert not mocks.of_type("kubernetes:apps/v1:DaemonSet")

    return _deploy(None, "dev", check, k8s_gpu_max_size=0, k8s_gpu_desired_size=0, k8s_training_gpus=0)


# ---------------------------------------------------------------------------------------------- kubernetes target


@pulumi.runtime.test
def test_onprem_uses_the_kubeconfig_and_creates_no_cloud_resources() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, component: Any) -> None:
        assert not [r for r in mocks.resources if r.typ.startswith("aws:")]
        (provider,) = mocks.of_type("pulumi:providers:kubernetes")
        kubeconfig = provider.inputs["kubeconfig"]
        assert isinstance(kubeconfig, dict), "the kubeconfig must reach the provider as a secret"
        assert kubeconfig["value"] == "~/.kube/onprem.yaml"
        assert provider.inputs["context"] == "onprem"
        assert component.outputs["namespaces"] == {
            "training": "tidewater-onprem-training",
            "ingestion": "tidewater-onprem-ingestion",
            "serving": "tidewater-onprem-serving",
        }

    return _deploy("onprem", "onprem", check)


@pulumi.runtime.test
def test_onprem_serves_the_model_with_kserve() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        (isvc,) = mocks.custom("InferenceService")
        assert isvc.inputs["apiVersion"] == "serving.kserve.io/v1beta1"
        predictor = isvc.inputs["spec"]["predictor"]
        (container,) = predictor["containers"]  # Tidewater's predictor as KServe's custom container
        assert "model" not in predictor and container["image"] == platform_image("serving")
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["STORAGE_URI"] == f"s3://tidewater-onprem-artifacts/models/fraud/{VERSION}/"
        assert env["AWS_ENDPOINT_URL"] == "http://minio.minio.svc.cluster.local:9000"
        assert "--variant" not in container["args"]  # labelled by Knative revision (K_REVISION)
        assert predictor["serviceAccountName"] == "tidewater-serving"
        charts = {r.inputs["chart"]: r.inputs for r in mocks.of_type("kubernetes:helm.sh/v3:Release")}
        assert charts[KSERVE.chart]["version"] == KSERVE.version
        assert charts[KSERVE.chart]["values"]["kserve"]["controller"]["deploymentMode"] == "Serverless"
        assert isvc.inputs["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Serverless"}
        assert {"cert-manager", "dask-kubernetes-operator", KSERVE.chart} <= set(charts)
        assert mocks.of_type("kubernetes:kustomize/v2:Directory")
        # Serverless mode (canary splits) runs on Knative Serving, installed by its operator with Kourier.
        assert charts[KNATIVE_OPERATOR.chart]["version"] == KNATIVE_OPERATOR.version
        (knative,) = mocks.custom("KnativeServing")
        assert knative.inputs["metadata"]["namespace"] == "knative-serving"
        assert knative.inputs["spec"]["ingress"] == {"kourier": {"enabled": True}}

    return _deploy("onprem", "onprem", check)


@pulumi.runtime.test
def test_onprem_storage_keys_reach_kserve_as_an_annotated_secret() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        secrets = {s.inputs["metadata"]["namespace"]: s for s in mocks.of_type("kubernetes:core/v1:Secret")}
        assert set(secrets) == {"tidewater-onprem-serving", "tidewater-onprem-training"}  # KServe; training pods
        secret = secrets["tidewater-onprem-serving"]
        assert secret.inputs["metadata"]["annotations"] == {
            "serving.kserve.io/s3-endpoint": "minio.minio.svc.cluster.local:9000",
            "serving.kserve.io/s3-usehttps": "0",
        }
        # Pulumi secrets stay secrets all the way to the object: the mocks see stringData wrapped as a secret
        # (the SDK's signature key beside `value`), never as plain strings.
        data = secret.inputs["stringData"]
        assert set(data) == {SECRET_SIG_KEY, "value"} and data[SECRET_SIG_KEY] == SECRET_SIG
        assert data["value"] == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
        accounts = {r.inputs["metadata"]["name"]: r.inputs for r in mocks.of_type("kubernetes:core/v1:ServiceAccount")}
        assert accounts["tidewater-serving"]["secrets"] == [{"name": secret.inputs["metadata"]["name"]}]
        assert not accounts["tidewater-training"].get("secrets")
        training = secrets["tidewater-onprem-training"].inputs
        assert training["metadata"]["name"] == "tidewater-training-storage"
        assert training["stringData"] == data  # the same keys, still a Pulumi secret

    return _deploy("onprem", "onprem", check, k8s_storage_access_key_id="AK", k8s_storage_secret_access_key="SK")


@pulumi.runtime.test
def test_raw_deployment_mode_installs_no_knative() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        charts = {r.inputs["chart"] for r in mocks.of_type("kubernetes:helm.sh/v3:Release")}
        assert KSERVE.chart in charts and KNATIVE_OPERATOR.chart not in charts
        assert mocks.custom("KnativeServing") == []

    return _deploy("onprem", "onprem", check, k8s_kserve_deployment_mode="RawDeployment")


@pulumi.runtime.test
def test_onprem_quotas_priorities_dask_and_gpu_plugin() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        quotas = {
            r.inputs["metadata"]["namespace"]: r.inputs["spec"]["hard"]
            for r in mocks.of_type("kubernetes:core/v1:ResourceQuota")
        }
        assert quotas["tidewater-onprem-training"]["requests.nvidia.com/gpu"] == "4"
        assert quotas["tidewater-onprem-serving"]["requests.nvidia.com/gpu"] == "0"
        classes = {r.inputs["metadata"]["name"] for r in mocks.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
        assert classes == {"tidewater-onprem-training", "tidewater-onprem-ingestion", "tidewater-onprem-serving"}
        (scaler,) = mocks.custom("DaskAutoscaler")
        assert (scaler.inputs["spec"]["minimum"], scaler.inputs["spec"]["maximum"]) == (1, 6)
        (plugin,) = mocks.of_type("kubernetes:apps/v1:DaemonSet")
        assert "nodeSelector" not in plugin.inputs["spec"]["template"]["spec"]  # unknown labels on a foreign cluster
        tolerating = {r.inputs["kind"] for r in _k8s_workloads(mocks) if _walk(r.inputs, "tolerations")}
        assert tolerating == {"DaemonSet"}
        (dask,) = mocks.custom("DaskCluster")
        assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio.minio.svc.cluster.local:9000"} in dask.inputs[
            "spec"
        ]["worker"]["spec"]["containers"][0]["env"]

    return _deploy("onprem", "onprem", check)


# ---------------------------------------------------------------------------------------------- config errors


def _load(stack: str | None, **overrides: Any) -> k8s_config.K8sConfig:
    h.start("cfg", h.stack_config(stack, overrides))
    return k8s_config.load()


@pytest.mark.parametrize(
    ("stack", "overrides", "message"),
    [
        (
            None,
            {"k8s_gpu_max_size": 0, "k8s_gpu_desired_size": 0},
            "k8s_training_gpus requests 1 GPU.*no GPU pool.*k8s_gpu_max_size",
        ),
        ("onprem", {"k8s_gpu_nodes": False}, "k8s_training_gpus requests 2 GPU.*no GPU pool.*k8s_gpu_nodes"),
        ("onprem", {"k8s_kubeconfig": None}, "tidewater:k8s_kubeconfig is required"),
        (None, {"target": "gcp"}, "tidewater:target"),
        (None, {"k8s_gpu_vendor": "acme"}, "tidewater:k8s_gpu_vendor.*unknown"),
        (None, {"k8s_gpu_vendor": "amd"}, "nvidia on target aws"),
        ("onprem", {"k8s_gpu_vendor": "amd"}, "k8s_install_device_plugin"),
        (None, {"k8s_dask_min_workers": 5, "k8s_dask_max_workers": 2}, "k8s_dask_min_workers"),
        (None, {"k8s_gpu_min_size": 3}, "k8s_gpu_min_size"),
        (None, {"k8s_training_quota_gpus": 0}, "k8s_training_quota_gpus"),
        (None, {"k8s_training_quota_memory": "lots"}, "k8s_training_quota"),
        (None, {"k8s_storage_endpoint": "minio:9000"}, "k8s_storage_endpoint"),
        (None, {"k8s_subnet_ids": ["subnet-a"]}, "k8s_subnet_ids"),
        (None, {"k8s_serving_image": "not an image"}, "k8s_serving_image"),
        ("onprem", {"k8s_kserve_deployment_mode": "Knative"}, "k8s_kserve_deployment_mode"),
        ("onprem", {"k8s_storage_access_key_id": "AKIA"}, "k8s_storage_access_key_id and .* go together"),
    ],
)
def test_bad_config_fails_naming_the_key(stack: str | None, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(k8s_config.K8sConfigError, match=message):
        _load(stack, **overrides)


def test_cpu_only_training_needs_no_gpu_pool() -> None:
    cfg = _load("onprem", k8s_gpu_nodes=False, k8s_training_gpus=0, k8s_install_device_plugin=False)
    assert not cfg.has_gpu_pool and cfg.training_gpus == 0


def test_amd_cluster_is_accepted_without_nvidia_plugin() -> None:
    cfg = _load("onprem", k8s_gpu_vendor="amd", k8s_install_device_plugin=False)
    assert cfg.gpu_resource_key == "amd.com/gpu"


def test_every_required_key_has_its_default_in_pulumi_yaml() -> None:
    declared = {key.removeprefix("tidewater:") for key in h.stack_config(None)}
    required = set(k8s_config.declared_keys()) - k8s_config._OPTIONAL_KEYS
    assert required <= declared, sorted(required - declared)


@pulumi.runtime.test
def test_onprem_inference_service_follows_the_model_name() -> pulumi.Output[None]:
    mocks = h.start("onprem", h.stack_config("onprem"))
    component = build_kubernetes_stack(Names("tidewater", "onprem"), served_model=("churn", "0a1b2c3d4e5f6789"))

    def check() -> None:
        (isvc,) = mocks.custom("InferenceService")
        assert isvc.inputs["metadata"]["name"] == "tidewater-onprem-churn"
        (container,) = isvc.inputs["spec"]["predictor"]["containers"]
        storage = {"name": "STORAGE_URI", "value": "s3://tidewater-onprem-artifacts/models/churn/0a1b2c3d4e5f6789/"}
        assert storage in container["env"]
        assert component.outputs["inference_service"] == "tidewater-onprem-churn"

    return h.after_all(component, check)


@pulumi.runtime.test
def test_onprem_platform_stage_has_no_inference_service_before_a_model() -> pulumi.Output[None]:
    mocks = h.start("onprem", h.stack_config("onprem", {"stage": "platform", "champion_model_version": ""}))
    component = build_kubernetes_stack(Names("tidewater", "onprem"))

    def check() -> None:
        assert mocks.custom("InferenceService") == []
        assert "inference_service" not in component.outputs
        assert component.outputs["namespaces"]["serving"] == "tidewater-onprem-serving"  # ready for the model

    return h.after_all(component, check)


@pulumi.runtime.test
def test_the_handoff_runner_is_a_cronjob_of_the_ingestion_account_whose_irsa_role_consumes_the_queue() -> pulumi.Output[
    None
]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        (runner,) = mocks.of_type("kubernetes:batch/v1:CronJob")
        meta, spec = runner.inputs["metadata"], runner.inputs["spec"]
        assert meta["namespace"] == "tidewater-dev-ingestion"
        assert spec["schedule"] == "*/10 * * * *" and spec["concurrencyPolicy"] == "Forbid"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == ["tide", "curate-handoffs", "--stack", "dev"]
        assert pod["priorityClassName"] == "tidewater-dev-ingestion" and pod["restartPolicy"] == "Never"
        (account,) = [
            sa.inputs
            for sa in mocks.of_type("kubernetes:core/v1:ServiceAccount")
            if sa.inputs["metadata"]["name"] == pod["serviceAccountName"]
        ]
        assert account["metadata"]["namespace"] == meta["namespace"]
        irsa = mocks.named("aws:iam/role:Role", "ingestion-irsa")
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(f"/{irsa.name}")
        policy = json.loads(mocks.named("aws:iam/rolePolicy:RolePolicy", "ingestion-access").inputs["policy"])
        consumes = [s for s in policy["Statement"] if "sqs:ReceiveMessage" in s["Action"]]
        assert [s["Resource"] for s in consumes] == [HANDOFF[0]]
        assert "tolerations" not in pod  # CPU work stays off the GPU pool

    return _deploy(None, "dev", check)


@pulumi.runtime.test
def test_no_handoff_runner_off_aws() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, _: Any) -> None:
        jobs = [job.inputs["metadata"]["name"] for job in mocks.of_type("kubernetes:batch/v1:CronJob")]
        assert jobs == [Names("tidewater", "onprem").rollout_ticker]  # the rollout tick only (test_k8s_rollout_ticker)

    return _deploy("onprem", "onprem", check)


def test_a_bad_handoff_schedule_is_named() -> None:
    h.start("dev", h.stack_config(None, {"k8s_handoff_schedule": "every ten minutes"}))
    with pytest.raises(k8s_config.K8sConfigError, match="tidewater:k8s_handoff_schedule"):
        k8s_config.load()
