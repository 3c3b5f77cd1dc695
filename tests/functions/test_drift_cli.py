import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from functions.drift import captures
from jobs.cli import main
from jobs.datagen import Shift, generate, to_bytes
from schemas.contract import load_contract
from schemas.naming import Names, capture_hour_prefix

DAY = dt.date(2026, 11, 1)
SHIFT = Shift(covariate={"amount": 0.3}, categories={"channel": {"online": 5.0}})


def test_baseline_then_compare_files(tmp_path: Path) -> None:
    for i in range(2):
        pq.write_table(generate(5000, DAY, seed=i), tmp_path / f"part-{i}.parquet")
    (tmp_path / "current.csv").write_bytes(to_bytes(generate(5000, DAY, seed=9, shift=SHIFT), "csv"))
    runner = CliRunner()
    made = runner.invoke(
        main,
        [
            "drift",
            "baseline",
            "--contract",
            "transactions",
            "--data",
            str(tmp_path / "part-0.parquet"),
            "--data",
            str(tmp_path / "part-1.parquet"),
            "--out",
            str(tmp_path / "p.json"),
        ],
    )
    assert made.exit_code == 0, made.output
    assert "profile of 10000 rows" in made.output
    result = runner.invoke(
        main,
        [
            "drift",
            "compare",
            "--baseline",
            str(tmp_path / "p.json"),
            "--data",
            str(tmp_path / "current.csv"),
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 3, result.output  # drift found
    assert result.output.startswith("verdict: drift")
    assert {"amount", "channel"} <= set(json.loads((tmp_path / "r.json").read_text())["drifted"])


def test_local_check_on_captures_raises_the_alarm_after_two_windows(tmp_path: Path) -> None:
    contract = load_contract("transactions")
    pq.write_table(generate(10_000, DAY, seed=1), tmp_path / "ref.parquet")
    runner = CliRunner()
    runner.invoke(
        main,
        [
            "drift",
            "baseline",
            "--contract",
            "transactions",
            "--data",
            str(tmp_path / "ref.parquet"),
            "--out",
            str(tmp_path / "p.json"),
        ],
    )
    names = Names("tidewater", "local")
    for hour in (10, 11):
        rows = generate(2000, DAY, seed=hour, shift=SHIFT).to_pylist()
        when = dt.datetime(2026, 11, 1, hour, tzinfo=dt.UTC)
        records = [
            captures.sagemaker_record(rows[i : i + 20], [0.5] * 20, contract.features, inference_time=when)
            for i in range(0, len(rows), 20)
        ]
        path = tmp_path / "root" / names.bucket("captures") / capture_hour_prefix("ep", "AllTraffic", when) / "c.jsonl"
        path.parent.mkdir(parents=True)
        path.write_bytes(captures.jsonl(records))
    outputs = [
        runner.invoke(
            main,
            [
                "drift",
                "check",
                "--baseline",
                str(tmp_path / "p.json"),
                "--root",
                str(tmp_path / "root"),
                "--endpoint",
                "ep",
                "--window-end",
                f"2026-11-01T{end}",
            ],
        )
        for end in ("11", "12")
    ]
    assert all(o.exit_code == 3 for o in outputs), [o.output for o in outputs]  # both windows drift
    assert "event: DriftDetected" not in outputs[0].output
    assert "event: DriftDetected" in outputs[1].output
    assert "captures: 100 records, 2000 rows" in outputs[1].output
    reports = tmp_path / "root" / names.bucket("reports") / "drift" / "ep" / "2026" / "11" / "01"
    assert (reports / "12" / "report.html").read_text().count("<svg") >= 2
