"""The demo organisation: deterministic, generated lazily, one generation after another.

Everything is a pure function of ``(seed, index, version)``, so any account can be produced on its own and a
million stream in constant memory.

Generations. With a mutation fraction ``f`` (``period = round(1 / f)``) and ``k = max(1, round(users * f
/ 4))`` leavers and joiners per step, the people active at generation ``g`` are the indices
``[g * k, users + g * k)``. Person ``i`` is at version ``(g + (i + seed) % period) // period``, so between
``g`` and ``g + 1`` exactly the people with ``(i + seed) % period == -(g + 1) % period`` change (title and
roles), indices ``[g * k, (g + 1) * k)`` leave and ``[users + g * k, users + (g + 1) * k)`` join.
Resources (groups and projects) do not change between generations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Anna", "Arjun", "Beatriz", "Ben", "Carla", "Chen", "Chloe", "Daniel", "Dmitri",
    "Elena", "Emma", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Isaac", "Jamal", "Jana", "Jonas",
    "Julia", "Kai", "Kenji", "Laila", "Lars", "Leo", "Lina", "Lucas", "Maya", "Mateo", "Mei", "Mia",
    "Nadia", "Noah", "Olga", "Omar", "Paula", "Priya", "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq",
    "Tom", "Uma", "Victor", "Wei", "Yara", "Yusuf", "Zoe", "Aisha", "Bruno", "Clara", "David", "Eva",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Almeida", "Andersen", "Bakker", "Becker", "Brown", "Chen", "Costa", "Dubois", "Duarte", "Evans",
    "Fischer", "Garcia", "Gupta", "Hansen", "Ito", "Jansen", "Johnson", "Kim", "Kowalski", "Laurent",
    "Lee", "Lopez", "Martin", "Meyer", "Moreau", "Müller", "Nakamura", "Nguyen", "Novak", "Okafor",
    "Olsen", "Patel", "Perez", "Petrov", "Quinn", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith",
    "Sousa", "Suzuki", "Taylor", "Tanaka", "Ueda", "Varga", "Wagner", "Walker", "Wang", "Weber", "Wilson",
    "Wong", "Yilmaz", "Young", "Zhang", "Ziegler", "Haddad", "Ivanova",
)  # fmt: skip
DEPARTMENTS = (
    ("Engineering", ("Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager",
                     "Site Reliability Engineer", "QA Engineer")),
    ("Data", ("Data Engineer", "Data Scientist", "Analytics Engineer", "Data Analyst")),
    ("Finance", ("Accountant", "Financial Analyst", "Controller", "Payroll Specialist")),
    ("Human Resources", ("HR Business Partner", "Recruiter", "People Operations Specialist")),
    ("Sales", ("Account Executive", "Sales Engineer", "Sales Manager", "SDR")),
    ("Marketing", ("Content Marketer", "Product Marketing Manager", "Growth Analyst")),
    ("Operations", ("Operations Analyst", "Systems Administrator", "Network Engineer")),
    ("Security", ("Security Engineer", "Security Analyst", "IAM Engineer")),
    ("IT", ("Helpdesk Technician", "IT Administrator", "Endpoint Engineer")),
    ("Legal", ("Counsel", "Paralegal", "Compliance Officer")),
)  # fmt: skip
LOCATIONS = ("Berlin", "Lisbon", "London", "New York", "Paris", "Singapore", "Toronto", "Remote")
# (team prefix, resource kind, application components)
TEAMS = (
    ("eng", "project", ("backend", "frontend", "mobile", "platform", "api", "search")),
    ("data", "project", ("warehouse", "pipelines", "ml", "bi")),
    ("fin", "group", ("ledger", "payroll", "billing", "treasury")),
    ("hr", "group", ("recruiting", "benefits", "hris")),
    ("sales", "group", ("crm", "quotes", "forecast")),
    ("mkt", "group", ("web", "campaigns", "analytics")),
    ("ops", "project", ("monitoring", "oncall", "infra", "network")),
    ("sec", "project", ("iam", "siem", "vault")),
    ("it", "group", ("helpdesk", "endpoint", "email")),
    ("legal", "group", ("contracts", "ediscovery")),
)
ENVIRONMENTS = ("prod", "staging", "dev", "sandbox")
ROLES = ("admin", "member", "viewer")
ROLE_NAMES = {"admin": "Admin", "member": "Member", "viewer": "Viewer"}
ROLE_IMPLIES = {"admin": ("member", "viewer"), "member": ("viewer",), "viewer": ()}
ROLE_GIVES = {"admin": "administers", "member": "works in", "viewer": "can read"}

_COMPONENTS = tuple((team, kind, comp) for team, kind, comps in TEAMS for comp in comps)
_MASK = 0xFFFFFFFF
_RESOURCE_CACHE_LIMIT = 50_000


def _mix(x: int) -> int:
    """A 32-bit integer hash (Murmur3 finaliser)."""
    x &= _MASK
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & _MASK
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & _MASK
    return x ^ (x >> 16)


@dataclass(frozen=True)
class Resource:
    index: int
    name: str
    kind: str
    application: str
    environment: str


@dataclass(frozen=True)
class OrgSettings:
    users: int = 100
    groups: int = 20
    memberships: int = 3
    seed: int = 0
    mutation: float = 0.0

    @property
    def period(self) -> int:
        return max(1, round(1 / self.mutation)) if self.mutation > 0 else 0

    @property
    def churn(self) -> int:
        """People leaving (and as many joining) per generation step."""
        if self.mutation <= 0 or self.users <= 0:
            return 0
        return max(1, round(self.users * self.mutation / 4))


class Organisation:
    """Generates the demo organisation's resources, entitlements and accounts."""

    def __init__(self, settings: OrgSettings):
        self.s = settings
        self._resources: dict[int, Resource] = {}

    # -- resources and entitlements -----------------------------------------------------------------

    def resource(self, r: int) -> Resource:
        res = self._resources.get(r)
        if res is not None:
            return res
        team, kind, comp = _COMPONENTS[r % len(_COMPONENTS)]
        env = ENVIRONMENTS[(r // len(_COMPONENTS)) % len(ENVIRONMENTS)]
        n = r // (len(_COMPONENTS) * len(ENVIRONMENTS))
        name = f"{team}-{comp}-{env}" + (f"-{n + 1}" if n else "")
        res = Resource(r, name, kind, f"{team}-{comp}", env)
        if len(self._resources) < _RESOURCE_CACHE_LIMIT:
            self._resources[r] = res
        return res

    @staticmethod
    def entitlement_id(resource_name: str, role: str) -> str:
        return f"{resource_name}-{role}s"

    def entitlement(self, r: int, role: str) -> dict[str, Any]:
        res = self.resource(r)
        ident = self.entitlement_id(res.name, role)
        return {
            "identity": ident,
            "key": {"simple": {"id": ident}},
            "type": "group",
            "attributes": {
                "id": ident,
                "name": ident,
                "description": f"{ROLE_NAMES[role]}: {ROLE_GIVES[role]} {res.name} ({res.environment})",
                "resource": res.name,
                "resourceKind": res.kind,
                "application": res.application,
                "environment": res.environment,
                "role": role,
                "roleName": ROLE_NAMES[role],
                "implies": [self.entitlement_id(res.name, other) for other in ROLE_IMPLIES[role]],
            },
        }

    def entitlements(self) -> Iterator[dict[str, Any]]:
        for r in range(self.s.groups):
            for role in ROLES:
                yield self.entitlement(r, role)

    def find_entitlement(self, identity: str) -> dict[str, Any] | None:
        for role in ROLES:
            suffix = f"-{role}s"
            if identity.endswith(suffix):
                name = identity[: -len(suffix)]
                r = self._resource_index(name)
                if r is not None:
                    return self.entitlement(r, role)
        return None

    def _resource_index(self, name: str) -> int | None:
        parts = name.split("-")
        n = 0
        if len(parts) == 4 and parts[3].isdigit():
            n = int(parts[3]) - 1
            parts = parts[:3]
        if len(parts) != 3 or n < 0 or parts[2] not in ENVIRONMENTS:
            return None
        try:
            c = next(i for i, (t, _, comp) in enumerate(_COMPONENTS) if t == parts[0] and comp == parts[1])
        except StopIteration:
            return None
        r = c + len(_COMPONENTS) * (ENVIRONMENTS.index(parts[2]) + len(ENVIRONMENTS) * n)
        return r if r < self.s.groups and self.resource(r).name == name else None

    # -- accounts ---------------------------------------------------------------------------------------

    def active_range(self, generation: int) -> range:
        k = self.s.churn
        return range(generation * k, self.s.users + generation * k)

    def version(self, i: int, generation: int) -> int:
        period = self.s.period
        return (generation + (i + self.s.seed) % period) // period if period else 0

    @staticmethod
    def account_id(i: int) -> str:
        return f"u{i:07d}"

    @staticmethod
    def account_index(identity: str) -> int | None:
        if len(identity) >= 8 and identity[0] == "u" and identity[1:].isdigit():
            return int(identity[1:])
        return None

    def accounts(self, generation: int) -> Iterator[dict[str, Any]]:
        """Every account active at ``generation``, in index order."""
        return self._accounts(self.active_range(generation), generation)

    def _accounts(self, indices: range | Iterator[int], generation: int) -> Iterator[dict[str, Any]]:
        # Local names and an inlined hash: this loop is the hot path of a million-object listing.
        s = self.s
        seed = s.seed
        seed_mix = _mix(seed * 0x9E3779B1 + 0x7F4A7C15)
        period = s.period
        groups = s.groups
        memberships = min(s.memberships, groups)
        stride = 7919 if groups % 7919 else 1
        first_names, last_names, departments, locations = FIRST_NAMES, LAST_NAMES, DEPARTMENTS, LOCATIONS
        nf, nl, nd, nloc = len(first_names), len(last_names), len(departments), len(locations)
        # Entitlement ids by resource: (admin, member, viewer), computed once per resource (bounded cache).
        ent_cache: dict[int, tuple[str, str, str]] = {}
        entitlement_id = self.entitlement_id
        resource = self.resource
        cache_ok = groups <= _RESOURCE_CACHE_LIMIT
        mask = _MASK
        js = range(memberships)
        for i in indices:
            h = (i ^ seed_mix) & mask
            h ^= h >> 16
            h = (h * 0x85EBCA6B) & mask
            h ^= h >> 13
            h = (h * 0xC2B2AE35) & mask
            h ^= h >> 16
            if period and (version := (generation + (i + seed) % period) // period):
                hv = _mix(h + version * 0x27D4EB2F)
            else:
                hv = h
            first = first_names[h % nf]
            last = last_names[(h >> 7) % nl]
            dept, titles = departments[(h >> 13) % nd]
            ident = f"u{i:07d}"
            login = f"{first}.{last}{i}".lower()
            held = []
            if memberships:
                base = hv % groups
                bits = hv >> 5
                for j in js:
                    r = (base + j * stride) % groups
                    ids = ent_cache.get(r)
                    if ids is None:
                        name = resource(r).name
                        ids = (
                            entitlement_id(name, "admin"),
                            entitlement_id(name, "member"),
                            entitlement_id(name, "viewer"),
                        )
                        if cache_ok:
                            ent_cache[r] = ids
                    b = (bits >> (3 * j)) & 7
                    held.append(ids[1] if b < 5 else ids[2] if b < 7 else ids[0])
            lead = i - i % 10
            yield {
                "identity": ident,
                "key": {"simple": {"id": ident}},
                "attributes": {
                    "id": ident,
                    "userName": login,
                    "displayName": f"{first} {last}",
                    "firstName": first,
                    "lastName": last,
                    "email": login + "@example.com",
                    "department": dept,
                    "title": titles[(hv >> 19) % len(titles)],
                    "location": locations[(h >> 21) % nloc],
                    "employeeType": "contractor" if h % 11 == 0 else "employee",
                    "manager": f"u{lead:07d}" if lead != i else (f"u{i - i % 100:07d}" if i % 100 else None),
                    "enabled": h % 37 != 0,
                    "groups": held,
                },
            }

    def account(self, i: int, generation: int) -> dict[str, Any] | None:
        if i not in self.active_range(generation):
            return None
        return next(self._accounts(range(i, i + 1), generation))

    def delta(self, generation: int) -> Iterator[dict[str, Any]]:
        """Changes from ``generation`` to ``generation + 1``: changed, joined and (deleted) left accounts."""
        period, k = self.s.period, self.s.churn
        before, after = self.active_range(generation), self.active_range(generation + 1)
        for i in range(before.start, after.start):
            ident = self.account_id(i)
            yield {"identity": ident, "key": {"simple": {"id": ident}}, "deleted": True}
        if period:
            residue = (-(generation + 1) - self.s.seed) % period
            first = after.start + (residue - after.start) % period
            yield from self._accounts(range(first, before.stop, period), generation + 1)
        if k:
            yield from self._accounts(range(before.stop, after.stop), generation + 1)
