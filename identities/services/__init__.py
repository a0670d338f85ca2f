"""Writes of people and identity sources, each in a transaction with its audit event. Callers use this
package: ``from identities import services``."""

from .people import PERSON_FIELDS, USER_FIELDS, person_build, person_create, person_ensure, person_update
from .sources import (
    identity_source_apply,
    identity_source_confirm,
    identity_source_discard,
    identity_source_save,
)

__all__ = [
    "PERSON_FIELDS",
    "USER_FIELDS",
    "identity_source_apply",
    "identity_source_confirm",
    "identity_source_discard",
    "identity_source_save",
    "person_build",
    "person_create",
    "person_ensure",
    "person_update",
]
