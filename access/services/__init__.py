"""Writes of just-in-time access, each in a transaction with its audit event (see ``requests.py``)."""
