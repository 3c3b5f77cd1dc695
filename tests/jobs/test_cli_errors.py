"""A `tide` mistake is one line naming the problem and a non-zero exit, never a traceback (through CliRunner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.cli import main
from jobs.embedded_cloud import EmbeddedCloud
from jobs.launch.base import JobSpec
from jobs.launch.local import LaunchError, LocalTorchrun
from jobs.train.config import TrainConfig


def one_line_error(result: Result, *needles: str, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_aws_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No credentials, no region, no config files, no instance metadata: a fresh laptop. The SDKs' caches
    (boto3's default session, s3fs's filesystem instances) are emptied before and after, so no client built
    here outlives the test (a later test would inherit its missing credentials)."""
    import boto3
    import s3fs

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    s3fs.S3FileSystem.clear_instance_cache()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield
    s3fs.S3FileSystem.clear_instance_cache()


# --- tide itself -------------------------------------------------------------------------------------------


def test_version_and_exit_codes_in_help() -> None:
    version = CliRunner().invoke(main, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("tide, version ")
    helped = CliRunner().invoke(main, ["--help"])
    assert helped.exit_code == 0
    for line in ("0  success", "1  error", "2  usage error", "3  drift found"):
        assert line in helped.output
    assert CliRunner().invoke(main, ["drift", "compare", "--nope"]).exit_code == 2  # usage


# --- rollout.yaml ----------------------------------------------------------------------------------------


def test_malformed_rollout_yaml_is_one_line_with_its_position(tmp_path: Path) -> None:
    (tmp_path / "rollout.yaml").write_text("endpoint: fraud\nchampion: [a, b\n")
    result = CliRunner().invoke(main, ["rollout", "start", str(tmp_path / "rollout.yaml")])
    one_line_error(result, "rollout.yaml: not valid YAML (line 3")


def test_a_rollout_yaml_mistake_is_named_before_any_client_needs_a_region(tmp_path: Path, no_aws_setup: None) -> None:
    (tmp_path / "rollout.yaml").write_text(yaml.safe_dump({"endpoint": "fraud", "champion": "a"}))
    result = CliRunner().invoke(main, ["rollout", "start", str(tmp_path / "rollout.yaml")])
    line = one_line_error(result, "rollout.yaml: invalid rollout config", "challenger")
    assert "region" not in line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), st.text(alphabet=":-[]{}\"' \n\tab1", max_size=60)))
def test_any_rollout_file_is_a_result_or_one_line(tmp_path: Path, no_aws_setup: None, text: str) -> None:
    (tmp_path / "rollout.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["rollout", "start", str(tmp_path / "rollout.yaml")])
    one_line_error(result, "rollout.yaml" if "region" not in result.output else "region")


def test_a_valid_rollout_without_a_region_names_the_missing_region(tmp_path: Path, no_aws_setup: None) -> None:
    config = {"endpoint": "fraud", "champion": "a", "challenger": "b",
              "strategy": {"kind": "canary", "steps": [0.1, 1.0], "bake_minutes": 5}}  # fmt: skip
    (tmp_path / "rollout.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["rollout", "start", str(tmp_path / "rollout.yaml")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "region" in result.output.lower()


# --- ingest / deploy -------------------------------------------------------------------------------------------


def test_ingest_for_a_stack_that_is_not_deployed(cloud: EmbeddedCloud) -> None:
    args = ["ingest", "--stack", "nope", "--in-process", "--workers", "1", "--no-progress"]
    one_line_error(CliRunner().invoke(main, args), "tidewater-nope-curated", "is stack 'nope' deployed?")


def test_deploy_without_credentials(no_aws_setup: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    args = ["deploy", "--model-url", "s3://tidewater-dev-artifacts/models/fraud/v1", "--image", "img", "--role", "r"]
    one_line_error(CliRunner().invoke(main, args), "no AWS credentials found", "AWS_PROFILE")


# --- train ---------------------------------------------------------------------------------------------------


def test_train_with_a_missing_manifest_fails_before_launching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("no rank may be launched for a missing manifest")

    monkeypatch.setattr(LocalTorchrun, "launch", refuse)
    args = ["train", "--manifest", f"file://{tmp_path}/nope/manifest.json", "--output", f"file://{tmp_path}/out"]
    one_line_error(CliRunner().invoke(main, args), "manifest.json does not exist", "tide ingest")
    (tmp_path / "m.json").write_text(json.dumps({"dataset": "transactions", "version": "x", "shards": []}))
    args[2] = f"file://{tmp_path}/m.json"
    one_line_error(CliRunner().invoke(main, args), "lacks contract")
    (tmp_path / "m.json").write_text(json.dumps({"dataset": "d", "version": "x", "shards": [], "contract": "d/v1"}))
    one_line_error(CliRunner().invoke(main, args), "no contract for 'd'")


@pytest.mark.slow
def test_train_failure_a_restart_cannot_fix_is_not_restarted(tmp_path: Path) -> None:
    """Real torchrun: the manifest passes the pre-check but lists no shards; each rank fails the same way."""
    manifest = {"dataset": "transactions", "version": "x", "contract": "transactions/v1", "shards": []}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    args = ["train", "--manifest", f"file://{tmp_path}/manifest.json", "--output", f"file://{tmp_path}/out",
            "--procs-per-node", "1", "--max-restarts", "3", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    line = one_line_error(CliRunner().invoke(main, args), "lists no train shards", "not restarted")
    log = Path(line.rsplit("log: ", 1)[1].rstrip(")"))
    text = log.read_text()  # every attempt appends to the one log: one torchrun run failed, none followed
    assert "lists no train shards" in text and text.count("torch.distributed.elastic.multiprocessing.errors") == 1


class ScriptedRunner:
    """Exit statuses in order; optionally writes the permanent-failure file the way a rank does."""

    def __init__(self, codes: list[int], permanent: bool = False) -> None:
        self.codes, self.permanent, self.attempts = codes, permanent, 0

    def __call__(self, argv: object, env: dict[str, str], log: Path) -> int:
        self.attempts += 1
        assert env["TIDE_ATTEMPT"] == str(self.attempts - 1)
        if self.permanent:
            Path(env["TIDE_PERMANENT_FAILURE_FILE"]).write_text("rank 0: the manifest lists no train shards\n")
        return self.codes[self.attempts - 1]


def _config(tmp_path: Path) -> TrainConfig:
    return TrainConfig(manifest_url=f"file://{tmp_path}/m.json", output_url=f"file://{tmp_path}/out", steps=5)


def test_launcher_restarts_a_transient_failure_and_cleans_its_folder(tmp_path: Path) -> None:
    runner = ScriptedRunner([1, 1, 0])
    LocalTorchrun(runner, workdir=tmp_path).launch(_config(tmp_path), JobSpec(name="j", max_restarts=3))
    assert runner.attempts == 3
    assert not list(tmp_path.glob("tide-train-*"))  # removed after success


def test_launcher_does_not_restart_a_permanent_failure(tmp_path: Path) -> None:
    runner = ScriptedRunner([1, 1, 1, 1], permanent=True)
    with pytest.raises(LaunchError, match=r"no train shards .*not restarted"):
        LocalTorchrun(runner, workdir=tmp_path).launch(_config(tmp_path), JobSpec(name="j", max_restarts=3))
    assert runner.attempts == 1
    assert list(tmp_path.glob("tide-train-*"))  # kept: it holds the log the error names


# --- drift baseline --------------------------------------------------------------------------------------------


def _baseline(*args: str) -> Result:
    return CliRunner().invoke(main, ["drift", "baseline", *args])


def test_drift_baseline_unknown_contract(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / "d.parquet")
    result = _baseline("--contract", "nope", "--data", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "p.json"))
    one_line_error(result, "no contract for 'nope'", "known datasets: labels, transactions")


def test_drift_baseline_empty_parquet(tmp_path: Path) -> None:
    (tmp_path / "zero.parquet").write_bytes(b"")
    out = str(tmp_path / "p.json")
    one_line_error(_baseline("--data", str(tmp_path / "zero.parquet"), "--out", out), "zero.parquet: cannot be read")
    pq.write_table(pa.table({"x": pa.array([], pa.float64())}), tmp_path / "norows.parquet")
    one_line_error(_baseline("--data", str(tmp_path / "norows.parquet"), "--out", out), "no rows")


def test_drift_baseline_missing_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"amount": [1.0, 2.0]}), tmp_path / "d.parquet")
    out = str(tmp_path / "p.json")
    result = _baseline("--contract", "transactions", "--data", str(tmp_path / "d.parquet"), "--out", out)
    one_line_error(result, "d.parquet lacks column(s)", "channel")
    result = _baseline("--data", str(tmp_path / "d.parquet"), "--column", "amount", "--column", "nope", "--out", out)
    one_line_error(result, "lacks column(s) nope")
    result = _baseline("--data", str(tmp_path / "d.parquet"), "--kind", "amount=ordinal", "--out", out)
    assert result.exit_code == 2 and "Traceback" not in result.output  # a usage error: click's usage lines
    assert result.output.strip().splitlines()[-1].startswith("Error: Invalid value for --kind: 'amount=ordinal'")


def test_drift_baseline_csv_with_an_all_empty_numeric_column_profiles_it_as_missing(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("amount,score,channel\n" + "".join(f"{i},,pos\n" for i in range(600)))
    result = _baseline("--data", str(tmp_path / "d.csv"), "--out", str(tmp_path / "p.json"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["kinds"] == {"amount": "numerical", "score": "numerical", "channel": "categorical"}
    score = json.loads((tmp_path / "p.json").read_text())["features"]["score"]
    assert score["count"] == 0 and score["missing"] == 600


def test_a_contract_typo_is_the_unknown_key_first_with_a_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import schemas.contract

    text = (schemas.contract.CONTRACTS_DIR / "transactions" / "v1.yaml").read_text()
    assert "\ncolumns:" in text
    (tmp_path / "contracts" / "transactions").mkdir(parents=True)
    (tmp_path / "contracts" / "transactions" / "v1.yaml").write_text(text.replace("\ncolumns:", "\ncolums:"))
    original = schemas.contract.load_contract
    monkeypatch.setattr(
        schemas.contract,
        "load_contract",
        lambda dataset, version=None: original(dataset, version, tmp_path / "contracts"),
    )
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / "d.parquet")
    result = _baseline(
        "--contract", "transactions", "--data", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "p")
    )
    one_line_error(result, "v1.yaml: colums: unknown field; did you mean 'columns'?")
