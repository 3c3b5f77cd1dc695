"""Quality check at scale: join + metrics for 1M captured predictions and 1M labels, wall time and peak RSS.

Run: python -m benchmarks quality     (or python -m benchmarks.bench_quality)

Data (.tide/bench-quality/, made once): 1M predictions of a 24-hour window captured as SageMaker records of
10 rows each (100k JSON lines with the transactions features as input and the predictor's
{"score", "label", "model_version"} rows as output), 1M labels (900k matching, 100k for ids never captured,
2% of ids labelled twice) as one curated Parquet partition, a 100k-row validation baseline.
Each row below runs in a fresh interpreter (wall includes start-up and imports; peak RSS via wait4):
1. `tide quality check` end to end: decode the captures, join, 200 bootstrap replicates of 5 metrics, report.
2. join + metrics alone, from Parquet copies of the decoded predictions and the labels (functions.quality).
3. anchor: the same join done the obvious way in pandas (merge, keep the latest label per id) with the point
   metrics of jobs.train.metrics (AUC, log-loss) — no intervals, no ECE, no precision/recall.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import textwrap
from pathlib import Path

import numpy as np

from benchmarks.bench_drift import Measured

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".tide" / "bench-quality"
ROWS = 1_000_000
BATCH = 10
START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def make_data() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from functions.drift.storage import LocalObjectStore
    from jobs import datagen
    from schemas.naming import capture_hour_prefix, curated_prefix
    from tests.quality_support import MODEL, NAMES, capture, write_baseline

    marker = WORK / "done"
    if marker.exists():
        return
    store = LocalObjectStore(WORK)
    rng = np.random.default_rng(0)
    features = [c.name for c in datagen.load_contract("transactions").columns if c.role == "feature"]
    sample = datagen.generate(1000, START.date(), seed=1).select(features).to_pylist()
    y = (rng.random(ROWS) < 0.05).astype(np.int8)
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, ROWS) + 2.5 * y - 3.5)))
    keys: list[str] = []
    per_hour = ROWS // BATCH // 24 + 1
    for hour in range(24):
        at = START + dt.timedelta(hours=hour)
        lines = []
        for n in range(per_hour):
            first = (hour * per_hour + n) * BATCH
            if first >= ROWS:
                break
            request = json.dumps({"instances": sample[first % 990 : first % 990 + BATCH]}).encode()
            chunk = score[first : first + BATCH]
            rows = [{"score": float(s), "label": int(s >= 0.5), "model_version": "v1"} for s in chunk]
            response = json.dumps({"predictions": rows}).encode()
            inference_id = f"req-{first}"
            lines.append(json.dumps(capture(request, response, at + dt.timedelta(seconds=n % 3600), inference_id)))
            keys += [f"{inference_id}#{i}" for i in range(BATCH)]
        key = f"{capture_hour_prefix('bench', 'champion', at)}part.jsonl"
        store.put(NAMES.bucket("captures"), key, ("\n".join(lines) + "\n").encode(), "")
    labelled = rng.permutation(ROWS)[: ROWS * 9 // 10]
    twice = labelled[: ROWS // 50]
    ids = [keys[i] for i in labelled] + [f"never-{i}" for i in range(ROWS // 10)] + [keys[i] for i in twice]
    label = np.concatenate([y[labelled], rng.integers(0, 2, ROWS // 10), 1 - y[twice]]).astype(np.int8)
    times = np.full(len(ids), int((START + dt.timedelta(days=2)).timestamp() * 1e6))
    times[len(ids) - len(twice) :] -= 3600 * 10**6  # the doubly labelled ids' first (wrong) label came earlier
    table = pa.table({
        "inference_id": pa.array(ids, pa.string()),
        "label_time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "source": pa.array(["chargeback"] * len(ids), pa.string()),
        "label": pa.array(label, pa.int8()),
    })  # fmt: skip
    sink = io.BytesIO()
    pq.write_table(table, sink)
    day = (START + dt.timedelta(days=2)).date()
    store.put(NAMES.bucket("curated"), f"{curated_prefix('labels', day)}labels.parquet", sink.getvalue(), "")
    (WORK / "labels.parquet").write_bytes(sink.getvalue())
    pq.write_table(pa.table({"key": keys, "score": score[: len(keys)]}), WORK / "predictions.parquet")
    vy = (rng.random(100_000) < 0.05).astype(np.int8)
    write_baseline(store, "v1", vy, 1 / (1 + np.exp(-(rng.normal(0, 1, 100_000) + 2.5 * vy - 3.5))), 0.5)
    assert MODEL == "fraud"
    marker.write_text("ok")


_OURS = textwrap.dedent(
    """
    import datetime as dt, sys, time
    import pyarrow.parquet as pq, pyarrow as pa, pyarrow.compute as pc
    from functions.quality.join import join
    from functions.quality.metrics import quality
    t = time.perf_counter()
    preds = pq.read_table(sys.argv[1])
    n = preds.num_rows
    when = pa.array([dt.datetime(2026, 11, 2, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))
    preds = preds.append_column("time", when.take(pa.array([0] * n)))
    preds = preds.append_column("version", pa.array(["v1"]).take(pa.array([0] * n)))
    joined = join(preds, pq.read_table(sys.argv[2]), dt.datetime(2026, 11, 10, tzinfo=dt.UTC))
    labelled = joined.table.filter(pc.is_valid(joined.table["label"]))
    q = quality(labelled["label"].to_numpy(), labelled["score"].to_numpy(), 0.5)
    print(f"labelled={labelled.num_rows} auc={q.estimates['auc'].value:.4f} s={time.perf_counter() - t:.2f}")
    """
)

_ANCHOR = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    from jobs.train.metrics import log_loss, roc_auc
    t = time.perf_counter()
    preds = pd.read_parquet(sys.argv[1]).drop_duplicates("key")
    labels = pd.read_parquet(sys.argv[2]).sort_values(["inference_id", "label_time"])
    labels = labels.drop_duplicates("inference_id", keep="last")
    joined = preds.merge(labels, left_on="key", right_on="inference_id", how="inner")
    auc = roc_auc(joined["label"].to_numpy(), joined["score"].to_numpy())
    ll = log_loss(joined["label"].to_numpy(), joined["score"].to_numpy())
    print(f"labelled={len(joined)} auc={auc:.4f} log_loss={ll:.4f} s={time.perf_counter() - t:.2f}")
    """
)


def main() -> int:
    make_data()
    window = ["--window-end", "2026-11-03", "--as-of", "2026-11-10", "--stack", "dev", "--json"]
    tide = [sys.executable, "-m", "jobs.cli", "quality", "check", "--root", str(WORK), "--endpoint", "bench",
            "--model", "fraud", *window]  # fmt: skip
    runs = {
        "`tide quality check` (decode 100k capture lines + join + 200 replicates)": Measured(tide),
        "join + metrics with intervals (functions.quality)": Measured(
            [sys.executable, "-c", _OURS, str(WORK / "predictions.parquet"), str(WORK / "labels.parquet")]
        ),
        "anchor: pandas merge + point AUC/log-loss": Measured(
            [sys.executable, "-c", _ANCHOR, str(WORK / "predictions.parquet"), str(WORK / "labels.parquet")]
        ),
    }
    print(f"{ROWS:,} predictions, {ROWS + ROWS // 50:,} label rows (2% ids labelled twice, 10% never captured)")
    print("| run | wall s | CPU s | peak RSS GiB | result |")
    print("|---|---:|---:|---:|---|")
    for name, m in runs.items():
        result = m.out.strip().splitlines()[-1] if m.out.strip() else ""
        if name.startswith("`tide"):
            doc = json.loads(m.out[m.out.index("{") :])
            v = doc["versions"][0]
            auc = v["window"]["metrics"]["auc"]
            interval = f"[{auc['low']:.4f}, {auc['high']:.4f}]"
            result = f"labelled={v['labelled']} coverage={v['coverage']:.3f} auc={auc['value']:.4f} {interval}"
            result += f" {v['verdict']}"
        print(f"| {name} | {m.wall:.1f} | {m.cpu:.1f} | {m.rss_gib:.2f} | {result} |")
        if not m.ok and not name.startswith("`tide"):
            print(m.out[-2000:])
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
