import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from jobs.cli import main


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("local", "ingest", "curate-handoffs", "train", "deploy", "drift", "rollout", "build-artifacts"):
        assert command in result.output


def test_reduced_lifecycle_rehearsal_runs_end_to_end(tmp_path: Path) -> None:
    """`make demo`'s job on less data and fewer steps, in its own process as `tide local` runs (the ingest
    handler builds its clients at import, so it must not share this process's earlier imports)."""
    workdir = tmp_path / "local"
    argv = [sys.executable, "-m", "jobs.cli", "local", "--workdir", str(workdir), "--rows-per-day", "3000",
            "--train-steps", "20", "--json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert json.loads(done.stdout) == summary  # --json: the summary on stdout, the progress on stderr
    assert summary["files"]["raw files"] == 6
    assert summary["files"]["quarantined files"] == 1 and summary["files"]["curated files"] == 5
    assert [d["verdict"] for d in summary["drift"]] == ["no_drift", "drift", "drift"]
    assert [r["decision"] for r in summary["rollouts"]][:2] == ["promote", "rollback"]
    assert summary["events"]["DriftDetected"] == 1
    # The uncompressed day and the three days' label files (50 bytes a row is the scaled hand-off size) went to
    # the batch job, and were curated.
    assert summary["events"]["LargeFileHandedOff"] == 4
    assert (workdir / "report.html").read_text().startswith("<!doctype html>")
    # Every request was scored over HTTP by a predictor process; the numbers are what the predictors measured.
    served = {v["model"]: v for v in summary["serving"]}
    assert set(served) == {"v1", "v2", "v3", "v2-distilled"} and all(v["requests"] > 0 for v in served.values())
    assert served["v3"]["error_rate"] > served["v2"]["error_rate"]  # the injected fault, seen by the server
    assert all(0 < v["p99_ms"] < 1000 for v in served.values())
    assert summary["shadow"]["pairs"] > 0  # the champion's predictor mirrored to v2's and logged the pairs
    # Labels land two days late through the ingest gate; each served day's quality is measured once they have.
    quality = {q["window"]: q for q in summary["quality"]}
    assert set(quality) == {"2026-11-03", "2026-11-04", "2026-11-05"}
    assert all(q["labelled"] == q["predictions"] > 0 and q["verdict"] in ("ok", "degraded") for q in quality.values())
    # The console: no raw JSON from the training ranks, variants by model version, no leftover run folders.
    assert '{"model_url"' not in done.stderr
    assert re.search(r"weights \{'v1': [0-9.]+, 'v2': [0-9.]+\}", done.stderr), done.stderr
    assert not list(workdir.glob("tide-train-*"))
    # The report's pictures survive the embedded cloud: each drift check's figures, each rollout's minutes.
    for check in summary["drift"]:
        report = json.loads((workdir / "drift" / check["window"] / "report.json").read_text())
        assert report["figures"] and all((workdir / "drift" / check["window"] / k).is_file()
                                         for k in report["figures"].values())  # fmt: skip
    timeline = json.loads((workdir / "timeline.json").read_text())
    assert [r["challenger"] for r in timeline["rollouts"]] == ["v2", "v3", "v2-distilled"]
    assert all(len(m["Invocations"]) >= 1 for r in timeline["rollouts"] for m in r["metrics"].values())
    _assert_compressed_challenger(summary, workdir, done.stderr)


def _assert_compressed_challenger(summary: dict[str, Any], workdir: Path, console: str) -> None:
    """v2 compressed by `tide compress`, shadowed, canaried on 5XX, latency and quality: the decision follows the
    guardrails' verdicts, and the savings printed and reported are this run's own numbers."""
    c = summary["compression"]
    assert (c["champion"], c["compressed"], c["method"]) == ("v2", "v2-distilled", "distilled")
    rollout = summary["rollouts"][-1]
    assert rollout["challenger"] == "v2-distilled" and rollout["decision"] == c["decision"]
    verdicts = {name: g["verdict"] for name, g in c["guardrails"].items()}
    assert set(verdicts) == {"error_rate", "latency", "quality"}
    if c["decision"] == "promote":  # only when no worse on every guardrail
        assert set(verdicts.values()) == {"non_inferior"}, verdicts
    else:  # rolled back: significantly worse on a guardrail that the reason names
        assert c["decision"] == "rollback" and any(v == "harm" and n in c["reason"] for n, v in verdicts.items())
    # The quality guardrail read exactly the pairs the shadow phase logged for this challenger.
    assert c["guardrails"]["quality"]["pairs"] == c["shadow"]["pairs"] > 0
    # Size: the archive each predictor loaded (downloaded as SageMaker does) is the size the summary reports.
    variant = {v["model"]: v["variant"] for v in summary["serving"]}
    for arm, model in (("champion", "v2"), ("compressed", "v2-distilled")):
        loaded = workdir / "serving" / "models" / variant[model] / "model.tar.gz"
        assert loaded.stat().st_size == c["archive_bytes"][arm]
    assert c["archive_bytes"]["compressed"] < c["archive_bytes"]["champion"]
    assert c["model_pt_bytes"]["compressed"] < c["model_pt_bytes"]["champion"]
    latency = c["latency"]
    assert all(0 < latency[arm]["p50_ms"] <= latency[arm]["p99_ms"] and latency[arm]["requests"] > 0
               for arm in ("champion", "compressed"))  # fmt: skip
    assert 0.5 < c["auc"]["compressed"] <= 1.0 and 0.5 < c["auc"]["champion"] <= 1.0
    # The console and the report say it in words, with these numbers.
    kib = {arm: f"{n / 1024:.1f} KiB" for arm, n in c["archive_bytes"].items()}
    archive = f"model.tar.gz {kib['compressed']} vs {kib['champion']}"
    p50 = f"p50 {latency['compressed']['p50_ms']:.2f} ms vs {latency['champion']['p50_ms']:.2f} ms"
    auc = f"validation AUC {c['auc']['compressed']:.4f} vs {c['auc']['champion']:.4f}"
    shadow = f"mean score difference {c['shadow']['mean_score_difference']:.4f}"
    report = (workdir / "report.html").read_text()
    for words in (archive, p50, auc, shadow):
        assert words in console and words in report, words
    assert 'id="compression"' in report and f"{c['compressed']} ({c['method']} of v2): {c['decision']}" in report
