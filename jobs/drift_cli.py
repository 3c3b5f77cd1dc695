"""`tide drift`: build a baseline profile, compare a data file with it, or run the scheduled check locally."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from functions.drift.decision import DriftResult
    from schemas.profile import Profile

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def drift() -> None:
    """Drift checks against a stored baseline profile."""


def _read_table(path: Path, columns: list[str], categorical: list[str] | None = None):  # type: ignore[no-untyped-def]
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if path.name.endswith((".parquet", ".parquet.gz")):
        # categorical columns stay dictionary-encoded: counting them is then a count of small integers
        return pq.read_table(path, columns=columns, read_dictionary=categorical)
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=columns))


def _builder_like(baseline: Profile):  # type: ignore[no-untyped-def]
    from schemas.profile import ProfileBuilder

    return ProfileBuilder(
        baseline.contract,
        {n: p.kind for n, p in baseline.features.items()},
        relative_accuracy=baseline.relative_accuracy,
    )


def print_table(result: DriftResult) -> None:
    click.echo(
        f"verdict: {result.verdict}  drifted: {', '.join(result.drifted) or '-'}  "
        f"(baseline {result.rows_reference} rows, window {result.rows_current} rows)"
    )
    click.echo(f"{'feature':<24}{'kind':<12}{'test':<6}{'q (BH)':>10}{'effect':>10}{'psi/unseen':>12}  verdict")
    for f in result.features:
        extra = f.statistics.get("psi", f.statistics.get("unseen_share", float("nan")))
        click.echo(f"{f.name:<24}{f.kind:<12}{f.test:<6}{f.qvalue:>10.3g}{f.effect:>10.4f}{extra:>12.4f}  {f.verdict}")


@drift.command()
@click.option("--contract", "dataset", default="transactions", show_default=True, help="Dataset contract name.")
@click.option("--data", "paths", type=_FILE, multiple=True, required=True, help="Parquet or CSV; repeat per file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def baseline(dataset: str, paths: tuple[Path, ...], out: Path) -> None:
    """Profile data files (one partition each, merged) into a baseline profile JSON."""
    from schemas.contract import load_contract
    from schemas.profile import ProfileBuilder

    contract = load_contract(dataset)
    total = ProfileBuilder(contract)
    for path in paths:
        total.merge(ProfileBuilder(contract).update(_read_table(path, [f.name for f in contract.features])))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(total.finalize().to_json())
    click.echo(f"profile of {total.rows} rows -> {out}")


@drift.command()
@click.option("--baseline", "baseline_path", type=_FILE, required=True, help="Baseline profile JSON.")
@click.option("--data", "path", type=_FILE, required=True, help="Current data: Parquet or CSV.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Also write the JSON report here.")
def compare(baseline_path: Path, path: Path, report: Path | None) -> None:
    """Compare a data file with a stored baseline and print the per-feature table."""
    from functions.drift.decision import compare as run_compare
    from schemas.profile import Profile

    base = Profile.from_json(baseline_path.read_bytes())
    categorical = [n for n, p in base.features.items() if p.kind == "categorical"]
    current = _builder_like(base).update(_read_table(path, list(base.features), categorical)).finalize()
    result = run_compare(base, current)
    print_table(result)
    if report is not None:
        import json

        report.write_text(json.dumps(result.to_dict(), indent=1))


@drift.command()
@click.option("--baseline", "baseline_path", type=_FILE, required=True, help="Baseline profile JSON.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder with one sub-folder per bucket (captures are read, reports written there).",
)
@click.option("--endpoint", required=True)
@click.option("--window-end", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"]), required=True, help="UTC.")
@click.option("--hours", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["sagemaker", "kserve"]), default="sagemaker", show_default=True)
@click.option("--project", default="tidewater", show_default=True)
@click.option("--stack", default="local", show_default=True)
def check(
    baseline_path: Path,
    root: Path,
    endpoint: str,
    window_end: dt.datetime,
    hours: int,
    fmt: str,
    project: str,
    stack: str,
) -> None:
    """Run the scheduled check locally on captures under ROOT (state kept in ROOT/drift-state.json)."""
    from functions.common.events import RecordingPublisher
    from functions.drift.check import Window, run_check
    from functions.drift.state import FileBreachStore
    from functions.drift.storage import LocalObjectStore
    from schemas.contract import load_contract
    from schemas.naming import Names
    from schemas.profile import Profile

    base = Profile.from_json(baseline_path.read_bytes())
    dataset, _, version = base.contract.partition("/v")
    publisher = RecordingPublisher()
    outcome = run_check(
        store=LocalObjectStore(root),
        names=Names(project, stack),
        contract=load_contract(dataset, int(version)),
        baseline=base,
        window=Window.hours_before(endpoint, window_end.replace(tzinfo=dt.UTC), hours),
        breach_store=FileBreachStore(root / "drift-state.json"),
        publisher=publisher,
        fmt=fmt,  # type: ignore[arg-type]
    )
    print_table(outcome.result)
    click.echo(
        f"captures: {outcome.decoded.records} records, {outcome.decoded.rows} rows, "
        f"malformed {dict(outcome.decoded.malformed) or 0}"
    )
    click.echo(f"report: {outcome.report_html}  (state: {outcome.state.consecutive} drifting window(s) in a row)")
    for event in publisher.events:
        click.echo(f"event: {event.detail_type} {event.detail()}")
