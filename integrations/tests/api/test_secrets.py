"""A stored secret is never sent anywhere but where it was stored for, never read from the portal's own
settings, and every change of a secret is audited without its value.

The "attacker" is a real HTTP server on localhost that records what it receives; the integration is a
SCIM application whose connector sends its bearer token in the Authorization header.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from governance.models import AuditEvent
from integrations import services
from integrations.models import Agent, Integration

TOKEN = "s3cr3t-token-of-the-real-server"


class Recorder(ThreadingHTTPServer):
    """A SCIM-looking server that answers every GET with an empty list and records the headers it got."""

    daemon_threads = True

    def __init__(self):
        self.seen: list[dict[str, str]] = []

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.seen.append(dict(self.headers))
                body = json.dumps({"totalResults": 0, "Resources": [], "itemsPerPage": 0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/scim+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/scim/v2"

    def authorizations(self) -> list[str]:
        return [h.get("Authorization", "") for h in self.seen]


@pytest.fixture
def servers():
    made = []

    def make() -> Recorder:
        made.append(Recorder())
        return made[-1]

    yield make
    for s in made:
        s.shutdown()
        s.server_close()


@pytest.fixture
def scim(people, servers):
    """A SCIM integration, stored by an admin with its token, maintained by ``maintainer``."""
    real = servers()
    integration = services.integration_create(
        actor=people["admin"],
        application="scim",
        name="Directory over SCIM",
        owner=people["owner"],
        connection_config={"connectionOption": "bearer", "baseUrl": real.url, "token": TOKEN, "pageSize": 50},
    )
    services.maintainer_add(actor=people["admin"], integration=integration, user=people["maintainer"])
    return integration, real


def _url(integration, tail=""):
    return f"/api/integrations/{integration.pk}/{tail}"


def _plain(integration: Integration, **changes) -> dict:
    return {**integration.connection_config, **changes}


@pytest.mark.parametrize("token", [None, ""])
def test_changing_the_address_needs_the_token_again_so_it_never_reaches_the_new_one(
    scim, servers, client_for, token
):
    integration, real = scim
    attacker = servers()
    maintainer = client_for("maintainer")
    change = {"baseUrl": attacker.url} if token is None else {"baseUrl": attacker.url, "token": token}

    r = maintainer.patch(
        _url(integration), {"connection_config": _plain(integration, **change)}, format="json"
    )
    assert r.status_code == 400, r.content
    assert "give them again in the same change" in json.dumps(r.json())
    integration.refresh_from_db()
    assert integration.connection_config["baseUrl"] == real.url
    assert integration.connection_secrets == {"token": TOKEN}

    r = maintainer.post(_url(integration, "test-connection/"))
    assert r.json()["ok"] is True
    assert attacker.seen == [] and real.authorizations()[-1] == f"Bearer {TOKEN}"


def test_secrets_not_given_again_with_a_new_address_are_cleared_and_audited(people, client_for):
    from conftest import DEMO_CONFIG

    config = {**DEMO_CONFIG, "apiToken": "demo", "password": "the-old-password"}
    integration = services.integration_create(
        actor=people["admin"], application="demo", name="Demo", connection_config=config
    )
    moved = {**integration.connection_config, "url": "https://demo.example.com:443", "apiToken": "demo"}
    r = client_for("admin").patch(_url(integration), {"connection_config": moved}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["connection_secrets"] == {"apiToken": "set", "password": "unset"}
    integration.refresh_from_db()
    assert integration.connection_secrets == {"apiToken": "demo"}

    update = AuditEvent.objects.filter(action="integration.update", object_id=str(integration.pk)).latest(
        "id"
    )  # one event: which secrets were cleared, and the address change that cleared them
    assert update.details["secrets"] == {"password": "cleared"}
    assert update.details["changes"]["connection_config"]["to"]["url"] == "https://demo.example.com:443"
    assert "the-old-password" not in json.dumps([e.details for e in AuditEvent.objects.all()])


def test_a_new_address_with_a_new_token_keeps_only_the_new_token(scim, servers, client_for):
    integration, real = scim
    other = servers()
    r = client_for("admin").patch(
        _url(integration),
        {"connection_config": _plain(integration, baseUrl=other.url, token="token-for-the-other-server")},
        format="json",
    )
    assert r.status_code == 200, r.content
    client_for("admin").post(_url(integration, "test-connection/"))
    assert other.authorizations() and set(other.authorizations()) == {"Bearer token-for-the-other-server"}
    assert real.seen == []


@pytest.mark.parametrize(
    "change",
    [
        {"pageSize": 20},  # not an address: the token stays
        {"baseUrl": None},  # the same address, written another way below
    ],
)
def test_a_change_that_does_not_move_the_connection_keeps_the_token(scim, client_for, change):
    integration, real = scim
    if change.get("baseUrl", 0) is None:
        change = {"baseUrl": " " + integration.connection_config["baseUrl"] + " "}
    r = client_for("maintainer").patch(
        _url(integration), {"connection_config": _plain(integration, **change)}, format="json"
    )
    assert r.status_code == 200, r.content
    integration.refresh_from_db()
    assert integration.connection_secrets == {"token": TOKEN}
    r = client_for("maintainer").post(_url(integration, "test-connection/"))
    assert r.json()["ok"] is True, r.json()
    assert real.authorizations()[-1] == f"Bearer {TOKEN}"


def test_moving_an_integration_to_another_agent_needs_its_secrets_again(scim, people):
    from django.core.exceptions import ValidationError

    integration, _ = scim
    agent = Agent.objects.create(name="eu-office")
    with pytest.raises(ValidationError, match="agent changed"):
        services.integration_update(actor=people["admin"], integration=integration, agent=agent)
    integration.refresh_from_db()
    assert integration.agent is None and integration.connection_secrets == {"token": TOKEN}

    ref = {"$env": "GOVERNANCE_SECRET_EU_SCIM_TOKEN"}  # resolved on the agent
    services.integration_update(
        actor=people["admin"],
        integration=integration,
        agent=agent,
        connection_config={**integration.connection_config, "token": ref},
    )
    integration.refresh_from_db()
    assert integration.agent == agent and integration.connection_secrets == {"token": ref}


def test_replacing_a_secret_is_audited_by_name_never_by_value(scim, client_for):
    integration, _ = scim
    r = client_for("maintainer").patch(
        _url(integration),
        {"connection_config": _plain(integration, token="a-brand-new-token")},
        format="json",
    )
    assert r.status_code == 200
    event = AuditEvent.objects.filter(action="integration.update", object_id=str(integration.pk)).latest("id")
    assert event.details["secrets"] == {"token": "replaced"}
    everything = json.dumps([e.details for e in AuditEvent.objects.all()])
    assert TOKEN not in everything and "a-brand-new-token" not in everything


@pytest.mark.parametrize("name", ["FIELD_ENCRYPTION_KEY", "SECRET_KEY", "DATABASE_URL"])
def test_the_portals_own_settings_cannot_be_referenced(scim, client_for, name):
    integration, _ = scim
    for who in ("maintainer", "admin"):
        r = client_for(who).patch(
            _url(integration), {"connection_config": _plain(integration, token={"$env": name})}, format="json"
        )
        assert r.status_code == 400, (who, r.content)
    integration.refresh_from_db()
    assert integration.connection_secrets == {"token": TOKEN}


def test_only_admins_set_environment_references_and_they_resolve_only_prefixed_names(
    scim, client_for, monkeypatch
):
    integration, real = scim
    monkeypatch.setenv("GOVERNANCE_SECRET_SCIM", "token-from-the-environment")
    ref = {"$env": "GOVERNANCE_SECRET_SCIM"}
    r = client_for("maintainer").patch(
        _url(integration), {"connection_config": _plain(integration, token=ref)}, format="json"
    )
    assert r.status_code == 400 and "only admins" in json.dumps(r.json())
    r = client_for("admin").patch(
        _url(integration), {"connection_config": _plain(integration, token=ref)}, format="json"
    )
    assert r.status_code == 200, r.content
    # Once an admin stored it, a maintainer's unrelated change keeps it.
    r = client_for("maintainer").patch(
        _url(integration), {"connection_config": _plain(integration, pageSize=10)}, format="json"
    )
    assert r.status_code == 200, r.content
    r = client_for("maintainer").post(_url(integration, "test-connection/"))
    assert r.json()["ok"] is True
    assert real.authorizations()[-1] == "Bearer token-from-the-environment"


def test_a_reference_stored_before_the_rule_never_reads_the_portals_settings(scim, client_for, monkeypatch):
    """A reference to an unprefixed name already in the database (say, from an older version) fails
    with the same words whether the variable exists or not, and nothing is sent; a sync (which does not
    check the policy first) finds only prefixed names in its environment."""
    integration, real = scim
    monkeypatch.delenv("NO_SUCH_VARIABLE_ANYWHERE", raising=False)
    messages = []
    for name in ("FIELD_ENCRYPTION_KEY", "NO_SUCH_VARIABLE_ANYWHERE"):
        Integration.objects.filter(pk=integration.pk).update(connection_secrets={"token": {"$env": name}})
        r = client_for("admin").post(_url(integration, "test-connection/"))
        assert r.json()["ok"] is False
        messages.append(r.json()["message"].replace(name, "NAME"))
    assert messages[0] == messages[1] and "beginning with GOVERNANCE_SECRET_" in messages[0]
    assert real.seen == []


def test_a_sync_resolves_references_against_prefixed_names_only(scim, people):
    from integrations.sync import SyncError, sync_integration

    integration, real = scim
    Integration.objects.filter(pk=integration.pk).update(connection_secrets={"token": {"$env": "SECRET_KEY"}})
    integration.refresh_from_db()
    # Refused by the connection policy checked before each run (else: not in the connector's environment).
    with pytest.raises(SyncError, match="must name a variable beginning with GOVERNANCE_SECRET_"):
        sync_integration(actor=people["admin"], integration=integration, full=True)
    assert real.seen == []
    from integrations.catalogue import secret_environ

    assert "SECRET_KEY" not in secret_environ()


def test_a_stored_reference_given_again_does_not_follow_a_new_address(scim, servers, client_for, monkeypatch):
    """A maintainer cannot carry an admin's environment reference to an address of their choosing by
    writing the reference again next to the new address: its value would be sent there."""
    integration, real = scim
    monkeypatch.setenv("GOVERNANCE_SECRET_SCIM", "token-from-the-environment")
    ref = {"$env": "GOVERNANCE_SECRET_SCIM"}
    r = client_for("admin").patch(
        _url(integration), {"connection_config": _plain(integration, token=ref)}, format="json"
    )
    assert r.status_code == 200, r.content
    attacker = servers()

    r = client_for("maintainer").patch(
        _url(integration),
        {"connection_config": _plain(integration, baseUrl=attacker.url, token=ref)},
        format="json",
    )
    assert r.status_code == 400, r.content
    assert "only admins" in json.dumps(r.json())
    integration.refresh_from_db()
    assert integration.connection_config["baseUrl"] == real.url and integration.connection_secrets == {
        "token": ref
    }
    client_for("maintainer").post(_url(integration, "test-connection/"))
    assert attacker.seen == []
    # An admin may move it with the reference.
    r = client_for("admin").patch(
        _url(integration),
        {"connection_config": _plain(integration, baseUrl=attacker.url, token=ref)},
        format="json",
    )
    assert r.status_code == 200, r.content


LDAP = {
    "connectionOption": "ldaps",
    "host": "ldap.example.invalid",
    "bindDn": "cn=admin,dc=example,dc=org",
    "baseDn": "dc=example,dc=org",
}


@pytest.mark.parametrize("option", ["ldap", "starttls", None])
def test_changing_the_connection_option_needs_the_secrets_again(people, client_for, option):
    """The connection option decides the TLS mode (and LDAP's default port): from LDAPS to plain LDAP the
    stored password would cross the network in clear. ``None``: no option named, which is the first (ldap)."""
    integration = services.integration_create(
        actor=people["admin"],
        application="ldap",
        name="Directory",
        connection_config={**LDAP, "password": "the-bind-password"},
    )
    services.maintainer_add(actor=people["admin"], integration=integration, user=people["maintainer"])
    changed = {k: v for k, v in integration.connection_config.items() if k != "connectionOption"}
    if option is not None:
        changed["connectionOption"] = option
    r = client_for("maintainer").patch(_url(integration), {"connection_config": changed}, format="json")
    assert r.status_code == 400, r.content
    assert "connectionOption changed" in json.dumps(r.json())
    integration.refresh_from_db()
    assert integration.connection_config["connectionOption"] == "ldaps"
    assert integration.connection_secrets == {"password": "the-bind-password"}

    r = client_for("maintainer").patch(
        _url(integration), {"connection_config": {**changed, "password": "typed-again"}}, format="json"
    )
    assert r.status_code == 200, r.content
    integration.refresh_from_db()
    assert integration.connection_secrets == {"password": "typed-again"}
    update = AuditEvent.objects.filter(action="integration.update", object_id=str(integration.pk)).latest(
        "id"
    )
    assert update.details["secrets"] == {"password": "replaced"}


def test_naming_the_default_connection_option_keeps_the_secrets(people, client_for):
    config = {k: v for k, v in LDAP.items() if k != "connectionOption"}
    integration = services.integration_create(
        actor=people["admin"],
        application="ldap",
        name="Directory",
        connection_config={**config, "password": "pw"},
    )
    services.maintainer_add(actor=people["admin"], integration=integration, user=people["maintainer"])
    r = client_for("maintainer").patch(
        _url(integration), {"connection_config": {**config, "connectionOption": "ldap"}}, format="json"
    )
    assert r.status_code == 200, r.content
    integration.refresh_from_db()
    assert integration.connection_secrets == {"password": "pw"}


def test_a_connection_now_pointing_at_a_metadata_address_is_not_used_by_syncs_or_grants(scim, people):
    """A host name checked when saved may resolve elsewhere later (here: the saved config is changed
    underneath, as a DNS change would): each run of the portal checks the address again, and neither a
    sync nor a grant connects there."""
    from access.services import grants
    from connectors.sdk import ConnectorError
    from integrations.sync import SyncError, sync_integration

    integration, real = scim
    config = {**integration.connection_config, "baseUrl": "http://169.254.169.254/scim/v2", "timeout": 1}
    Integration.objects.filter(pk=integration.pk).update(connection_config=config)
    integration.refresh_from_db()
    with pytest.raises(SyncError, match="link-local or cloud metadata address"):
        sync_integration(actor=people["admin"], integration=integration, full=True)
    integration.refresh_from_db()
    assert "link-local" in integration.last_sync_error
    with pytest.raises(ConnectorError, match="link-local or cloud metadata address"):
        grants._invoke(integration, "std:account:read", {"identity": "someone"})
