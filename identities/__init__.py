"""People and their lifecycle: every portal user is a person (who may never sign in), with the attributes HR
knows of them; the People list and a person's page show who they are, what they hold in every integration
and how each of those permissions came to be held.

A person's name, email, manager, department and title stay on the user (``governance.models.User``): one
truth, which the approval workflows (the requester's manager) and the sign-in read. ``Person`` adds the rest
(employee id, display name, location, status, dates, attributes, the identity source that last fed it).
**Identity sources** (``IdentitySource``, ``services/sources.py``): an integration whose accounts create
and update people, applied after each of its syncs through the ``integrations.hooks.after_sync`` hook (in
the sync's transaction), with precedence between sources, managers resolved once everybody exists, and a
mass-leaver guard that holds a run terminating too many people until an admin confirms or discards it.
Later parts build on it: correlation of accounts to people, birthright, joiners, movers and leavers.

Layering: ``identities`` → ``integrations`` → ``governance``; never ``access`` (a peer). What a person's
page needs from just-in-time access (which request granted a permission, who approved it, the person's
open requests) comes through the hooks ``access`` registers (``integrations.hooks``).

Inner shape: ``models.py``, ``validators.py`` (a person's invariants: no manager cycle, dates in order,
bounded attributes; an identity source's mapping), ``services/`` (``people.py``: create, update, ensure;
``sources.py``: apply, confirm, discard an identity source), ``selectors.py`` (a person's accounts,
permissions with their provenance, requests and history), ``rights.py`` (who sees and edits whom),
``filters.py``, ``screens/`` (``people.py``, ``sources.py``), ``api/``, ``admin.py``, ``tests/``.
"""
