"""Which AWS errors are transient (retry the message) and which say the object is gone (do not retry).

botocore already retried a transient error before it reaches us (standard retry mode); one that still
surfaces fails the record, and SQS redelivers it until the dead-letter queue. The code lists are botocore's
own (botocore.retries.standard), so the classification matches the retries that ran first.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

_THROTTLED: frozenset[str] = frozenset(getattr(ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES"))  # noqa: B009
_TRANSIENT: frozenset[str] = frozenset(getattr(TransientRetryableChecker, "_TRANSIENT_ERROR_CODES")) | {  # noqa: B009
    "InternalError",
    "ServiceUnavailable",
}
_TRANSIENT_STATUS: frozenset[int] = frozenset(getattr(TransientRetryableChecker, "_TRANSIENT_STATUS_CODES"))  # noqa: B009
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404", "PreconditionFailed", "412"})


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def is_transient(err: BaseException) -> bool:
    if isinstance(err, ConnectionError | HTTPClientError):
        return True
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error_code(err) in _THROTTLED | _TRANSIENT or status in _TRANSIENT_STATUS
    return False


def is_gone(err: ClientError) -> bool:
    """The object or the version the event named no longer exists, or was overwritten (If-Match failed)."""
    return error_code(err) in GONE_CODES
