"""Model fields of the platform."""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def _fernet() -> MultiFernet:
    keys = getattr(settings, "FIELD_ENCRYPTION_KEYS", None)
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is not set")
    return MultiFernet([Fernet(k) for k in keys])


class EncryptedJSONField(models.TextField):
    """A JSON object stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256).

    The database column holds only the token; the Python value is a dict. Several keys
    may be configured: the first encrypts, every key decrypts, so keys can be rotated
    (see ``manage.py rotate_encryption_key``).
    """

    description = "A JSON object encrypted at rest"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is dict:
            del kwargs["default"]
        if kwargs.get("blank") is True:
            del kwargs["blank"]
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        try:
            plaintext = _fernet().decrypt(value.encode())
        except InvalidToken:
            raise ImproperlyConfigured(
                f"{self.model.__name__}.{self.name} cannot be decrypted with FIELD_ENCRYPTION_KEY "
                "(was the key changed without keeping the old one?)"
            ) from None
        return json.loads(plaintext)

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        return json.loads(value)

    def get_prep_value(self, value):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError(f"{self.name} must be a JSON object, not {type(value).__name__}")
        return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def value_to_string(self, obj):
        # Serialisation (dumpdata) never reveals the secrets.
        return ""
