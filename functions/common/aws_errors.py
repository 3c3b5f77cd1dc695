"""AWS errors that say the object an event named is gone, as opposed to errors worth retrying.

Anything else (throttling, 5xx and connection errors after botocore's own retries, but also permissions
or an archived object) fails the record: SQS redelivers it, and a permanent problem ends in the
dead-letter queue for a person, so no file is silently dropped.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

# NoSuchKey/NoSuchVersion: deleted; 404 is what HEAD-style responses carry; PreconditionFailed: If-Match lost
# against a newer object in an unversioned bucket (overwritten).
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404", "PreconditionFailed", "412"})


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def is_gone(err: ClientError) -> bool:
    """The object or the version the event named no longer exists, or was overwritten (If-Match failed)."""
    return error_code(err) in GONE_CODES
