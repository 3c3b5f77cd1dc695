"""An in-memory fake of the Kubernetes API server's optimistic concurrency, for the rollout store and the CLI.

It answers the calls the traffic function makes through kubernetes.client.CoreV1Api (ConfigMaps, Events) and
CustomObjectsApi (InferenceServices) the way the API server does: every write bumps a cluster-wide
resourceVersion; a replace carrying metadata.resourceVersion that is no longer current is refused with 409
Conflict; a create of an existing name is 409 AlreadyExists; an immutable ConfigMap's data cannot be replaced
(422); a ConfigMap over 1 MiB is refused (422); a write into a namespace that does not exist is 404 with
details.kind "namespaces" while a read of a missing object is 404 with its own kind; list filters by equality
label selectors and pages with limit/continue. Errors are the client's own ApiException, models its own
V1ConfigMap/V1ConfigMapList. Thread-safe (one lock, like etcd's serialised writes).

Other custom objects (PyTorchJobs) are kept by plural: create (409 AlreadyExists on a taken name) and get; a test
sets a job's status with `custom[(plural, namespace, name)]["status"]`, as the operator would.

`fail_call(k, status)` makes the k-th call from now (1-based, any verb) raise, to test partial writes.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.client import V1ConfigMap, V1ConfigMapList, V1ListMeta, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from schemas.manifests import KSERVE_GROUP, KSERVE_PLURAL, KSERVE_VERSION

CONFIG_MAP_LIMIT = 1024 * 1024


def api_error(status: int, reason: str, message: str, kind: str = "", name: str = "") -> ApiException:
    err = ApiException(status=status, reason=reason)
    err.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                           "reason": reason, "details": {"name": name, "kind": kind}, "code": status})  # fmt: skip
    return err


def _selected(labels: dict[str, str], selector: str | None) -> bool:
    for term in (selector or "").split(","):
        if term:
            key, _, value = term.partition("=")
            if labels.get(key) != value:
                return False
    return True


class FakeKubeApi:
    """CoreV1Api + CustomObjectsApi in one object (pass it as both)."""

    def __init__(self, namespaces: tuple[str, ...] = ("ml",)) -> None:
        self._lock = threading.RLock()
        self.namespaces = set(namespaces)
        self.config_maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}  # InferenceServices
        self.custom: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, namespace, name): other kinds
        self.patches: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self._revision = 100
        self._fail: tuple[int, int] | None = None
        self.before_replace: Callable[[], None] | None = None  # a hook run outside the lock (race tests)

    # ------------------------------------------------------------------------------------------ plumbing

    def fail_call(self, k: int, status: int = 500) -> None:
        self._fail = (len(self.calls) + k, status)

    def _call(self, verb: str) -> None:
        self.calls.append(verb)
        if self._fail is not None and len(self.calls) == self._fail[0]:
            status = self._fail[1]
            self._fail = None
            raise api_error(status, "InternalError", f"injected failure of {verb}")

    def _bump(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            raise api_error(404, "NotFound", f'namespaces "{namespace}" not found', "namespaces", namespace)

    @staticmethod
    def _model(obj: dict[str, Any]) -> V1ConfigMap:
        meta = obj["metadata"]
        return V1ConfigMap(
            api_version="v1", kind="ConfigMap", data=copy.deepcopy(obj.get("data")), immutable=obj.get("immutable"),
            metadata=V1ObjectMeta(name=meta["name"], namespace=meta["namespace"], labels=dict(meta.get("labels") or {}),
                                  resource_version=meta["resourceVersion"]),
        )  # fmt: skip

    @staticmethod
    def _check_size(body: dict[str, Any]) -> None:
        size = sum(len(k) + len(v.encode()) for k, v in (body.get("data") or {}).items())
        if size > CONFIG_MAP_LIMIT:
            raise api_error(
                422, "Invalid", f"ConfigMap is invalid: []: Too long: must have at most {CONFIG_MAP_LIMIT} bytes"
            )

    # ------------------------------------------------------------------------------------------ ConfigMaps

    def read_namespaced_config_map(self, name: str, namespace: str) -> V1ConfigMap:
        with self._lock:
            self._call("read")
            obj = self.config_maps.get((namespace, name))
            if obj is None:
                raise api_error(404, "NotFound", f'configmaps "{name}" not found', "configmaps", name)
            return self._model(obj)

    def create_namespaced_config_map(self, namespace: str, body: dict[str, Any]) -> V1ConfigMap:
        with self._lock:
            self._call("create")
            self._namespace(namespace)
            name = body["metadata"]["name"]
            if (namespace, name) in self.config_maps:
                raise api_error(409, "AlreadyExists", f'configmaps "{name}" already exists', "configmaps", name)
            if body["metadata"].get("resourceVersion"):
                raise api_error(400, "BadRequest", "resourceVersion should not be set on objects to be created")
            self._check_size(body)
            obj = copy.deepcopy(body)
            obj["metadata"]["namespace"] = namespace
            obj["metadata"]["resourceVersion"] = self._bump()
            self.config_maps[(namespace, name)] = obj
            return self._model(obj)

    def replace_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any]) -> V1ConfigMap:
        if self.before_replace is not None:
            self.before_replace()
        with self._lock:
            self._call("replace")
            current = self.config_maps.get((namespace, name))
            if current is None:
                raise api_error(404, "NotFound", f'configmaps "{name}" not found', "configmaps", name)
            wanted = body["metadata"].get("resourceVersion")
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                raise api_error(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on configmaps "{name}": the object has been modified; please '
                    "apply your changes to the latest version and try again", "configmaps", name,
                )  # fmt: skip
            if current.get("immutable") and body.get("data") != current.get("data"):
                raise api_error(422, "Invalid", f'ConfigMap "{name}" is invalid: data: Forbidden: field is immutable')
            self._check_size(body)
            obj = copy.deepcopy(body)
            obj["metadata"]["namespace"] = namespace
            obj["metadata"]["resourceVersion"] = self._bump()
            self.config_maps[(namespace, name)] = obj
            return self._model(obj)

    def list_namespaced_config_map(
        self, namespace: str, label_selector: str | None = None, limit: int | None = None, _continue: str | None = None
    ) -> V1ConfigMapList:
        with self._lock:
            self._call("list")
            names = sorted(
                n
                for (ns, n), o in self.config_maps.items()
                if ns == namespace and _selected(o["metadata"].get("labels") or {}, label_selector)
            )
            start = int(_continue) if _continue else 0
            end = len(names) if not limit else start + limit
            page = [self._model(self.config_maps[(namespace, n)]) for n in names[start:end]]
            token = str(end) if end < len(names) else None
            return V1ConfigMapList(items=page, metadata=V1ListMeta(_continue=token))

    # ------------------------------------------------------------------------------------------ Events

    def create_namespaced_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._call("create-event")
            self._namespace(namespace)
            name = body["metadata"]["name"]
            if (namespace, name) in self.events:
                raise api_error(409, "AlreadyExists", f'events "{name}" already exists', "events", name)
            self.events[(namespace, name)] = copy.deepcopy(body)
            return body

    # ------------------------------------------------------------------------------------------ InferenceServices

    def add_inference_service(self, namespace: str, name: str, percent: int | None = None) -> None:
        predictor = {} if percent is None else {"canaryTrafficPercent": percent}
        self.objects[(namespace, name)] = {
            "apiVersion": f"{KSERVE_GROUP}/{KSERVE_VERSION}", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
            "spec": {"predictor": predictor},
        }  # fmt: skip

    def _isvc(self, group: str, version: str, namespace: str, plural: str, name: str) -> dict[str, Any]:
        assert (group, version, plural) == (KSERVE_GROUP, KSERVE_VERSION, KSERVE_PLURAL)
        obj = self.objects.get((namespace, name))
        if obj is None:
            raise api_error(404, "NotFound", f'inferenceservices.serving.kserve.io "{name}" not found',
                            "inferenceservices", name)  # fmt: skip
        return obj

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
        with self._lock:
            if plural != KSERVE_PLURAL:
                self._call(f"get-{plural}")
                obj = self.custom.get((plural, namespace, name))
                if obj is None:
                    raise api_error(404, "NotFound", f'{plural}.{group} "{name}" not found', plural, name)
                return copy.deepcopy(obj)
            self._call("get-isvc")
            return copy.deepcopy(self._isvc(group, version, namespace, plural, name))

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> Any:
        with self._lock:
            self._call(f"create-{plural}")
            self._namespace(namespace)
            name = body["metadata"]["name"]
            if (plural, namespace, name) in self.custom:
                raise api_error(409, "AlreadyExists", f'{plural}.{group} "{name}" already exists', plural, name)
            obj = copy.deepcopy(body)
            obj["metadata"].update(namespace=namespace, uid=f"uid-{name}", resourceVersion=self._bump())
            self.custom[(plural, namespace, name)] = obj
            return copy.deepcopy(obj)

    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: dict[str, Any]
    ) -> Any:
        with self._lock:
            self._call("patch-isvc")
            obj = self._isvc(group, version, namespace, plural, name)
            self.patches.append(copy.deepcopy(body))
            obj["spec"].setdefault("predictor", {}).update(body["spec"]["predictor"])
            return copy.deepcopy(obj)

    def percent(self, namespace: str, name: str) -> int | None:
        value = self.objects[(namespace, name)]["spec"]["predictor"].get("canaryTrafficPercent")
        return None if value is None else int(value)
