"""`tide ingest`, `tide train`, `tide deploy` end to end on the embedded cloud; `tide --help` stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.embedded_cloud import EmbeddedCloud
from tests.jobs.helpers import upload_curated, write_curated


def test_help_lists_the_job_commands_without_heavy_imports() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert {"ingest", "train", "deploy"} <= set(result.output.split())
    heavy = "('torch', 'dask', 'distributed', 'sagemaker')"
    probe = f"import sys, jobs.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ingest_reports_missing_curated_data_clearly(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    args = ["ingest", "--curated", f"file://{tmp_path}/c", "--datasets", f"file://{tmp_path}/d", "--in-process",
            "--workers", "1", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "no curated Parquet under" in result.output


@pytest.mark.slow
def test_ingest_train_deploy_on_the_embedded_cloud(tmp_path: Path, cloud: EmbeddedCloud) -> None:
    s3 = cloud.client("s3")
    for zone in ("curated", "datasets", "artifacts", "captures"):
        s3.create_bucket(Bucket=f"tidewater-dev-{zone}")
    write_curated(tmp_path / "curated", rows=400)
    upload_curated(s3, "tidewater-dev-curated", tmp_path / "curated")  # partitions and commit manifests
    runner = CliRunner()

    args = ["ingest", "--workers", "1", "--rows-per-shard", "300", "--no-progress"]
    ingested = runner.invoke(main, args)
    assert ingested.exit_code == 0, ingested.output
    dataset = json.loads(ingested.output.strip().splitlines()[-1])
    assert dataset["manifest"].startswith("s3://tidewater-dev-datasets/transactions/") and not dataset["reused"]

    trained = runner.invoke(main, [
        "train", "--manifest", dataset["manifest"], "--output", "s3://tidewater-dev-artifacts", "--procs-per-node", "1",
        "--steps", "6", "--checkpoint-every", "3", "--max-restarts", "0", "--cache-dir", str(tmp_path / "cache"),
    ])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    model_url = json.loads(trained.output.strip().splitlines()[-1])["model_url"]
    metadata_key = model_url.removeprefix("s3://tidewater-dev-artifacts/") + "/metadata.json"
    metadata = json.loads(s3.get_object(Bucket="tidewater-dev-artifacts", Key=metadata_key)["Body"].read())
    assert metadata["dataset"]["version"] == dataset["version"] and metadata["world_size"] == 1

    deployed = runner.invoke(main, [
        "deploy", "--model-url", model_url, "--image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1",
        "--role", "arn:aws:iam::123456789012:role/serve",
    ])  # fmt: skip
    assert deployed.exit_code == 0, deployed.output
    result = json.loads(deployed.output.strip().splitlines()[-1])
    assert result["endpoint"] == "tidewater-dev-fraud" and result["created_endpoint"]
    config = cloud.client("sagemaker").describe_endpoint_config(EndpointConfigName=result["endpoint_config"])
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://tidewater-dev-captures/datacapture"
    assert config["ProductionVariants"][0]["ModelName"] == f"fraud-{metadata['version']}"
