"""One line for the operator instead of a traceback: the errors any `tide` command may meet, named.

The group in jobs.cli runs every command inside `known_errors()`; a command that knows more context (which
stack, which file) catches first and says so. Only the error types listed here are translated: anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

CREDENTIALS_HINT = "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or run `aws configure`)"
REGION_HINT = "set AWS_REGION or AWS_DEFAULT_REGION (or a region in ~/.aws/config)"


@contextlib.contextmanager
def known_errors() -> Iterator[None]:
    """Translate the platform's own error types and the AWS SDK's setup errors into a ClickException."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    from schemas.contract import ContractError
    from schemas.profile import ProfileError

    try:
        yield
    except NoCredentialsError:
        raise click.ClickException(f"no AWS credentials found: {CREDENTIALS_HINT}") from None
    except NoRegionError:
        raise click.ClickException(f"no AWS region configured: {REGION_HINT}") from None
    except ClientError as err:
        error = err.response.get("Error", {})
        problem = f"{error.get('Code')}: {error.get('Message')}"
        raise click.ClickException(f"AWS refused {err.operation_name}: {problem}") from None
    except BotoCoreError as err:
        raise click.ClickException(f"cannot reach AWS: {err}") from None
    except (ContractError, ProfileError) as err:
        raise click.ClickException(str(err)) from None
