"""`tide compress`: new model versions from a trained one (dynamic int8, a distilled student)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click


@click.command()
@click.option("--model-url", required=True, help="The trained model's folder (file://, s3://...).")
@click.option("--method", "methods", type=click.Choice(["int8", "distilled"]), multiple=True,
              help="Repeat for several  [default: both]")  # fmt: skip
@click.option("--student-hidden", default="8", show_default=True, help="The student's hidden widths, comma-separated.")
@click.option("--student-embedding-dim", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--student-steps", type=click.IntRange(min=1), default=400, show_default=True)
def compress(
    model_url: str, methods: tuple[str, ...], student_hidden: str, student_embedding_dim: int, student_steps: int
) -> None:
    """Write each compressed version beside the model (<version>-int8/, <version>-distilled/) with its own
    validation baseline and a model.tar.gz that serves like any other; prints one JSON line per version."""
    from jobs.compress import CompressError, StudentConfig
    from jobs.compress import compress as run

    try:
        hidden = tuple(int(w) for w in student_hidden.split(",") if w.strip())
    except ValueError:
        raise click.BadParameter(
            f"{student_hidden!r}: expected widths like 8 or 16,8", param_hint="--student-hidden"
        ) from None
    if not hidden or min(hidden) < 1:
        raise click.BadParameter(f"{student_hidden!r}: widths must be >= 1", param_hint="--student-hidden")
    student = StudentConfig(embedding_dim=student_embedding_dim, hidden=hidden, steps=student_steps)
    with tempfile.TemporaryDirectory(prefix="tide-compress-") as work:
        try:
            done = run(model_url, tuple(methods) or ("int8", "distilled"), Path(work), student)  # type: ignore[arg-type]
        except CompressError as err:
            raise click.ClickException(str(err)) from None
    for version in done:
        m = version.metadata
        keys = ("version", "parent_version", "size", "metrics")
        click.echo(json.dumps({"method": version.method, "model_url": version.model_url, **{k: m[k] for k in keys}}))
