"""Writes of people, each in a transaction with its audit event. Callers use this package:
``from identities import services``."""

from .people import PERSON_FIELDS, USER_FIELDS, person_create, person_ensure, person_update

__all__ = ["PERSON_FIELDS", "USER_FIELDS", "person_create", "person_ensure", "person_update"]
