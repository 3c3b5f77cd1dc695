"""`tide`: the operator's command line.

Each capability keeps its subcommand in its own module (heavy imports inside the command body, so
`tide --help` stays fast) and registers it at the bottom of this file with `main.add_command`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from jobs.batch.cli import curate_handoffs, ingest
from jobs.build_artifacts import build_artifacts
from jobs.compress_cli import compress
from jobs.deploy.cli import deploy
from jobs.drift_cli import drift
from jobs.quality_cli import quality
from jobs.retrain.cli import retrain
from jobs.rollout_cli import rollout
from jobs.train.cli import train


class _Tide(click.Group):
    """Runs every command inside jobs.cli_errors.known_errors: a known mistake is one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from jobs.cli_errors import known_errors

        with known_errors():
            return super().invoke(ctx)


@click.group(cls=_Tide, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tidewater", prog_name="tide")
def main() -> None:
    """Tidewater: an ML platform as code, from raw data to a safely rolled-out model.

    \b
    Exit codes:
      0  success
      1  error (one line on stderr names the problem)
      2  usage error (an unknown option, a missing argument)
      3  drift found (`tide drift compare` and `tide drift check`)
      4  model quality degraded (`tide quality check`)

    Commands that print a result take --json for a machine-readable one (ingest, train, deploy and
    curate-handoffs always print JSON).
    """


@main.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".tide/local"),
    show_default=True,
    help="Folder that receives every artifact of the rehearsal.",
)
@click.option("--rows-per-day", type=click.IntRange(min=2_000), default=20_000, show_default=True)
@click.option("--train-steps", type=click.IntRange(min=10), default=150, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Progress on stderr; the summary (summary.json) on stdout.")
def local(workdir: Path, rows_per_day: int, train_steps: int, seed: int, as_json: bool) -> None:
    """Rehearse the platform's whole lifecycle offline on the embedded cloud."""
    import json

    from jobs.rehearsal import lifecycle

    settings = lifecycle.Settings(rows_per_day=rows_per_day, train_steps=train_steps, seed=seed)
    try:
        summary = lifecycle.run(workdir, lambda line: click.echo(line, err=as_json), settings)
    except lifecycle.RehearsalError as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=1, default=str))


# Each command module keeps its heavy imports inside its commands, so `tide --help` stays fast.
for command in (ingest, curate_handoffs, train, compress, deploy, retrain, drift, quality, rollout, build_artifacts):
    main.add_command(command)

if __name__ == "__main__":
    main()
