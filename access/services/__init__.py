"""Writes of just-in-time access, each in a transaction with its audit event.

``requests.py`` files, decides and cancels requests; ``grants.py`` grants, extends, revokes, closes
tickets and runs the expiry pass. Callers use this package: ``from access import services``.
"""

from .grants import (
    MAX_GRANT_ATTEMPTS,
    access_request_grant,
    access_request_retry,
    access_request_revoke,
    access_requests_expire,
    access_ticket_close,
)
from .requests import (
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_deny,
    find_account,
    missing_prerequisites,
    request_of,
    step_users,
)

__all__ = [
    "MAX_GRANT_ATTEMPTS",
    "access_request_approve",
    "access_request_cancel",
    "access_request_create",
    "access_request_deny",
    "access_request_grant",
    "access_request_retry",
    "access_request_revoke",
    "access_requests_expire",
    "access_ticket_close",
    "find_account",
    "missing_prerequisites",
    "request_of",
    "step_users",
]
