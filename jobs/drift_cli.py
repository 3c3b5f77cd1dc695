"""`tide drift`: build a baseline profile of any table, compare a data file with it, or run the scheduled check.

A profile records each column's kind, so `compare` and `check` (and the scheduled function) need nothing but
the profile: with `--contract` the contract's features are profiled, without it every column of the data
whose kind can be inferred (numbers numerical; strings and booleans categorical; `--kind` overrides).
Exit status 3 means drift was found (0: none, 1: an error, 2: a usage mistake).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import pyarrow as pa

    from functions.drift.decision import DriftResult, FeatureResult
    from schemas.profile import Profile

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
DRIFT_EXIT = 3  # documented in `tide --help`


@click.group()
def drift() -> None:
    """Drift checks against a stored baseline profile (exit status 3 when drift is found)."""


def _is_parquet(path: Path) -> bool:
    return path.name.endswith((".parquet", ".parquet.gz", ".pq"))


def _read_schema(path: Path) -> pa.Schema:
    """The file's columns and types, read before any data so a missing column is named, not an Arrow error."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if _is_parquet(path):
            return pq.read_schema(path)
        with pacsv.open_csv(path) as reader:
            return reader.schema
    except (pa.ArrowException, OSError) as err:
        kind = "Parquet" if _is_parquet(path) else "CSV"
        raise click.ClickException(f"{path}: cannot be read as {kind}: {err}") from None


def _read_table(path: Path, columns: list[str], categorical: list[str] | None = None) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    absent = [c for c in columns if c not in _read_schema(path).names]
    if absent:
        raise click.ClickException(f"{path} lacks column(s) {', '.join(absent)}")
    try:
        if _is_parquet(path):
            # categorical columns stay dictionary-encoded: counting them is then a count of small integers
            return pq.read_table(path, columns=columns, read_dictionary=categorical)
        # a column the profile calls categorical is read as text, whatever it looks like ("01" stays "01");
        # an empty cell is a missing value, not the category ""
        types = {c: pa.string() for c in categorical or []}
        options = pacsv.ConvertOptions(include_columns=columns, column_types=types, strings_can_be_null=True)
        return pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError) as err:
        raise click.ClickException(f"{path}: cannot be read: {err}") from None


def _builder_like(baseline: Profile) -> Any:
    from schemas.profile import ProfileBuilder

    return ProfileBuilder(baseline.contract, baseline.kinds, relative_accuracy=baseline.relative_accuracy)


def _effect(f: FeatureResult) -> str:
    if f.verdict == "insufficient_data" or not f.distribution_tested:
        return "-"
    return f"{f.effect:.3f} {'W/sd' if f.test == 'ks' else 'JS'}"


def print_table(result: DriftResult) -> None:
    """One row per feature: the verdict, why (reason codes), and each test's effect size with its unit."""
    click.echo(
        f"verdict: {result.verdict}  drifted: {', '.join(result.drifted) or '-'}  "
        f"(baseline {result.rows_reference} rows, window {result.rows_current} rows)"
    )
    click.echo(
        f"{'feature':<24}{'kind':<12}{'verdict':<18}{'reasons':<34}{'q (BH)':>8}{'effect':>13}"
        f"{'missing %':>16}{'unseen %':>10}"
    )
    for f in result.features:
        q = f"{f.qvalue:.2g}" if f.distribution_tested else "-"
        missing = f"{100 * f.missing_rate_reference:.1f} -> {100 * f.missing_rate_current:.1f}"
        unseen = f.statistics.get("unseen_share")
        click.echo(
            f"{f.name:<24}{f.kind:<12}{f.verdict:<18}{','.join(f.reason_codes) or '-':<34}{q:>8}{_effect(f):>13}"
            f"{missing:>16}{'-' if unseen is None else f'{100 * unseen:.1f}':>10}"
        )


def _finish(result: DriftResult, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Print the result; exit with DRIFT_EXIT when the data drifted, so scripts need not parse the output."""
    if as_json:
        click.echo(json.dumps({**result.to_dict(), **(extra or {})}, indent=1))
    if result.verdict == "drift":
        click.get_current_context().exit(DRIFT_EXIT)


def _parse_kinds(pairs: tuple[str, ...]) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for pair in pairs:
        name, _, kind = pair.partition("=")
        if kind not in ("numerical", "categorical") or not name:
            raise click.BadParameter(f"{pair!r}: expected COLUMN=numerical or COLUMN=categorical", param_hint="--kind")
        kinds[name] = kind
    return kinds


@drift.command()
@click.option("--contract", "dataset", help="Profile this dataset contract's features  [default: infer from the data]")
@click.option("--data", "paths", type=_FILE, multiple=True, required=True, help="Parquet or CSV; repeat per file.")
@click.option("--column", "columns", multiple=True, help="Profile only these columns (repeat)  [default: all]")
@click.option("--kind", "kind_pairs", multiple=True, metavar="COLUMN=KIND",
              help="Override an inferred kind: numerical or categorical (repeat).")  # fmt: skip
@click.option("--name", help="The profile's dataset name  [default: the contract, else the first file's name]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the profiled columns and kinds as JSON.")
def baseline(
    dataset: str | None, paths: tuple[Path, ...], columns: tuple[str, ...], kind_pairs: tuple[str, ...],
    name: str | None, out: Path, as_json: bool,
) -> None:  # fmt: skip
    """Profile data files (one partition each, merged) into a baseline profile JSON."""
    import pyarrow as pa

    from schemas.contract import load_contract
    from schemas.profile import ProfileBuilder, infer_kinds

    overrides = _parse_kinds(kind_pairs)
    skipped: dict[str, str] = {}
    if dataset is not None:
        if overrides or columns:
            raise click.UsageError("--kind and --column apply without --contract (the contract declares both)")
        contract = load_contract(dataset)
        ref, kinds = contract.ref, {f.name: f.kind for f in contract.features}
    else:
        schema = _read_schema(paths[0])
        absent = [c for c in columns if c not in schema.names]
        if absent:
            raise click.ClickException(f"{paths[0]} lacks column(s) {', '.join(absent)}; it has {schema.names}")
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        kinds, skipped = infer_kinds(schema, overrides)
        if not kinds:
            raise click.ClickException(f"{paths[0]}: no column can be profiled (types: {skipped})")
        ref = name or paths[0].name.split(".")[0]
    categorical = [n for n, k in kinds.items() if k == "categorical"]
    total = ProfileBuilder(ref, kinds)
    for path in paths:
        total.merge(ProfileBuilder(ref, kinds).update(_read_table(path, list(kinds), categorical)))
    if total.rows == 0:
        raise click.ClickException(f"{', '.join(map(str, paths))}: no rows: a baseline needs data")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(total.finalize().to_json())
    if as_json:
        click.echo(json.dumps({"profile": str(out), "name": ref, "rows": total.rows, "kinds": kinds,
                               "skipped": skipped}, indent=1))  # fmt: skip
        return
    click.echo(f"profile of {total.rows} rows, {len(kinds)} column(s) -> {out}")
    if skipped:
        click.echo("not profiled (no kind fits their type): " + ", ".join(f"{n} ({t})" for n, t in skipped.items()))


def _load_profile(path: Path) -> Profile:
    from schemas.profile import Profile

    return Profile.from_json(path.read_bytes())


@drift.command()
@click.option("--baseline", "baseline_path", type=_FILE, required=True, help="Baseline profile JSON.")
@click.option("--data", "path", type=_FILE, required=True, help="Current data: Parquet or CSV.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Also write the JSON report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of the table.")
def compare(baseline_path: Path, path: Path, report: Path | None, as_json: bool) -> None:
    """Compare a data file with a stored baseline and print the per-feature table (exit 3 on drift)."""
    from functions.drift.decision import compare as run_compare

    base = _load_profile(baseline_path)
    categorical = [n for n, k in base.kinds.items() if k == "categorical"]
    current = _builder_like(base).update(_read_table(path, list(base.features), categorical)).finalize()
    result = run_compare(base, current)
    if report is not None:
        report.write_text(json.dumps(result.to_dict(), indent=1))
    if not as_json:
        print_table(result)
    _finish(result, as_json)


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
@click.option("--json", "as_json", is_flag=True, help="Print the result, captures and events as JSON.")
def check(
    baseline_path: Path, root: Path, endpoint: str, window_end: dt.datetime, hours: int, fmt: str, project: str,
    stack: str, as_json: bool,
) -> None:  # fmt: skip
    """Run the scheduled check locally on captures under ROOT (state kept in ROOT/drift-state.json; exit 3 on
    drift)."""
    from functions.common.events import RecordingPublisher
    from functions.drift.check import Window, run_check
    from functions.drift.state import FileBreachStore
    from functions.drift.storage import LocalObjectStore
    from schemas.naming import Names

    base = _load_profile(baseline_path)
    publisher = RecordingPublisher()
    outcome = run_check(
        store=LocalObjectStore(root),
        names=Names(project, stack),
        baseline=base,
        window=Window.hours_before(endpoint, window_end.replace(tzinfo=dt.UTC), hours),
        breach_store=FileBreachStore(root / "drift-state.json"),
        publisher=publisher,
        fmt=fmt,  # type: ignore[arg-type]
    )
    captures = {"records": outcome.decoded.records, "rows": outcome.decoded.rows,
                "malformed": dict(outcome.decoded.malformed)}  # fmt: skip
    if as_json:
        extra = {"captures": captures, "report": outcome.report_html, "consecutive": outcome.state.consecutive,
                 "events": [{"type": e.detail_type, "detail": e.detail()} for e in publisher.events]}  # fmt: skip
        _finish(outcome.result, True, extra)
        return
    print_table(outcome.result)
    malformed = captures["malformed"] or 0
    click.echo(f"captures: {captures['records']} records, {captures['rows']} rows, malformed {malformed}")
    click.echo(f"report: {outcome.report_html}  (state: {outcome.state.consecutive} drifting window(s) in a row)")
    for event in publisher.events:
        click.echo(f"event: {event.detail_type} {event.detail()}")
    _finish(outcome.result, False)
