"""`tide rollout start|status|pause|resume|promote|abort|retry`: the operator's handle on a rollout
(functions/traffic). Every control records who (--by, default the login name) and why (--reason) in the
audit trail.

Talks to the deployment named by --project/--stack (names from schemas.naming) on --target aws (the default) or
kubernetes (jobs/rollout_target.py) through the same service the scheduled function and the stack's rollout-tick
CronJob use; heavy imports stay inside the commands so `tide --help` is fast.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

import click

from jobs.rollout_target import TARGETS, Deployment
from schemas.naming import ENV_PROJECT, ENV_PROMETHEUS_URL, ENV_STACK

_deployment = [
    click.option("--project", default="tidewater", show_default=True, envvar=ENV_PROJECT),
    click.option("--stack", default="dev", show_default=True, envvar=ENV_STACK),
    click.option("--target", type=click.Choice(TARGETS), default="aws", show_default=True,
                 help="aws: DynamoDB + SageMaker + CloudWatch; kubernetes: ConfigMaps + KServe + Prometheus in the "
                      "serving namespace."),
    click.option("--namespace", default=None,
                 help="kubernetes: the serving namespace [default: <project>-<stack>-serving]"),
    click.option("--prometheus-url", envvar=ENV_PROMETHEUS_URL, default=None,
                 help=f"kubernetes: Prometheus' base URL, for the commands that read metrics (tick, start with a "
                      f"planning estimate) [env {ENV_PROMETHEUS_URL}]"),
    click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
                 help="kubernetes: the kubeconfig [default: $KUBECONFIG, ~/.kube/config, or in a pod its service "
                      "account]"),
    click.option("--context", default=None, help="kubernetes: the kubeconfig context [default: its current one]"),
]  # fmt: skip


def _with_deployment(f: Any) -> Any:
    """Add the deployment options; the command receives them as one `deployment: Deployment`."""

    @functools.wraps(f)
    def command(**kwargs: Any) -> Any:
        fields = ("project", "stack", "target", "namespace", "prometheus_url", "kubeconfig", "context")
        deployment = Deployment(**{k: kwargs.pop(k) for k in fields})
        return f(deployment=deployment, **kwargs)

    for option in reversed(_deployment):
        command = option(command)
    return command


@click.group()
def rollout() -> None:
    """Shift traffic between endpoint variants, judged by a sequential test.

    Every command takes --target aws (default: SageMaker variants, DynamoDB, CloudWatch) or --target kubernetes
    (KServe canaryTrafficPercent, ConfigMaps and Events in the serving namespace, Prometheus; with --namespace,
    --prometheus-url, --kubeconfig, --context), and --project/--stack naming the deployment."""


@rollout.command()
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rollout-id", default=None, help="Defaults to a random id.")
@click.option("--json", "as_json", is_flag=True, help="Print the new rollout's state as JSON.")
@_with_deployment
def start(config_file: Path, rollout_id: str | None, as_json: bool, deployment: Deployment) -> None:
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
        with deployment.errors():
            state = deployment.service().start(config, rollout_id)
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
def status(endpoint: str, as_json: bool, deployment: Deployment) -> None:
    """Show the endpoint's rollout, its decisions and what the judge still needs at the current traffic."""
    from functions.traffic.planning import estimate_lines, status_estimate

    with deployment.errors():
        state, audit = deployment.service().status(endpoint)
    if state is None:
        raise click.ClickException(f"no rollout on {endpoint} ({deployment.where})")
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
    f = _with_deployment(f)
    for option in reversed(_control_options):
        f = option(f)
    return f


def _control(deployment: Deployment, verb: str, act: Any) -> Any:
    """Run one operator action; a refused transition or an endpoint that did not take the weights is one line."""
    from functions.traffic.machine import TransitionError
    from functions.traffic.ports import BackendError, ConcurrentUpdate, RolloutExists

    try:
        with deployment.errors():
            return act(deployment.service())
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
def abort(endpoint: str, reason: str, actor: str, as_json: bool, deployment: Deployment) -> None:
    """Stop the rollout and send all traffic back to the champion (repeatable: it re-applies the weights)."""
    state = _control(deployment, "the abort", lambda s: s.abort(endpoint, reason, actor))
    if as_json:
        click.echo(json.dumps(state.model_dump(mode="json"), indent=2))
        return
    click.echo(f"{state.status} {state.rollout_id} on {endpoint}: weights {state.weights}")


@rollout.command()
@_with_control
def pause(endpoint: str, reason: str, actor: str, deployment: Deployment) -> None:
    """Freeze the weights; alarms and harm still roll the rollout back. `resume` continues it."""
    state = _control(deployment, "the pause", lambda s: s.pause(endpoint, reason, actor))
    click.echo(f"paused {state.rollout_id} on {endpoint} at weights {state.weights}")


@rollout.command()
@_with_control
@click.option("--extend-minutes", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Add to the maximum duration (e.g. after a hold at the timeout).")  # fmt: skip
def resume(endpoint: str, reason: str, actor: str, extend_minutes: float, deployment: Deployment) -> None:
    """Continue a paused or held rollout: the current step's bake starts again; time stopped does not count
    against the maximum duration."""
    state = _control(deployment, "the resume", lambda s: s.resume(endpoint, reason, actor, extend_minutes))
    click.echo(f"resumed {state.rollout_id} on {endpoint} at step {state.step}, weights {state.weights}")


@rollout.command()
@_with_control
def promote(endpoint: str, reason: str, actor: str, deployment: Deployment) -> None:
    """Promote now: all traffic to the challenger, skipping the remaining steps (audited with who and why)."""
    state = _control(deployment, "the promotion", lambda s: s.promote(endpoint, reason, actor))
    click.echo(f"promoted {state.rollout_id} on {endpoint}: weights {state.weights}")


@rollout.command()
@_with_control
@click.option("--rollout-id", default=None, help="The new rollout's id; defaults to <old id>-retry-<random>.")
def retry(endpoint: str, reason: str, actor: str, rollout_id: str | None, deployment: Deployment) -> None:
    """Start a rolled-back or aborted rollout again with the same config, from its first step."""
    state = _control(deployment, "the retry", lambda s: s.retry(endpoint, reason, actor, rollout_id))
    click.echo(f"started {state.rollout_id} on {endpoint} ({state.config.strategy.kind}): weights {state.weights}")


@rollout.command()
@click.argument("endpoints", nargs=-1)
@_with_deployment
def tick(endpoints: tuple[str, ...], deployment: Deployment) -> None:
    """Tick every live or not yet converged rollout (or the ENDPOINTS named) once, printing one JSON line per
    endpoint: what the scheduled function (aws) and the rollout-tick CronJob (kubernetes) run every minute.
    Exit 1 when an endpoint did not take its weights (the next tick re-applies them)."""
    from functions.traffic.service import tick_all

    with deployment.errors():
        outcome = tick_all(deployment.service(), list(endpoints) or None)
    for endpoint, action in sorted(outcome.items()):
        click.echo(json.dumps({"endpoint": endpoint, "action": action}))
    failed = sorted(e for e, action in outcome.items() if action.startswith("backend error"))
    if failed:
        raise click.ClickException(f"{', '.join(failed)}: the endpoint did not take the committed weights yet")
