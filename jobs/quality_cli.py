"""`tide quality check`: the scheduled model-quality check, run locally on a folder of buckets.

ROOT holds one sub-folder per bucket, named as the stack names them (the captures, curated, artifacts and
reports buckets), exactly what the function reads on S3; the breach state is kept in ROOT/quality-state.json.
Exit status 4 means a model version's quality is degraded in the window (0: not, 1: an error, 2: a usage
mistake).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

QUALITY_EXIT = 4  # documented in `tide --help`
_WHEN = click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H", "%Y-%m-%d"])


@click.group()
def quality() -> None:
    """Model quality from delayed labels (exit status 4 when a model version's quality is degraded)."""


@quality.command()
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder with one sub-folder per bucket (captures, curated labels, model artifacts; reports "
                   "are written there).")  # fmt: skip
@click.option("--endpoint", required=True)
@click.option("--model", required=True, help="The model's name: baselines are read from models/<model>/<version>/.")
@click.option("--window-end", type=_WHEN, required=True, help="End of the window of prediction time, UTC.")
@click.option("--hours", type=click.IntRange(min=1), default=24, show_default=True)
@click.option("--as-of", type=_WHEN, help="Use labels that had arrived by then, UTC  [default: now]")
@click.option("--format", "fmt", type=click.Choice(["sagemaker", "kserve"]), default="sagemaker", show_default=True)
@click.option("--variant", help="Only this variant's captures  [default: every variant]")
@click.option("--min-labelled", type=click.IntRange(min=1), help="Labelled predictions a window needs.")
@click.option("--sustained-windows", type=click.IntRange(min=1), help="Degraded windows in a row before the event.")
@click.option("--project", default="tidewater", show_default=True)
@click.option("--stack", default="local", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result and the events as JSON.")
def check(
    root: Path, endpoint: str, model: str, window_end: dt.datetime, hours: int, as_of: dt.datetime | None,
    fmt: str, variant: str | None, min_labelled: int | None, sustained_windows: int | None, project: str,
    stack: str, as_json: bool,
) -> None:  # fmt: skip
    """Join the window's captured predictions with the labels that have arrived and judge each model version
    against its validation baseline (exit 4 when degraded)."""
    import dataclasses

    from functions.common.events import RecordingPublisher
    from functions.drift.check import Window
    from functions.drift.state import FileBreachStore
    from functions.drift.storage import LocalObjectStore
    from functions.quality.check import run_check
    from functions.quality.decision import QualityConfig
    from schemas.naming import Names, NamingError, captures_prefix

    overrides = {k: v for k, v in (("min_labelled", min_labelled), ("sustained_windows", sustained_windows)) if v}
    end = window_end.replace(tzinfo=dt.UTC)
    when = as_of.replace(tzinfo=dt.UTC) if as_of else dt.datetime.now(dt.UTC)
    if when < end:
        raise click.UsageError(f"--as-of {when:%Y-%m-%dT%H:%M} is before the window's end: no label can have arrived")
    publisher = RecordingPublisher()
    try:
        outcome = run_check(
            store=LocalObjectStore(root),
            names=Names(project, stack),
            model=model,
            window=Window.hours_before(endpoint, end, hours),
            as_of=when,
            breach_store=FileBreachStore(root / "quality-state.json"),
            publisher=publisher,
            config=dataclasses.replace(QualityConfig(), **overrides),
            fmt=fmt,  # type: ignore[arg-type]
            variant=variant,
        )
    except (NamingError, ValueError, OSError) as err:
        raise click.ClickException(f"quality check of {endpoint}: {err}") from None
    if as_json:
        doc = {"report": outcome.report_json, "report_html": outcome.report_html,
               "versions": [r.to_dict() for r in outcome.results],
               "account": {k: v for k, v in outcome.account.items() if v},
               "events": [{"type": e.detail_type, "detail": e.detail()} for e in outcome.events]}  # fmt: skip
        click.echo(json.dumps(doc, indent=1))
    else:
        if not outcome.results:
            where = root / Names(project, stack).bucket("captures") / captures_prefix(endpoint)
            click.echo(f"no captured predictions of {endpoint} in the window under {where}")
        _print(outcome)
    if outcome.degraded:
        click.get_current_context().exit(QUALITY_EXIT)


def _print(outcome: object) -> None:
    from functions.quality.check import QualityOutcome

    assert isinstance(outcome, QualityOutcome)
    for r in outcome.results:
        click.echo(f"version {r.version}: {r.verdict}  labelled {r.labelled}/{r.predictions} "
                   f"({100 * r.coverage:.1f}% coverage)")  # fmt: skip
        if r.window is not None and r.labelled:
            for name, e in r.window.estimates.items():
                base = r.baseline.estimates[name].value if r.baseline else float("nan")
                click.echo(f"  {name:<10}{e.value:>8.3f}  [{e.low:.3f}, {e.high:.3f}]  validation {base:.3f}")
        for reason in r.reasons:
            click.echo(f"  - {reason}")
    skipped = {k: v for k, v in outcome.account.items() if v}
    if skipped:
        click.echo("account: " + "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items())))
    click.echo(f"report: {outcome.report_json} (page: {outcome.report_html})")
    for event in outcome.events:
        click.echo(f"event: {event.detail_type} {event.model_version} {', '.join(event.degraded_metrics)}")
