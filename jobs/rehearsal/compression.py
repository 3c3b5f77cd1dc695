"""The rehearsal's compression stage: `tide compress` makes a smaller version of the champion, which goes out as
a challenger like any other (deployed, its own predictor process), is compared in shadow, and is canaried with
the 5XX, latency and quality guardrails; the summary says what it saved, champion vs compressed.

Latency on this machine: every predictor shares two cores with the others and the router. A challenger at 5 %
of the traffic, started cold, measured about three times the champion's latency (bench_serving: canary split),
mostly its first requests' costs; here both predictors answer a warm-up burst before any weight moves, run one
torch thread each, and the guardrail's margin (LATENCY_MARGIN) is the allowance for what two processes on two
shared cores still differ by (README: the demo's compression stage).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
from typing import TYPE_CHECKING, Any

from jobs.batch.storage import filesystem, join, read_json

if TYPE_CHECKING:
    from jobs.rehearsal.stages import Model, World
    from serving.process import Counts

CANARY_STEPS = (0.5, 1.0)  # equal shares: the only split at which two predictors' latencies compare here
WARM_UP_REQUESTS = 500  # per predictor, single-row, before the canary's first step
LATENCY_MARGIN = 0.25  # the mean-latency guardrail: non-inferior when not slower than 1.25 x the champion
# The quality guardrail: the shadow pairs' mean |score difference| must stay within the shadow strategy's own
# default (functions.traffic.config.Shadow.max_score_difference).
QUALITY_MARGIN = 0.05
MIN_SHADOW_PAIRS = 300  # the shadow phase mirrors a quarter of 2,000 requests


def guardrails() -> list[dict[str, Any]]:
    return [
        {"name": "error_rate", "kind": "rate", "metric": "errors", "margin": 1.0},
        {"name": "latency", "kind": "mean", "metric": "latency", "margin": LATENCY_MARGIN},
        {"name": "quality", "kind": "shadow", "metric": "score_difference", "margin": QUALITY_MARGIN,
         "min_pairs": MIN_SHADOW_PAIRS},
    ]  # fmt: skip


def compress(world: World, parent: Model, method: str) -> Model:
    """`tide compress --model-url <parent> --method <method>` through the CLI command itself (its output is the
    JSON line a user sees), then the version's metadata.json as any deploy reads it."""
    from jobs.compress_cli import compress as command
    from jobs.rehearsal.stages import Model

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        command.main(["--model-url", parent.url, "--method", method], prog_name="tide compress", standalone_mode=False)
    doc = json.loads(printed.getvalue().splitlines()[-1])
    fs, path = filesystem(join(doc["model_url"], "metadata.json"))
    metadata = read_json(fs, path)
    size = metadata["size"]
    world.echo(f"[6/7] tide compress {parent.label} --method {method}: {metadata['version']}, model.tar.gz "
               f"{size['archive_bytes'] / 1024:.1f} KiB (was {size['parent_archive_bytes'] / 1024:.1f}), validation "
               f"AUC {metadata['metrics']['auc']:.3f} (was {metadata['parent_metrics']['auc']:.3f})")  # fmt: skip
    label = f"{parent.label}-{method}"
    return Model(label, doc["model_url"], metadata, f"{metadata['model']}-{metadata['version']}"[:63])


def ship(world: World, champion: Model, method: str, day: dt.date) -> str:
    """Compress the champion, deploy the result as a challenger, compare in shadow, canary it; returns the
    rollout's decision and records the savings in the summary."""
    from jobs.rehearsal import rollouts

    compressed = compress(world, champion, method)
    world.deploy(compressed)
    shadow = rollouts.shadow_compare(world, champion, compressed, day)
    decision = rollouts.rollout(world, champion, compressed, guardrails(), warm_up=WARM_UP_REQUESTS,
                                steps=CANARY_STEPS, stage="[6/7]")  # fmt: skip
    counts = world.rollout_counts[compressed.label]
    rollout = next(r for r in world.summary.rollouts if r["challenger"] == compressed.label)
    world.summary.compression = savings(
        champion, compressed, shadow, counts[champion.variant], counts[compressed.variant], rollout
    )
    for key, line in savings_lines(world.summary.compression):
        world.echo(f"      {key}: {line}")
    return decision


def _latency(counts: Counts) -> dict[str, float]:
    """Milliseconds, from the predictor's own histogram (p50, p99: Prometheus' interpolation within buckets) and
    its sum/count (mean)."""
    mean = 1000 * counts.latency_sum_s / counts.latency_count if counts.latency_count else math.nan
    return {"requests": counts.requests, "mean_ms": mean, "p50_ms": 1000 * counts.latency_quantile(0.5),
            "p99_ms": 1000 * counts.latency_quantile(0.99)}  # fmt: skip


def savings(
    champion: Model, compressed: Model, shadow: dict[str, Any], champion_counts: Counts, compressed_counts: Counts,
    rollout: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Champion vs compressed: artifact size (metadata), latency served during the canary (each predictor's own
    counters over the rollout), validation AUC and the shadow comparison; the decision and its guardrails."""
    metadata = compressed.metadata
    size = metadata["size"]
    guardrail_stats = rollout.get("statistics", {}).get("guardrails", {})
    return {
        "champion": champion.label,
        "compressed": compressed.label,
        "method": compressed.metadata["method"],
        "version": compressed.metadata["version"],
        "decision": rollout["decision"],
        "reason": rollout["reason"],
        "archive_bytes": {"champion": size["parent_archive_bytes"], "compressed": size["archive_bytes"]},
        "model_pt_bytes": {"champion": size["parent_model_pt_bytes"], "compressed": size["model_pt_bytes"]},
        "latency": {"champion": _latency(champion_counts), "compressed": _latency(compressed_counts)},
        "auc": {"champion": metadata["parent_metrics"]["auc"], "compressed": metadata["metrics"]["auc"]},
        "shadow": shadow,
        "guardrails": {
            name: {k: v for k, v in g.items() if not isinstance(v, list)} for name, g in guardrail_stats.items()
        },
    }


def _change(before: float, after: float) -> str:
    return f"{100 * (after - before) / before:+.0f}%" if before else "n/a"


def savings_lines(s: dict[str, Any]) -> list[tuple[str, str]]:
    """What the compressed version saved, compressed vs champion (the console and the report's summary)."""
    a, b = s["archive_bytes"], s["model_pt_bytes"]
    la, lb = s["latency"]["champion"], s["latency"]["compressed"]
    auc, shadow = s["auc"], s["shadow"]
    return [
        (f"compressed {s['compressed']}", f"{s['method']} of {s['champion']}: {s['decision']} ({s['reason']})"),
        ("saved: size", f"model.tar.gz {a['compressed'] / 1024:.1f} KiB vs {a['champion'] / 1024:.1f} KiB "
         f"({_change(a['champion'], a['compressed'])}), weights {b['compressed'] / 1024:.1f} KiB vs "
         f"{b['champion'] / 1024:.1f} KiB ({_change(b['champion'], b['compressed'])})"),
        ("saved: latency", f"p50 {lb['p50_ms']:.2f} ms vs {la['p50_ms']:.2f} ms, p99 {lb['p99_ms']:.2f} ms vs "
         f"{la['p99_ms']:.2f} ms, mean {lb['mean_ms']:.3f} ms vs {la['mean_ms']:.3f} ms over the canary "
         f"({lb['requests']:.0f} vs {la['requests']:.0f} requests, the predictors' own histograms)"),
        ("saved: quality", f"validation AUC {auc['compressed']:.4f} vs {auc['champion']:.4f}; shadow "
         f"{shadow['pairs']} pairs, label agreement {shadow['label_agreement']:.1%}, mean score difference "
         f"{shadow['mean_score_difference']:.4f}"),
    ]  # fmt: skip


def comparison_table(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The report's table: (measure, champion, compressed, change), every number with its unit."""
    la, lb = s["latency"]["champion"], s["latency"]["compressed"]
    kib = {k: {arm: v / 1024 for arm, v in s[k].items()} for k in ("archive_bytes", "model_pt_bytes")}
    rows = [
        ("model.tar.gz (KiB)", kib["archive_bytes"], ".1f"),
        ("weights, model.pt (KiB)", kib["model_pt_bytes"], ".1f"),
        ("latency p50 served in the canary (ms)", {"champion": la["p50_ms"], "compressed": lb["p50_ms"]}, ".2f"),
        ("latency p99 served in the canary (ms)", {"champion": la["p99_ms"], "compressed": lb["p99_ms"]}, ".2f"),
        ("latency mean served in the canary (ms)", {"champion": la["mean_ms"], "compressed": lb["mean_ms"]}, ".3f"),
        ("requests served in the canary", {"champion": la["requests"], "compressed": lb["requests"]}, ".0f"),
        ("validation AUC", s["auc"], ".4f"),
    ]
    table = [(name, format(v["champion"], f), format(v["compressed"], f), _change(v["champion"], v["compressed"]))
             for name, v, f in rows]  # fmt: skip
    shadow = s["shadow"]
    table.append(("shadow: label agreement, mean |score difference|", "-",
                  f"{shadow['label_agreement']:.1%}, {shadow['mean_score_difference']:.4f} ({shadow['pairs']} pairs)",
                  "-"))  # fmt: skip
    return table
