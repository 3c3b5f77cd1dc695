"""Drift check vs Evidently's DataDriftPreset on the same data, plus the claims too slow for the test suite.

Run: python -m benchmarks drift     (or python -m benchmarks.bench_drift [--skip-evidently] [--null-windows N])

1. Data: 1M reference + 1M current rows of the wide synthetic dataset (20 numerical + 5 categorical;
   jobs.drift_synthetic), current shifted by 0.1 sd on x03, x07, x15 and +1 pp on c1/travel; Parquet files.
2. Ours: the baseline profile is built once (timed separately); then `tide drift compare` runs in a fresh
   interpreter (wall time includes interpreter start, imports, reading the current Parquet, profiling it and
   the decision; peak RSS of that process from wait4).
3. Evidently: a separate venv (.tide/bench-venv, `pip install evidently "pandas<3" pyarrow`: evidently needs pandas<3,
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


_WRAPPER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    t = time.perf_counter()
    p = subprocess.Popen(sys.argv[1:])
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    cpu = usage.ru_utime + usage.ru_stime
    code = os.waitstatus_to_exitcode(status)
    print(f"@@measure wall={wall:.4f} cpu={cpu:.4f} maxrss_kb={usage.ru_maxrss} status={code}")
    """
)


class Measured:
    def __init__(self, cmd: list[str], timeout: float = 1800) -> None:
        """Run `cmd` in a fresh process; wall time (interpreter start included), CPU time and peak RSS via wait4."""
        proc = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, cwd=ROOT, timeout=timeout
        )
        lines = (proc.stdout + proc.stderr).splitlines()
        line = next((x for x in lines if x.startswith("@@measure")), None)
        self.out = "\n".join(x for x in lines if not x.startswith("@@measure"))
        if line is None:
            raise SystemExit(f"{cmd} gave no measurement:\n{self.out[-3000:]}")
        fields = dict(item.split("=") for item in line.split()[1:])
        self.ok = fields["status"] == "0"
        self.wall, self.cpu = float(fields["wall"]), float(fields["cpu"])
        self.rss_gib = int(fields["maxrss_kb"]) / 2**20


def make_data() -> tuple[Path, Path, Path]:
    import pyarrow.parquet as pq

    from jobs.drift_synthetic import WideShift, generate_wide, to_table, wide_contract
    from schemas.profile import ProfileBuilder

    WORK.mkdir(parents=True, exist_ok=True)
    ref, cur, prof = WORK / "reference.parquet", WORK / "current.parquet", WORK / "profile.json"
    shift = WideShift(covariate={n: 0.1 for n in SHIFTED}, categories={"c1": {"travel": 1.0}})
    # snappy (pyarrow's default) with dictionary encoding on the categorical columns only, as a curated-zone
    # writer that knows its contract would; the categorical columns are then read back dictionary-encoded
    cats = [n for n in wide_contract().column_names if n.startswith("c")]
    if not ref.exists():
        pq.write_table(to_table(generate_wide(ROWS, seed=1)), ref, use_dictionary=cats)
    if not cur.exists():
        pq.write_table(to_table(generate_wide(ROWS, seed=2, shift=shift)), cur, use_dictionary=cats)
    t = time.perf_counter()
    table = pq.read_table(ref)
    builder = ProfileBuilder(wide_contract())
    for batch in table.to_batches(max_chunksize=250_000):  # partition by partition, merged: as the Dask job does
        import pyarrow as pa

        builder.merge(ProfileBuilder(wide_contract()).update(pa.Table.from_batches([batch])))
    prof.write_text(builder.finalize().to_json())
    print(
        f"baseline profile: built from {ROWS:,} rows in 4 merged partitions in {time.perf_counter() - t:.2f} s, "
        f"{prof.stat().st_size / 1024:.0f} KiB"
    )
    return ref, cur, prof


def ensure_evidently() -> Path | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import evidently, pyarrow"], capture_output=True)
    if probe.returncode != 0:
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "evidently", "pandas<3", "pyarrow"],
            capture_output=True,
            text=True,
        )
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
    tshift = Shift(
        covariate={"amount": 0.1, "customer_tenure_days": 0.1, "avg_amount_30d": 0.1},
        categories={"merchant_category": {"travel": 1.0}},
    )
    tbase = ProfileBuilder(contract).update(generate(ROWS, day, seed=1)).finalize()
    tfound = compare(tbase, ProfileBuilder(contract).update(generate(ROWS, day, 2, tshift)).finalize()).drifted
    print(
        f"claim: transactions 1M rows, shift on amount, customer_tenure_days, avg_amount_30d + "
        f"merchant_category -> drifted {tfound}"
    )
    t = time.perf_counter()
    alarms = [
        s
        for s in range(10_000, 10_000 + null_windows)
        if compare(base, ProfileBuilder(wide).update_columns(generate_wide(100_000, s)).finalize()).verdict == "drift"
    ]
    print(
        f"claim: {null_windows} no-shift windows of 100k rows -> {len(alarms)} dataset-level alarms "
        f"({len(alarms) / max(1, null_windows):.1%}) {alarms} [{time.perf_counter() - t:.0f} s]"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--null-windows", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the Lambda runtime sets it; clients need one
    ref, cur, prof = make_data()

    load = Measured(
        [
            sys.executable,
            "-c",
            (
                "import time; t=time.perf_counter(); from schemas.profile import Profile; i=time.perf_counter()-t; "
                f"t=time.perf_counter(); Profile.from_json(open({str(prof)!r}).read()); "
                "print(f'import {i * 1000:.0f} ms, parse {(time.perf_counter() - t) * 1000:.1f} ms')"
            ),
        ]
    )
    print(f"baseline profile load (json + numpy only): {load.out.strip()}; {load.wall:.2f} s with interpreter start")
    cold = Measured(
        [
            sys.executable,
            "-c",
            (
                "import time; t=time.perf_counter(); import functions.drift.handler as h; h._deps(); "
                "print(f'{time.perf_counter()-t:.3f}')"
            ),
        ]
    )
    print(
        f"handler cold start: import + init {cold.out.strip()} s in-process, {cold.wall:.2f} s including "
        f"interpreter start (CPU {cold.cpu:.2f} s)"
    )

    ours = Measured([sys.executable, "-m", "jobs.cli", "drift", "compare", "--baseline", str(prof), "--data", str(cur)])
    if not ours.ok:
        raise SystemExit(ours.out)
    print(
        f"\nours: tide drift compare (1M current rows vs stored baseline): wall {ours.wall:.2f} s including "
        f"interpreter start, CPU {ours.cpu:.2f} s, peak RSS {ours.rss_gib:.3f} GiB"
    )
    print(ours.out)

    if not args.skip_evidently:
        python = ensure_evidently()
        if python is not None:
            script = Path(__file__).with_name("evidently_drift.py")
            ev = Measured([str(python), str(script), str(ref), str(cur)], timeout=3600)
            line = next((x for x in ev.out.splitlines() if x.startswith("@@evidently ")), None)
            if line is None or not ev.ok:
                print(f"Evidently failed:\n{ev.out[-3000:]}")
            else:
                res = json.loads(line.removeprefix("@@evidently "))
                print(
                    f"Evidently {res['version']} ({res['api']} API) DataDriftPreset: wall {ev.wall:.2f} s including "
                    f"interpreter start and reading both Parquet files ({res['load_s']:.2f} s), report alone "
                    f"{res['report_s']:.2f} s, CPU {ev.cpu:.2f} s, peak RSS {ev.rss_gib:.3f} GiB"
                )
                print(f"Evidently drifted columns: {res['summary']}")
                print(f"{'feature':<10}{'Evidently method':<34}{'threshold':>10}{'value':>10}  drift")
                for name, col in res["columns"].items():
                    print(f"{name:<10}{col['method']:<34}{col['threshold']:>10}{col['value']:>10.4f}  {col['drift']}")
                print(f"Evidently detected: {sorted(n for n, c in res['columns'].items() if c['drift'])}")
                print(
                    f"speed-up: {ev.wall / ours.wall:.0f}x wall to wall; {res['report_s'] / ours.wall:.0f}x for "
                    f"Evidently's report alone vs our whole run; CPU {ev.cpu / ours.cpu:.0f}x"
                )
    claims(args.null_windows)
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, {dt.datetime.now(dt.UTC):%Y-%m-%d}")


if __name__ == "__main__":
    main()
