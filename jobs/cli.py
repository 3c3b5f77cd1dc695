"""`tide`: the operator's command line.

Each capability keeps its subcommand in its own module (heavy imports inside the command body, so
`tide --help` stays fast) and registers it at the bottom of this file with `main.add_command`.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Tidewater: an ML platform as code, from raw data to a safely rolled-out model."""


@main.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".tide/local"),
    show_default=True,
    help="Folder that receives every artifact of the rehearsal.",
)
@click.option("--rows-per-day", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def local(workdir: Path, rows_per_day: int, seed: int) -> None:
    """Rehearse the platform's lifecycle offline on the embedded cloud."""
    from jobs.rehearsal import lifecycle

    result = lifecycle.run(workdir, click.echo, rows_per_day=rows_per_day, seed=seed)
    click.echo(f"done: artifacts under {result.workdir.resolve()}")


from jobs.batch.cli import ingest  # noqa: E402  (registration: each command lives in its own module)
from jobs.deploy.cli import deploy  # noqa: E402
from jobs.train.cli import train  # noqa: E402

main.add_command(ingest)
main.add_command(train)
main.add_command(deploy)

if __name__ == "__main__":
    main()
