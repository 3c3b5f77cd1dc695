"""What the rehearsal's report shows, taken out of the embedded cloud before it stops.

- every drift check's report folder (report.html, report.json, one SVG histogram per feature) is copied to
  <workdir>/drift/<window>/, so the pictures survive the demo;
- every rollout's audit trail (the rollout table) and its per-minute, per-variant AWS/SageMaker metrics
  (requests, 5XX errors, model latency) from CloudWatch.
The result is plain JSON (<workdir>/timeline.json) for jobs.rehearsal.report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.naming import ROLLOUT_AUDIT_PREFIX, ROLLOUT_TABLE_KEYS, Names

Client = Callable[[str], Any]  # service name -> boto3 client of the embedded cloud
NAMESPACE = "AWS/SageMaker"  # as functions.traffic.adapters.cloudwatch (not imported: no traffic imports here)
METRICS = (("Invocations", "Sum"), ("Invocation5XXErrors", "Sum"), ("ModelLatency", "Average"))


def snapshot(client: Client, names: Names, summary: Any, workdir: Path) -> dict[str, Any]:
    timeline = {
        "models": learning_curves(client("s3"), names.bucket("artifacts"), summary.models),
        "drift": [copy_drift_report(client("s3"), check, workdir) for check in summary.drift],
        "rollouts": rollouts(client, names, summary.rollouts),
    }
    (workdir / "timeline.json").write_text(json.dumps(timeline, indent=1, default=str))
    return timeline


def copy_drift_report(s3: Any, check: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Copy one check's report folder out of S3; the features with their figure paths (relative to workdir)."""
    bucket, _, key = str(check["report"]).removeprefix("s3://").partition("/")
    prefix = key.rsplit("/", 1)[0] + "/"
    target = workdir / "drift" / str(check["window"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            path = target / obj["Key"][len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    report = json.loads((target / "report.json").read_text())
    figures = report.get("figures", {})
    features = [
        {
            "name": f["name"], "verdict": f["verdict"], "reasons": f.get("reason_codes", []), "test": f["test"],
            "effect": f["effect"], "missing": [f["missing_rate_reference"], f["missing_rate_current"]],
            "figure": str((target / figures[f["name"]]).relative_to(workdir)) if f["name"] in figures else None,
        }
        for f in report["features"]
    ]  # fmt: skip
    return {**check, "html": str((target / "report.html").relative_to(workdir)), "rows": report["rows_current"],
            "features": features}  # fmt: skip


def learning_curves(s3: Any, bucket: str, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each trained model's loss curve and validation metrics, from the metadata.json training wrote."""
    labels = {str(m["version"]): str(m["model"]) for m in models}
    curves = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="models/"):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/metadata.json"):
                continue
            metadata = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            label = labels.get(str(metadata.get("version")))
            if label is not None and metadata.get("history"):
                curves.append({"model": label, "history": metadata["history"], "metrics": metadata["metrics"]})
    return sorted(curves, key=lambda c: c["model"])


def audit_trails(dynamodb: Any, table: str) -> dict[str, list[dict[str, Any]]]:
    """rollout id -> its decisions in order, from the rollout table's audit items."""
    _, sk = ROLLOUT_TABLE_KEYS
    trails: dict[str, list[dict[str, Any]]] = {}
    kwargs: dict[str, Any] = {
        "TableName": table, "FilterExpression": f"begins_with({sk}, :p)",
        "ExpressionAttributeValues": {":p": {"S": ROLLOUT_AUDIT_PREFIX}},
    }  # fmt: skip
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            record = json.loads(item["record"]["S"])
            trails.setdefault(str(record["rollout_id"]), []).append(record)
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {rid: sorted(records, key=lambda r: int(r["decision"])) for rid, records in trails.items()}


def minute_metrics(
    cloudwatch: Any, endpoint: str, variants: list[str], start: dt.datetime, end: dt.datetime
) -> dict[str, dict[str, dict[str, float]]]:
    """variant -> metric -> {ISO minute: value} for the rollout's minutes."""
    queries = [
        {
            "Id": f"m{i}_{j}", "ReturnData": True,
            "MetricStat": {"Period": 60, "Stat": stat, "Metric": {
                "Namespace": NAMESPACE, "MetricName": metric,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
            }},
        }
        for i, variant in enumerate(variants)
        for j, (metric, stat) in enumerate(METRICS)
    ]  # fmt: skip
    out: dict[str, dict[str, dict[str, float]]] = {v: {m: {} for m, _ in METRICS} for v in variants}
    kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
    while True:
        page = cloudwatch.get_metric_data(**kwargs)
        for result in page["MetricDataResults"]:
            i, j = (int(n) for n in result["Id"][1:].split("_"))
            series = out[variants[i]][METRICS[j][0]]
            for when, value in zip(result["Timestamps"], result["Values"], strict=True):
                series[when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")] = float(value)
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


def rollouts(client: Client, names: Names, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    trails = audit_trails(client("dynamodb"), names.rollout_table)
    out = []
    for summary in summaries:
        trail = trails.get(str(summary.get("rollout_id")), [])
        if not trail:  # said in the report, not dropped: the rehearsal did not record which rollout it was
            missing = f"no audit trail for rollout id {summary.get('rollout_id')!r} in {names.rollout_table}"
            out.append({**{k: summary[k] for k in ("challenger", "decision", "minutes", "reason")}, "missing": missing})
            continue
        variants = sorted({v for record in trail for v in record["weights"]})
        end = dt.datetime.fromisoformat(trail[-1]["at"])
        start = end - dt.timedelta(minutes=int(summary["minutes"]))  # the first minute of traffic it judged
        endpoint = str(summary.get("endpoint") or names.endpoint("fraud"))
        out.append({
            **{k: summary[k] for k in ("challenger", "decision", "minutes", "reason")},
            "labels": summary.get("variants", {}), "start": start.isoformat(), "trail": trail,
            "metrics": minute_metrics(client("cloudwatch"), endpoint, variants, start, end),
        })  # fmt: skip
    return out
