"""The LDAP connector against a real OpenLDAP server.

A session fixture starts a private ``slapd`` (slapd.conf with the memberof and refint overlays, an LDAP
listener that also offers StartTLS and an LDAPS listener, both on spare loopback ports, with a throwaway CA
and server certificate) and fills it with ldap3. Access rules give a read-only service account and one
that cannot see the groups.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import ldap3
import pytest

from connectors.ldap.connector import connector as ldap_connector
from connectors.ldap.connector import norm_dn
from connectors.sdk import ConfigError, ConnectorError, InputError, ObjectNotFound, StateError
from connectors.testing import (
    ConnectorAcceptanceSuite,
    assert_connection_errors,
    free_port,
    make_certificates,
    stop_process,
)
from connectors.testing import connection_error as _connection_error

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
SERVICE_PASSWORD = "service-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SERVICES = f"ou=services,{SUFFIX}"
READER = f"cn=reader,{SERVICES}"
BLIND = f"cn=blind,{SERVICES}"

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
{tls}
database mdb
maxsize 1073741824
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {d}/db
index objectClass eq
index uid,cn,member,uniqueMember,owner eq
index modifyTimestamp eq
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to dn.subtree="{groups}"
    by dn.exact="{blind}" none
    by users read
access to *
    by users read
    by anonymous auth
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member uniqueMember owner
"""


class Slapd:
    """A private slapd in the foreground: ``start()``, ``stop()``; ``port`` (LDAP and StartTLS), ``tls_port``."""

    def __init__(self, *, tls: bool = True, ldif: str | None = None):
        if not os.path.exists(SLAPD):
            raise RuntimeError(f"{SLAPD} is missing: install the slapd package (scripts/services.sh does)")
        self.folder = Path(tempfile.mkdtemp(prefix="gov-slapd-"))
        (self.folder / "db").mkdir()
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        tls_conf = ""
        if tls:
            make_certificates(self.folder, san="DNS:localhost,IP:127.0.0.1")
            tls_conf = (
                f"TLSCACertificateFile {self.folder}/ca.crt\n"
                f"TLSCertificateFile {self.folder}/server.crt\n"
                f"TLSCertificateKeyFile {self.folder}/server.key"
            )
        conf = SLAPD_CONF.format(
            d=self.folder, tls=tls_conf, suffix=SUFFIX, admin=ADMIN_DN, password=ADMIN_PASSWORD,
            groups=GROUPS, blind=BLIND,
        )  # fmt: skip
        (self.folder / "slapd.conf").write_text(conf)
        if ldif is not None:
            (self.folder / "data.ldif").write_text(ldif)
            subprocess.run(
                ["/usr/sbin/slapadd", "-q", "-f", str(self.folder / "slapd.conf"), "-l", str(self.folder / "data.ldif")],
                check=True, capture_output=True,
            )  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def ca(self, name: str = "ca") -> str:
        return (self.folder / f"{name}.crt").read_text()

    def start(self) -> Slapd:
        urls = f"ldap://127.0.0.1:{self.port}/"
        if self.tls_port:
            urls += f" ldaps://127.0.0.1:{self.tls_port}/"
        log = open(self.folder / "slapd.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-h", urls, "-f", str(self.folder / "slapd.conf")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (self.folder / "slapd.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"slapd did not start: {log_text}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)

    def admin(self) -> ldap3.Connection:
        server = ldap3.Server("127.0.0.1", port=self.port, get_info=ldap3.NONE)
        return ldap3.Connection(server, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True)


def person(uid: str, given: str, sn: str, **extra) -> tuple[str, list[str], dict]:
    attrs = {"uid": uid, "cn": f"{given} {sn}", "givenName": given, "sn": sn, "mail": f"{uid}@example.org"}
    return f"uid={uid},{PEOPLE}", ["inetOrgPerson"], {**attrs, **extra}


def group(cn: str, members: list[str], owners: list[str] = (), **extra) -> tuple[str, list[str], dict]:
    attrs = {"cn": cn, "member": members, **extra}
    if owners:
        attrs["owner"] = list(owners)
    return f"cn={cn},{GROUPS}", ["groupOfNames"], attrs


def uid(name: str) -> str:
    return f"uid={name},{PEOPLE}"


def gdn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def populate(conn: ldap3.Connection) -> None:
    conn.add(SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
    for ou in ("people", "groups", "services"):
        conn.add(f"ou={ou},{SUFFIX}", ["organizationalUnit"], {"ou": ou})
    for dn in (READER, BLIND):
        cn = dn.split(",")[0][3:]
        conn.add(
            dn, ["organizationalRole", "simpleSecurityObject"], {"cn": cn, "userPassword": SERVICE_PASSWORD}
        )
    entries = [
        person("alice", "Alice", "Archer", title="Engineer", employeeNumber="1001"),
        person("bob", "Bob", "Baker", title="Engineer"),
        person("carol", "Carol", "Cooper", title="Manager", description="Runs engineering"),
        person("dave", "Dave", "Dean", title="Accountant"),
        person("eve", "Eve", "Evans", title="Auditor"),
        group("engineering", [uid("alice"), uid("bob")], [uid("carol")], description="Engineers"),
        group("admins", [uid("alice")]),
        group("staff", [gdn("engineering"), uid("dave")]),
    ]
    for dn, classes, attrs in entries:
        conn.add(dn, classes, attrs)
    conn.add(f"cn=legacy,{GROUPS}", ["groupOfUniqueNames"], {"cn": "legacy", "uniqueMember": [uid("eve")]})


@pytest.fixture(scope="session")
def slapd():
    server = Slapd().start()
    try:
        with server.admin() as conn:
            populate(conn)
        yield server
    finally:
        server.stop()


def base_config(server: Slapd, **extra) -> dict:
    return {
        "connectionOption": "ldap",
        "host": "127.0.0.1",
        "port": server.port,
        "bindDn": ADMIN_DN,
        "password": ADMIN_PASSWORD,
        "connectTimeout": 5,
        "baseDn": SUFFIX,
        "userBaseDn": PEOPLE,
        "groupBaseDn": GROUPS,
        "userMemberOfAttribute": "memberOf",
        "groupOwnerAttribute": "owner",
        "provisioning": True,
        **extra,
    }


def run(command: str, config: dict, input: dict | None = None):
    return ldap_connector.invoke(command, config, input)


def listing(config: dict, command: str = "std:account:list", **input) -> dict[str, dict]:
    outputs, _ = run(command, config, input)
    return {o["identity"]: o for o in outputs}


def connection_error(config: dict) -> str:
    return _connection_error(ldap_connector, config, secrets=(ADMIN_PASSWORD, SERVICE_PASSWORD))


def wait_past(stamp: str) -> None:
    """Wait until the clock is past an LDAP generalized time (modifyTimestamp has 1-second granularity)."""
    deadline = time.monotonic() + 5
    while time.strftime("%Y%m%d%H%M%SZ", time.gmtime()) <= stamp:
        assert time.monotonic() < deadline, f"clock does not pass {stamp}"
        time.sleep(0.05)


# -- the acceptance suite ---------------------------------------------------------------------------------


class TestLdapAcceptance(ConnectorAcceptanceSuite):
    """Plain LDAP, memberships read from memberOf, owner roles from groupOfNames' owner."""

    @pytest.fixture
    def connector(self):
        return ldap_connector

    @pytest.fixture
    def good_config(self, slapd):
        return base_config(slapd)

    @pytest.fixture
    def bad_configs(self, good_config, slapd):
        return {
            "wrong password": {**good_config, "password": "not-the-password"},
            "wrong host": {**good_config, "host": "no-such-host.invalid"},
            "wrong port": {**good_config, "port": free_port()},
            "unknown base DN": {**good_config, "baseDn": "dc=nowhere,dc=org"},
            "no read access to the groups": {**good_config, "bindDn": BLIND, "password": SERVICE_PASSWORD},
            "LDAPS to the plain port": {
                **good_config,
                "connectionOption": "ldaps",
                "caCertificate": slapd.ca(),
            },
        }

    @pytest.fixture
    def new_account(self):
        return {
            "identity": "acceptance",
            "attributes": {"givenName": "Accept", "sn": "Ance", "mail": "acc@example.org"},
        }


class TestLdapAcceptanceStartTlsWithoutMemberOf(TestLdapAcceptance):
    """StartTLS with a CA certificate; memberships read from the groups; no owner role."""

    @pytest.fixture
    def good_config(self, slapd):
        return base_config(
            slapd,
            connectionOption="starttls",
            host="localhost",
            caCertificate=slapd.ca(),
            userMemberOfAttribute="",
            groupOwnerAttribute="",
            pageSize=2,
        )


# -- connection --------------------------------------------------------------------------------------------


def test_connection_errors_name_the_reason(slapd):
    good = base_config(slapd)
    port = free_port()
    assert_connection_errors(
        ldap_connector,
        good,
        {
            "wrong port": ({**good, "port": port}, f"cannot connect to 127.0.0.1:{port}: connection refused"),
            "unknown host": (
                {**good, "host": "no-such-host.invalid"},
                f"cannot connect to no-such-host.invalid:{slapd.port}: unknown host no-such-host.invalid",
            ),
            "wrong password": (
                {**good, "password": "nope"},
                f"authentication failed for {ADMIN_DN} at 127.0.0.1:{slapd.port}: wrong password or no such entry",
            ),
            "no read access to the groups": (
                {**good, "bindDn": BLIND, "password": SERVICE_PASSWORD},
                f"groupBaseDn {GROUPS} does not exist or the service account {BLIND} cannot read it "
                "(it needs read access to the users and groups)",
            ),
        },
        secrets=(ADMIN_PASSWORD, SERVICE_PASSWORD),
    )
    assert connection_error({**good, "bindDn": f"cn=nobody,{SUFFIX}"}).startswith(
        "authentication failed for cn=nobody"
    )
    assert "userBaseDn ou=nobody" in connection_error({**good, "userBaseDn": f"ou=nobody,{SUFFIX}"})
    with pytest.raises(ConfigError, match="userFilter.*unbalanced"):
        run("std:test-connection", {**good, "userFilter": "(|(uid=a)"})
    # The read-only account connects: a missing write privilege shows when provisioning (see below).
    assert run("std:test-connection", {**good, "bindDn": READER, "password": SERVICE_PASSWORD})[0] == [{}]


def test_tls_options(slapd):
    good = base_config(slapd, host="localhost", caCertificate=slapd.ca())
    ldaps = {**good, "connectionOption": "ldaps", "port": slapd.tls_port}
    starttls = {**good, "connectionOption": "starttls"}
    for config in (ldaps, starttls):
        assert run("std:test-connection", config)[0] == [{}]
        assert uid("alice") in listing(config)
    for config in (ldaps, starttls):
        message = connection_error({**config, "caCertificate": slapd.ca("other-ca")})
        assert "the server certificate is not signed by a trusted CA" in message
    assert "does not speak TLS" in connection_error({**ldaps, "port": slapd.port})
    with pytest.raises(ConfigError, match="caCertificate"):
        run("std:test-connection", {**ldaps, "caCertificate": "not a certificate"})


# -- listing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("member_of", ["memberOf", ""])
def test_accounts_entitlements_and_nested_groups(slapd, member_of):
    config = base_config(slapd, userMemberOfAttribute=member_of)
    accounts = listing(config)
    assert {uid(n) for n in ("alice", "bob", "carol", "dave", "eve")} <= set(accounts)
    alice = accounts[uid("alice")]["attributes"]
    assert alice["id"] == "alice" and alice["mail"] == "alice@example.org" and alice["title"] == "Engineer"
    assert alice["employeeNumber"] == "1001" and alice["givenName"] == "Alice" and alice["sn"] == "Archer"
    assert alice["uuid"] and alice["created"].endswith("Z") and "enabled" not in alice
    assert sorted(alice["groups"]) == sorted([gdn("admins"), gdn("engineering")])
    assert accounts[uid("carol")]["attributes"]["groups"] == ["owner:" + gdn("engineering")]
    assert accounts[uid("dave")]["attributes"]["groups"] == [gdn("staff")]
    # legacy is a groupOfUniqueNames: not a governed group with this config.
    assert accounts[uid("eve")]["attributes"]["groups"] == []

    ents = listing(config, "std:entitlement:list")
    assert set(ents) == {gdn(g) for g in ("engineering", "admins", "staff")} | {
        "owner:" + gdn(g) for g in ("engineering", "admins", "staff")
    }
    eng = ents[gdn("engineering")]
    assert eng["attributes"]["implies"] == [gdn("staff")]  # nested in staff
    assert eng["attributes"]["owner"] == [uid("carol")] and eng["attributes"]["description"] == "Engineers"
    mapping = ldap_connector.spec.map_entitlement(eng)
    assert (mapping.resource_id, mapping.resource_name, mapping.resource_kind) == (
        gdn("engineering"),
        "engineering",
        "group",
    )
    assert (mapping.role_id, mapping.role_name, mapping.implies) == ("member", "Member", [gdn("staff")])
    owner = ldap_connector.spec.map_entitlement(ents["owner:" + gdn("engineering")])
    assert (owner.resource_id, owner.role_id, owner.implies) == (gdn("engineering"), "owner", [])
    assert ents[gdn("staff")]["attributes"]["implies"] == []

    read, _ = run("std:account:read", config, {"identity": uid("alice")})
    assert read[0] == accounts[uid("alice")]
    read, _ = run("std:entitlement:read", config, {"identity": gdn("engineering")})
    assert read[0] == eng
    read, _ = run("std:entitlement:read", config, {"identity": "owner:" + gdn("engineering")})
    assert read[0]["attributes"]["role"] == "owner"


def test_unique_member_groups_and_filters(slapd):
    config = base_config(
        slapd, groupObjectClass="groupOfUniqueNames", groupMemberAttribute="uniqueMember",
        userMemberOfAttribute="", groupOwnerAttribute="", userFilter="(title=Auditor)",
    )  # fmt: skip
    assert set(listing(config)) == {uid("eve")}
    assert listing(config)[uid("eve")]["attributes"]["groups"] == [f"cn=legacy,{GROUPS}"]
    assert set(listing(config, "std:entitlement:list")) == {f"cn=legacy,{GROUPS}"}
    with pytest.raises(ObjectNotFound):
        run("std:account:read", config, {"identity": uid("alice")})  # outside the user filter


def test_listings_page(slapd):
    config = base_config(slapd, pageSize=2)
    outputs, result = run("std:account:list", config)
    assert len(outputs) >= 5
    assert result.keep_alives >= len(outputs) // 2 - 1  # one keep-alive between pages
    unpaged, result = run("std:account:list", base_config(slapd))
    assert result.keep_alives == 0
    assert {o["identity"]: o for o in outputs} == {o["identity"]: o for o in unpaged}


def test_reads_of_unknown_objects(slapd):
    config = base_config(slapd)
    for identity in (uid("nobody"), gdn("admins"), "not a dn"):
        with pytest.raises(ObjectNotFound, match="no account"):
            run("std:account:read", config, {"identity": identity})
    with pytest.raises(ObjectNotFound, match="no group"):
        run("std:entitlement:read", config, {"identity": uid("alice")})
    with pytest.raises(InputError, match="owner entitlements need"):
        run(
            "std:entitlement:read",
            {**config, "groupOwnerAttribute": ""},
            {"identity": "owner:" + gdn("admins")},
        )


# -- deltas --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("member_of", ["memberOf", ""])
def test_delta_by_modify_timestamp(slapd, member_of):
    config = base_config(slapd, userMemberOfAttribute=member_of)
    wait_past(time.strftime("%Y%m%d%H%M%SZ", time.gmtime()))  # what exists now is older than what follows
    with slapd.admin() as conn:
        conn.add(*person(f"frank{member_of}", "Frank", "Fox"))
        conn.add(*group(f"team{member_of}", [uid("bob")]))
    full, result = run("std:account:list", config, {"stateful": True})
    since = result.state["since"]
    assert len(since) == 15 and since.endswith("Z")
    _, ent_result = run("std:entitlement:list", config, {"stateful": True})
    wait_past(max(since, ent_result.state["since"]))

    with slapd.admin() as conn:
        conn.modify(uid("eve"), {"title": [(ldap3.MODIFY_REPLACE, ["Chief Auditor"])]})
        conn.modify(gdn(f"team{member_of}"), {"member": [(ldap3.MODIFY_ADD, [uid("dave")])]})
    delta, result = run("std:account:list", config, {"stateful": True, "state": {"since": since}})
    delta = {o["identity"]: o for o in delta}
    assert delta[uid("eve")]["attributes"]["title"] == "Chief Auditor"
    assert gdn(f"team{member_of}") in delta[uid("dave")]["attributes"]["groups"]
    assert uid("carol") not in delta and uid("alice") not in delta  # unchanged, older than since
    assert result.state["since"] > since

    # Nesting admins into the team changes what admins implies.
    ent_since = ent_result.state["since"]
    with slapd.admin() as conn:
        conn.modify(gdn(f"team{member_of}"), {"member": [(ldap3.MODIFY_ADD, [gdn("admins")])]})
    delta, _ = run("std:entitlement:list", config, {"stateful": True, "state": {"since": ent_since}})
    delta = {o["identity"]: o for o in delta}
    assert gdn(f"team{member_of}") in delta
    assert delta[gdn("admins")]["attributes"]["implies"] == [gdn(f"team{member_of}")]
    assert gdn("staff") not in delta

    # A delta cannot see a deleted entry; the next full run no longer lists it.
    with slapd.admin() as conn:
        conn.delete(uid(f"frank{member_of}"))
    delta, _ = run("std:account:list", config, {"stateful": True, "state": {"since": since}})
    assert uid(f"frank{member_of}") not in {o["identity"] for o in delta}
    assert uid(f"frank{member_of}") not in listing(config)
    with slapd.admin() as conn:
        conn.modify(
            gdn(f"team{member_of}"), {"member": [(ldap3.MODIFY_DELETE, [gdn("admins"), uid("dave")])]}
        )


def test_bad_state_is_refused(slapd):
    with pytest.raises(StateError, match="generalized time"):
        run("std:account:list", base_config(slapd), {"stateful": True, "state": {"since": "yesterday"}})


# -- provisioning ----------------------------------------------------------------------------------------------


def test_provisioning(slapd):
    config = base_config(slapd)
    created, _ = run(
        "std:account:create",
        config,
        {"identity": "grace", "attributes": {"givenName": "Grace", "sn": "Hopper", "mail": "grace@example.org",
                                             "password": "Gr4ce!", "groups": [gdn("admins"), "owner:" + gdn("staff")]}},
    )  # fmt: skip
    grace = uid("grace")
    assert created[0]["identity"] == grace
    attrs = created[0]["attributes"]
    assert (attrs["id"], attrs["cn"], attrs["mail"]) == ("grace", "Grace Hopper", "grace@example.org")
    assert sorted(attrs["groups"]) == sorted([gdn("admins"), "owner:" + gdn("staff")])
    # The password works for a bind.
    server = ldap3.Server("127.0.0.1", port=slapd.port, get_info=ldap3.NONE)
    assert ldap3.Connection(server, grace, "Gr4ce!").bind()
    with pytest.raises(ConnectorError, match="already exists"):
        run("std:account:create", config, {"identity": "grace", "attributes": {}})

    updated, _ = run(
        "std:account:update",
        config,
        {"identity": grace, "changes": [
            {"op": "Set", "attribute": "title", "value": "Admiral"},
            {"op": "Add", "attribute": "groups", "value": gdn("engineering")},
            {"op": "Remove", "attribute": "groups", "value": "owner:" + gdn("staff")},
            {"op": "Set", "attribute": "description", "value": None},
        ]},
    )  # fmt: skip
    attrs = updated[0]["attributes"]
    assert attrs["title"] == "Admiral" and attrs["description"] is None
    assert sorted(attrs["groups"]) == sorted([gdn("admins"), gdn("engineering")])
    members = listing(config, "std:entitlement:list")
    assert grace not in members["owner:" + gdn("staff")]["attributes"]["owner"]
    # Adding twice or removing what is not held is not an error.
    run("std:account:update", config, {"identity": grace, "changes": [
        {"op": "Add", "attribute": "groups", "value": gdn("admins")}]})  # fmt: skip
    updated, _ = run("std:account:update", config, {"identity": grace, "changes": [
        {"op": "Set", "attribute": "groups", "value": [gdn("staff")]}]})  # fmt: skip
    assert updated[0]["attributes"]["groups"] == [gdn("staff")]

    with pytest.raises(InputError, match="renaming"):
        run(
            "std:account:update",
            config,
            {"identity": grace, "changes": [{"op": "Set", "attribute": "id", "value": "g"}]},
        )
    with pytest.raises(InputError, match="cannot be set"):
        run(
            "std:account:update",
            config,
            {"identity": grace, "changes": [{"op": "Set", "attribute": "uidNumber", "value": 1}]},
        )
    with pytest.raises(ObjectNotFound, match="no group"):
        run("std:account:update", config, {"identity": grace, "changes": [
            {"op": "Add", "attribute": "groups", "value": gdn("nope")}]})  # fmt: skip

    run("std:account:delete", config, {"identity": grace})
    with pytest.raises(ObjectNotFound):
        run("std:account:read", config, {"identity": grace})
    staff = listing(config, "std:entitlement:list")[gdn("staff")]
    assert staff["attributes"]["implies"] == []
    with slapd.admin() as conn:
        conn.search(gdn("staff"), "(objectClass=*)", ldap3.BASE, attributes=["member"])
        assert norm_dn(grace) not in {norm_dn(m) for m in conn.entries[0].member.values}


def test_provisioning_needs_the_toggle_and_write_access(slapd):
    with pytest.raises(ConnectorError, match="provisioning is turned off"):
        run("std:account:create", base_config(slapd, provisioning=False), {"identity": "henry"})
    reader = base_config(slapd, bindDn=READER, password=SERVICE_PASSWORD)
    with pytest.raises(ConnectorError) as caught:
        run("std:account:create", reader, {"identity": "henry"})
    assert str(caught.value).startswith(
        f"cannot create uid=henry,{PEOPLE}: the service account {READER} lacks the access rights"
    )
    with pytest.raises(ConnectorError, match="lacks the access rights"):
        run("std:account:update", reader, {"identity": uid("eve"), "changes": [
            {"op": "Add", "attribute": "groups", "value": gdn("admins")}]})  # fmt: skip
    assert gdn("admins") not in listing(base_config(slapd))[uid("eve")]["attributes"]["groups"]
    with pytest.raises(ConnectorError, match="refusing to delete"):
        run("std:account:delete", base_config(slapd), {"identity": ADMIN_DN})


def test_active_directory_style_naming(slapd):
    """cn-named entries with another id attribute (as sAMAccountName in Active Directory)."""
    config = base_config(slapd, userIdAttribute="employeeNumber", userRdnAttribute="cn")
    created, _ = run(
        "std:account:create", config, {"identity": "2002", "attributes": {"displayName": "Ivy Irwin"}}
    )
    assert created[0]["identity"] == f"cn=Ivy Irwin,{PEOPLE}"
    assert created[0]["attributes"]["id"] == "2002"
    assert listing(config)[uid("alice")]["attributes"]["id"] == "1001"
    run("std:account:delete", config, {"identity": f"cn=Ivy Irwin,{PEOPLE}"})


@pytest.mark.parametrize(
    "setting",
    [
        {"userIdAttribute": "userPassword"},
        {"userIdAttribute": "USERPASSWORD"},
        {"userMemberOfAttribute": "userPassword"},
        {"groupNameAttribute": "sambaNTPassword"},
        {"groupOwnerAttribute": "userPassword"},
        {"groupMemberAttribute": "authPassword"},
        {"userFilter": "(userPassword={SSHA}a*)"},
        {"userFilter": "(&(objectClass=*)(!(userPassword;binary=*)))"},
        {"groupFilter": "(2.5.4.35=*)"},
    ],
)
def test_password_attributes_are_never_read_nor_tested(slapd, setting):
    """The bind account may read password hashes: no mapping may put them in the inventory (say, as the
    account id) and no filter may test them (an oracle, one character per sync)."""
    conn = slapd.admin()
    dn, classes, attrs = person("pwd-holder", "Pat", "Holder", userPassword="{SSHA}hash-of-a-password")
    conn.add(dn, classes, attrs)
    try:
        with pytest.raises(ConfigError, match="holds passwords or keys"):
            listing(base_config(slapd, **setting))
        with pytest.raises(ConfigError, match="holds passwords or keys"):
            listing(base_config(slapd, **setting), "std:entitlement:list", type="group")
    finally:
        conn.delete(dn)
