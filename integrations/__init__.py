"""The inventory: integrations, agents, resources, roles, accounts, permissions and their governance.

Maintainers, tags, prerequisites, approval workflows (integrations, resources and roles name theirs,
so they live here), rules, bulk changes, the connector catalogue and the sync engine (``sync/``).

Layering: this app uses ``governance`` and ``connectors`` only. The apps above it (``access``, and
later ``identities`` and ``reviews``) import it; it never imports them. Where the inventory needs
their work it offers a hook (``hooks.py``) they register into, or a setting names their screen
(``LANDING_URL_NAME``). ``governance/tests/test_layers.py`` checks it.

Inner shape, as in every app: ``models.py``, ``services/`` (writes, each audited), ``selectors.py``
(reads), ``validators.py`` (what models, services and forms check alike), ``rights.py`` (who may do
what: the screens and the API ask here), ``tasks.py`` (thin Celery wrappers), ``screens/``, ``api/``,
``filters.py``, ``admin.py``, ``tests/``.
"""
