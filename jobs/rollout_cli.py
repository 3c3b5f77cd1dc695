"""`tide rollout start|status|abort`: the operator's handle on a rollout (functions/traffic).

Talks to the deployment named by --project/--stack (names from schemas.naming) through the same service
the scheduled function uses; heavy imports stay inside the commands so `tide --help` is fast.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from schemas.naming import ENV_PROJECT, ENV_STACK


def _service(project: str, stack: str) -> Any:
    from functions.traffic.wiring import aws_rollouts
    from schemas.naming import Names

    return aws_rollouts(Names(project, stack))


@contextlib.contextmanager
def _cloud_errors(project: str, stack: str) -> Iterator[None]:
    """AWS's refusals as one line for the operator, naming the deployment, instead of a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from schemas.naming import Names

    try:
        yield
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            table = Names(project, stack).rollout_table
            raise click.ClickException(
                f"{err.response['Error'].get('Message', err)} (rollout table {table}): is stack {stack!r} of "
                f"{project!r} deployed, and are --project/--stack right?"
            ) from None
        raise click.ClickException(f"AWS refused: {err}") from None
    except BotoCoreError as err:
        raise click.ClickException(f"cannot reach AWS for {project}-{stack}: {err}") from None


_deployment = [
    click.option("--project", default="tidewater", show_default=True, envvar=ENV_PROJECT),
    click.option("--stack", default="dev", show_default=True, envvar=ENV_STACK),
]


def _with_deployment(f: Any) -> Any:
    for option in reversed(_deployment):
        f = option(f)
    return f


@click.group()
def rollout() -> None:
    """Shift traffic between endpoint variants, judged by a sequential test."""


@rollout.command()
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rollout-id", default=None, help="Defaults to a random id.")
@click.option("--json", "as_json", is_flag=True, help="Print the new rollout's state as JSON.")
@_with_deployment
def start(config_file: Path, rollout_id: str | None, as_json: bool, project: str, stack: str) -> None:
    """Start a rollout from a YAML or JSON config (endpoint, champion, challenger, strategy, ...)."""
    import yaml

    from functions.traffic.config import ConfigError, load_config
    from functions.traffic.ports import RolloutExists

    # The file is checked before any AWS client exists: a mistake in it is named even with no region set.
    try:
        raw = yaml.safe_load(config_file.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())  # one line, whatever the error
        raise click.ClickException(f"{config_file}: not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise click.ClickException(f"{config_file}: expected a mapping at the top level")
    try:
        config = load_config(raw)
    except ConfigError as err:
        raise click.ClickException(f"{config_file}: {err}") from None
    try:
        with _cloud_errors(project, stack):
            state = _service(project, stack).start(config, rollout_id)
    except RolloutExists as err:
        raise click.ClickException(f"{config_file}: {err}") from None
    if as_json:
        click.echo(json.dumps(state.model_dump(mode="json"), indent=2))
        return
    click.echo(
        f"started {state.rollout_id} on {state.endpoint} ({state.config.strategy.kind}): weights {state.weights}"
    )


@rollout.command()
@click.argument("endpoint")
@click.option("--json", "as_json", is_flag=True, help="Print the state and the audit trail as JSON.")
@_with_deployment
def status(endpoint: str, as_json: bool, project: str, stack: str) -> None:
    """Show the endpoint's rollout and its decisions."""
    with _cloud_errors(project, stack):
        state, audit = _service(project, stack).status(endpoint)
    if state is None:
        raise click.ClickException(f"no rollout on {endpoint}")
    if as_json:
        click.echo(json.dumps({"state": state.model_dump(mode="json"), "audit": audit}, indent=2))
        return
    click.echo(f"{state.endpoint} rollout {state.rollout_id} ({state.config.strategy.kind}): {state.status}")
    click.echo(f"step {state.step}, weights {state.weights}, {state.decisions} decisions; last: {state.reason}")
    for record in audit[-10:]:
        click.echo(f"  {record['at']}  {record['action']:<9} {record['reason']}")


@rollout.command()
@click.argument("endpoint")
@click.option("--reason", required=True, help="Recorded in the audit trail and the event.")
@click.option("--json", "as_json", is_flag=True, help="Print the rollout's state after the abort as JSON.")
@_with_deployment
def abort(endpoint: str, reason: str, as_json: bool, project: str, stack: str) -> None:
    """Stop the rollout and send all traffic back to the champion."""
    from functions.traffic.machine import TransitionError

    try:
        with _cloud_errors(project, stack):
            state = _service(project, stack).abort(endpoint, reason)
    except TransitionError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(state.model_dump(mode="json"), indent=2))
        return
    click.echo(f"aborted {state.rollout_id} on {endpoint}: weights {state.weights}")
