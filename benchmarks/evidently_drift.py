"""Evidently's DataDriftPreset on two Parquet files; run by bench_drift.py inside its own venv (pandas<3).

Prints one line `@@evidently {json}`: version, API, load and report seconds, per-column method/threshold/value/
drift and the DriftedColumnsCount summary. Not part of the package (Evidently is not a project dependency).
"""

import json
import sys
import time

t0 = time.perf_counter()
import pandas as pd  # noqa: E402

ref = pd.read_parquet(sys.argv[1])
cur = pd.read_parquet(sys.argv[2])
t1 = time.perf_counter()
import evidently  # noqa: E402

columns: dict[str, dict[str, object]] = {}
summary = None
try:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    num = [c for c in ref.columns if c.startswith("x")]
    cat = [c for c in ref.columns if c.startswith("c")]
    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    r, c = Dataset.from_pandas(ref, data_definition=dd), Dataset.from_pandas(cur, data_definition=dd)
    t2 = time.perf_counter()
    snap = Report([DataDriftPreset()]).run(c, r)
    t3 = time.perf_counter()
    for m in snap.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            # distance methods (Evidently's choice above 1000 rows) drift at value >= threshold, p-values below it
            is_p = "p_value" in cfg["method"].lower() or "test" in cfg["method"].lower()
            hit = m["value"] < cfg["threshold"] if is_p else m["value"] >= cfg["threshold"]
            columns[cfg["column"]] = {
                "method": cfg["method"],
                "threshold": cfg["threshold"],
                "value": m["value"],
                "drift": bool(hit),
            }
        elif cfg.get("type", "").endswith("DriftedColumnsCount"):
            summary = m["value"]
    api = "new"
except ImportError:
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report

    t2 = time.perf_counter()
    rep = Report(metrics=[DataDriftPreset()])
    rep.run(reference_data=ref, current_data=cur)
    t3 = time.perf_counter()
    res = next(m["result"] for m in rep.as_dict()["metrics"] if "drift_by_columns" in m["result"])
    for k, v in res["drift_by_columns"].items():
        columns[k] = {
            "method": v["stattest_name"],
            "threshold": v["stattest_threshold"],
            "value": v["drift_score"],
            "drift": v["drift_detected"],
        }
    api = "legacy"
out = {
    "version": evidently.__version__,
    "api": api,
    "load_s": t1 - t0,
    "report_s": t3 - t2,
    "columns": columns,
    "summary": summary,
}
print("@@evidently " + json.dumps(out))
