"""Drift check vs Evidently's DataDriftPreset on the same data, plus the claims too slow for the test suite.

Run: python -m benchmarks drift     (or python -m benchmarks.bench_drift [--skip-evidently] [--null-windows N])

1. Data: 1M reference + 1M current rows of the wide synthetic dataset (20 numerical + 5 categorical;
   jobs.drift_synthetic), current shifted by 0.1 sd on x03, x07, x15 and +1 pp on c1/travel; Parquet files.
2. Ours: the baseline profile is built once (timed separately); then `tide drift compare` runs in a fresh
   interpreter (wall time includes interpreter start, imports, reading the current Parquet, profiling it and
   the decision; peak RSS of that process from wait4).
3. Evidently: a separate venv (.tide/bench-venv, `pip install evidently pyarrow`: evidently needs pandas<3,
   the project pins pandas 3) runs DataDriftPreset on the same Parquet files in a fresh interpreter; its wall
   time, the time of the report alone, and its peak RSS are reported.
4. Claims: detection at 1M rows (wide + transactions from jobs.datagen), the dataset-level false-alarm rate
   over N seeded no-shift windows (default 200, 100k rows each), handler cold import + init time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".tide" / "bench-drift"
VENV = ROOT / ".tide" / "bench-venv"
ROWS = 1_000_000
SHIFTED = ("x03", "x07", "x15")


def run_measured(cmd: list[str], timeout: float = 1800) -> tuple[float, float, str]:
    """(wall seconds, peak RSS GiB, stdout) of a child process, measured with wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return float("nan"), float("nan"), out + "\n[timed out]"
    wall = time.perf_counter() - start
    # communicate() already reaped the child; its rusage is in RUSAGE_CHILDREN only as a max over children,
    # so each measured command runs under a tiny wrapper that reports its own child's maxrss via wait4.
    return wall, float("nan"), out


_WRAPPER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    t = time.perf_counter()
    p = subprocess.Popen(sys.argv[1:])
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    print(f"@@measure wall={wall:.4f} maxrss_kb={usage.ru_maxrss} status={os.waitstatus_to_exitcode(status)}")
    """
)


def measure(cmd: list[str], timeout: float = 1800) -> tuple[float, float, str]:
    _, _, out = run_measured([sys.executable, "-c", _WRAPPER, *cmd], timeout)
    line = next((x for x in out.splitlines() if x.startswith("@@measure")), None)
    if line is None:
        return float("nan"), float("nan"), out
    fields = dict(item.split("=") for item in line.split()[1:])
    body = "\n".join(x for x in out.splitlines() if not x.startswith("@@measure"))
    if fields["status"] != "0":
        raise SystemExit(f"{cmd} failed:\n{body}")
    return float(fields["wall"]), int(fields["maxrss_kb"]) / 2**20, body


def make_data() -> tuple[Path, Path, Path]:
    import pyarrow.parquet as pq

    from jobs.drift_synthetic import WideShift, generate_wide, to_table
    from schemas.profile import ProfileBuilder

    from jobs.drift_synthetic import wide_contract

    WORK.mkdir(parents=True, exist_ok=True)
    ref, cur, prof = WORK / "reference.parquet", WORK / "current.parquet", WORK / "profile.json"
    shift = WideShift(covariate={n: 0.1 for n in SHIFTED}, categories={"c1": {"travel": 1.0}})
    if not ref.exists():
        pq.write_table(to_table(generate_wide(ROWS, seed=1)), ref)
    if not cur.exists():
        pq.write_table(to_table(generate_wide(ROWS, seed=2, shift=shift)), cur)
    t = time.perf_counter()
    table = pq.read_table(ref)
    builder = ProfileBuilder(wide_contract())
    for batch in table.to_batches(max_chunksize=250_000):  # partition by partition, merged: as the Dask job does
        import pyarrow as pa

        builder.merge(ProfileBuilder(wide_contract()).update(pa.Table.from_batches([batch])))
    prof.write_text(builder.finalize().to_json())
    print(f"baseline profile: built from {ROWS:,} rows in 4 merged partitions in {time.perf_counter() - t:.2f} s, "
          f"{prof.stat().st_size / 1024:.0f} KiB")  # fmt: skip
    return ref, cur, prof


EVIDENTLY_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import pandas as pd
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    t1 = time.perf_counter()
    import evidently
    try:
        from evidently import Report, Dataset, DataDefinition
        from evidently.presets import DataDriftPreset
        num = [c for c in ref.columns if c.startswith("x")]; cat = [c for c in ref.columns if c.startswith("c")]
        dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
        r, c = Dataset.from_pandas(ref, data_definition=dd), Dataset.from_pandas(cur, data_definition=dd)
        t2 = time.perf_counter()
        snap = Report([DataDriftPreset()]).run(c, r)
        t3 = time.perf_counter()
        drifted = {}
        for m in snap.dict()["metrics"]:
            name = m.get("metric_name", "") or m.get("metric_id", "")
            if "ValueDrift" in name:
                col = name.split("column=")[1].split(",")[0].rstrip(")")
                drifted[col] = m["value"]
        api = "new"
    except ImportError:
        from evidently.report import Report
        from evidently.metric_preset import DataDriftPreset
        t2 = time.perf_counter()
        rep = Report(metrics=[DataDriftPreset()]); rep.run(reference_data=ref, current_data=cur)
        t3 = time.perf_counter()
        res = next(m["result"] for m in rep.as_dict()["metrics"] if "drift_by_columns" in m["result"])
        drifted = {k: v["drift_score"] for k, v in res["drift_by_columns"].items() if v["drift_detected"]}
        api = "legacy"
    print("@@evidently " + json.dumps({"version": evidently.__version__, "api": api, "load_s": t1 - t0,
                                      "report_s": t3 - t2, "values": drifted}))
    """
)


def ensure_evidently() -> Path | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import evidently, pyarrow"], capture_output=True)
    if probe.returncode != 0:
        install = subprocess.run([str(python), "-m", "pip", "install", "-q", "evidently", "pyarrow"],
                                 capture_output=True, text=True)  # fmt: skip
        if install.returncode != 0:
            print(f"Evidently could not be installed: {install.stderr.strip()[-500:]}")
            return None
    return python


def claims(null_windows: int) -> None:
    from functions.drift.decision import compare
    from jobs.datagen import Shift, generate
    from jobs.drift_synthetic import WideShift, generate_wide, wide_contract
    from schemas.contract import load_contract
    from schemas.profile import Profile, ProfileBuilder

    wide = wide_contract()
    base = Profile.from_json((WORK / "profile.json").read_text())
    shift = WideShift(covariate={n: 0.1 for n in SHIFTED}, categories={"c1": {"travel": 1.0}})
    found = compare(base, ProfileBuilder(wide).update_columns(generate_wide(ROWS, 3, shift)).finalize()).drifted
    print(f"claim: wide 1M rows, shift on {', '.join(SHIFTED)} + c1 -> drifted {found}")
    day, contract = dt.date(2026, 11, 1), load_contract("transactions")
    tshift = Shift(covariate={"amount": 0.1, "customer_tenure_days": 0.1, "avg_amount_30d": 0.1},
                   categories={"merchant_category": {"travel": 1.0}})  # fmt: skip
    tbase = ProfileBuilder(contract).update(generate(ROWS, day, seed=1)).finalize()
    tfound = compare(tbase, ProfileBuilder(contract).update(generate(ROWS, day, 2, tshift)).finalize()).drifted
    print(f"claim: transactions 1M rows, shift on amount, customer_tenure_days, avg_amount_30d + "
          f"merchant_category -> drifted {tfound}")  # fmt: skip
    t = time.perf_counter()
    alarms = [s for s in range(10_000, 10_000 + null_windows)
              if compare(base, ProfileBuilder(wide).update_columns(generate_wide(100_000, s)).finalize()).verdict
              == "drift"]  # fmt: skip
    print(f"claim: {null_windows} no-shift windows of 100k rows -> {len(alarms)} dataset-level alarms "
          f"({len(alarms) / max(1, null_windows):.1%}) {alarms} [{time.perf_counter() - t:.0f} s]")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--null-windows", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the Lambda runtime sets it; clients need one
    ref, cur, prof = make_data()

    load = ("import time; t=time.perf_counter(); from schemas.profile import Profile; "
            f"Profile.from_json(open({str(prof)!r}).read()); print(f'{{(time.perf_counter()-t)*1000:.1f}}')")  # fmt: skip
    print(f"baseline profile load (json + numpy, in-process incl. import): {run_measured([sys.executable, '-c', load])[2].strip()} ms")
    cold = ("import time; t=time.perf_counter(); import functions.drift.handler as h; h._deps(); "
            "print(f'{time.perf_counter()-t:.3f}')")  # fmt: skip
    wall, _, out = measure([sys.executable, "-c", cold])
    print(f"handler cold start: import + init {out.strip()} s in-process, {wall:.2f} s including interpreter start")

    ours_wall, ours_rss, ours_out = measure([sys.executable, "-m", "jobs.cli", "drift", "compare",
                                             "--baseline", str(prof), "--data", str(cur)])  # fmt: skip
    print(f"\nours: tide drift compare (1M current rows vs stored baseline): wall {ours_wall:.2f} s including "
          f"interpreter start, peak RSS {ours_rss:.3f} GiB")  # fmt: skip
    print(ours_out)

    if not args.skip_evidently:
        python = ensure_evidently()
        if python is not None:
            (WORK / "evidently_run.py").write_text(EVIDENTLY_SCRIPT)
            ev_wall, ev_rss, ev_out = measure([str(python), str(WORK / "evidently_run.py"), str(ref), str(cur)])
            line = next((x for x in ev_out.splitlines() if x.startswith("@@evidently ")), None)
            if line is None:
                print(f"Evidently failed:\n{ev_out[-3000:]}")
            else:
                ev = json.loads(line.removeprefix("@@evidently "))
                print(f"Evidently {ev['version']} ({ev['api']} API) DataDriftPreset: wall {ev_wall:.2f} s including "
                      f"interpreter start and reading both Parquet files ({ev['load_s']:.2f} s), report alone "
                      f"{ev['report_s']:.2f} s, peak RSS {ev_rss:.3f} GiB")  # fmt: skip
                print(f"Evidently per-column drift values: {json.dumps(ev['values'])}")
                print(f"speed-up: {ev_wall / ours_wall:.0f}x wall to wall; {ev['report_s'] / ours_wall:.0f}x "
                      "Evidently's report alone vs our whole run")  # fmt: skip
    claims(args.null_windows)
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, {dt.datetime.now(dt.UTC):%Y-%m-%d}")


if __name__ == "__main__":
    main()
