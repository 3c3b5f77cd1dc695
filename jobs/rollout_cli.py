"""`tide rollout start|status|pause|resume|promote|abort|retry`: the operator's handle on a rollout
(functions/traffic). Every control records who (--by, default the login name) and why (--reason) in the
audit trail.

Talks to the deployment named by --project/--stack (names from schemas.naming) through the same service
the scheduled function uses; heavy imports stay inside the commands so `tide --help` is fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
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
    from functions.traffic.planning import PlanError
    from functions.traffic.ports import BackendError, RolloutExists

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
    except (RolloutExists, PlanError) as err:
        raise click.ClickException(f"{config_file}: {err}") from None
    except BackendError as err:
        raise click.ClickException(
            f"started, but the endpoint did not take the first weights yet ({err}); the next tick applies them"
        ) from None
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
    """Show the endpoint's rollout, its decisions and what the judge still needs at the current traffic."""
    from functions.traffic.planning import estimate_lines, status_estimate

    with _cloud_errors(project, stack):
        state, audit = _service(project, stack).status(endpoint)
    if state is None:
        raise click.ClickException(f"no rollout on {endpoint}")
    judged = state.status in ("running", "held", "paused")  # verifying: nothing left for the judge to compare
    estimate = status_estimate(state, dt.datetime.now(dt.UTC)) if judged else None
    if as_json:
        doc = {"state": state.model_dump(mode="json"), "audit": audit, "estimate": estimate}
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"{state.endpoint} rollout {state.rollout_id} ({state.config.strategy.kind}): {state.status}")
    click.echo(f"step {state.step}, weights {state.weights}, {state.decisions} decisions; last: {state.reason}")
    if state.pending:
        click.echo("  not yet confirmed on the endpoint (weights or events pending): the next tick converges it")
    if estimate is not None:
        for line in estimate_lines(estimate):
            click.echo(f"  {line}")
    for record in audit[-10:]:
        click.echo(f"  {record['at']}  {record['action']:<9} {record['reason']}")


def _actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return ""


_control_options = [
    click.argument("endpoint"),
    click.option("--reason", required=True, help="Recorded in the audit trail (and the event, if any)."),
    click.option("--by", "actor", default=_actor, show_default="your login name", help="Who asks (audited)."),
]


def _with_control(f: Any) -> Any:
    for option in reversed([*_control_options, *_deployment]):
        f = option(f)
    return f


def _control(project: str, stack: str, verb: str, act: Any) -> Any:
    """Run one operator action; a refused transition or an endpoint that did not take the weights is one line."""
    from functions.traffic.machine import TransitionError
    from functions.traffic.ports import BackendError, ConcurrentUpdate, RolloutExists

    try:
        with _cloud_errors(project, stack):
            return act(_service(project, stack))
    except (TransitionError, RolloutExists, ConcurrentUpdate) as err:
        raise click.ClickException(str(err)) from None
    except BackendError as err:
        raise click.ClickException(
            f"{verb} is committed, but the endpoint did not take the weights yet ({err}); the next scheduled tick "
            "applies them (or run the command again)"
        ) from None


@rollout.command()
@_with_control
@click.option("--json", "as_json", is_flag=True, help="Print the rollout's state after the abort as JSON.")
def abort(endpoint: str, reason: str, actor: str, as_json: bool, project: str, stack: str) -> None:
    """Stop the rollout and send all traffic back to the champion (repeatable: it re-applies the weights)."""
    state = _control(project, stack, "the abort", lambda s: s.abort(endpoint, reason, actor))
    if as_json:
        click.echo(json.dumps(state.model_dump(mode="json"), indent=2))
        return
    click.echo(f"{state.status} {state.rollout_id} on {endpoint}: weights {state.weights}")


@rollout.command()
@_with_control
def pause(endpoint: str, reason: str, actor: str, project: str, stack: str) -> None:
    """Freeze the weights; alarms and harm still roll the rollout back. `resume` continues it."""
    state = _control(project, stack, "the pause", lambda s: s.pause(endpoint, reason, actor))
    click.echo(f"paused {state.rollout_id} on {endpoint} at weights {state.weights}")


@rollout.command()
@_with_control
@click.option("--extend-minutes", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Add to the maximum duration (e.g. after a hold at the timeout).")  # fmt: skip
def resume(endpoint: str, reason: str, actor: str, extend_minutes: float, project: str, stack: str) -> None:
    """Continue a paused or held rollout: the current step's bake starts again; time stopped does not count
    against the maximum duration."""
    state = _control(project, stack, "the resume", lambda s: s.resume(endpoint, reason, actor, extend_minutes))
    click.echo(f"resumed {state.rollout_id} on {endpoint} at step {state.step}, weights {state.weights}")


@rollout.command()
@_with_control
def promote(endpoint: str, reason: str, actor: str, project: str, stack: str) -> None:
    """Promote now: all traffic to the challenger, skipping the remaining steps (audited with who and why)."""
    state = _control(project, stack, "the promotion", lambda s: s.promote(endpoint, reason, actor))
    click.echo(f"promoted {state.rollout_id} on {endpoint}: weights {state.weights}")


@rollout.command()
@_with_control
@click.option("--rollout-id", default=None, help="The new rollout's id; defaults to <old id>-retry-<random>.")
def retry(endpoint: str, reason: str, actor: str, rollout_id: str | None, project: str, stack: str) -> None:
    """Start a rolled-back or aborted rollout again with the same config, from its first step."""
    state = _control(project, stack, "the retry", lambda s: s.retry(endpoint, reason, actor, rollout_id))
    click.echo(f"started {state.rollout_id} on {endpoint} ({state.config.strategy.kind}): weights {state.weights}")
