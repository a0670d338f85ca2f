"""Just-in-time access: access requests, their approvers' decisions, grants through the connector,
tickets where the application is changed by hand, revokes and expiry.

An approval workflow is chosen in the inventory (``integrations.models.ApprovalWorkflow``: the
integration, resource or role names it); this app snapshots the matching rule's steps on each request
and walks them. Layering: ``access`` → ``integrations`` → ``governance``; the inventory never imports
this app, it calls the hooks this app registers in ``apps.py`` (``integrations.hooks``).

Inner shape: ``models.py``, ``services/`` (``requests.py``: file, decide, cancel; ``grants.py``: grant,
extend, revoke, close tickets, the expiry pass), ``selectors.py`` (the catalogue, who sees which request, a request's history),
``tasks.py`` (grant, the expiry pass), ``screens/``, ``api/``, ``filters.py``, ``admin.py``, ``tests/``.
"""
