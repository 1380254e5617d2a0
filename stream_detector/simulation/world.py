"""Who calls: accounts, their networks (ASNs, IPv4/IPv6 prefixes), clients and models.

A `World` is built from the seed and hands out network prefixes and identifiers
deterministically, so shared infrastructure (an office /24, a carrier's CGNAT pool, a router's
egress IPs) really is shared between the accounts that use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random
from typing import Any

#: Residential ISPs by country: (ASN, UTC offset in hours).
RESIDENTIAL: dict[str, tuple[tuple[int, ...], float]] = {
    "US": ((7922, 701, 20115, 22773, 7018), -6.0),
    "CA": ((812, 577), -5.0),
    "GB": ((2856, 5089), 0.0),
    "DE": ((3320, 3209, 6805), 1.0),
    "FR": ((3215, 12322), 1.0),
    "ES": ((3352, 12479), 1.0),
    "NL": ((1136, 33915), 1.0),
    "PL": ((5617,), 1.0),
    "IN": ((24560, 45609), 5.5),
    "JP": ((4713, 2516), 9.0),
    "KR": ((4766, 9318), 9.0),
    "BR": ((28573, 18881), -3.0),
    "MX": ((8151,), -6.0),
    "AU": ((1221, 4804), 10.0),
    "SG": ((9506,), 8.0),
    "ID": ((7713,), 7.0),
    "NG": ((29465,), 1.0),
    "TR": ((9121,), 3.0),
}
#: Weight of each country among ordinary users.
COUNTRY_WEIGHTS = {
    "US": 30, "CA": 4, "GB": 7, "DE": 7, "FR": 5, "ES": 3, "NL": 2, "PL": 2, "IN": 9, "JP": 5,
    "KR": 4, "BR": 5, "MX": 2, "AU": 3, "SG": 2, "ID": 2, "NG": 1, "TR": 1,
}  # fmt: skip
#: Mobile carriers whose customers share CGNAT addresses: (ASN, country).
MOBILE = ((21928, "US"), (55836, "IN"), (3209, "DE"), (9498, "IN"), (26599, "BR"))
#: Cloud and hosting providers: (ASN, country of the region used).
DATACENTER = (
    (16509, "US"), (14618, "US"), (396982, "US"), (8075, "US"), (14061, "US"), (24940, "DE"),
    (16276, "FR"), (45102, "SG"), (63949, "SG"), (20473, "JP"), (132203, "HK"), (31898, "US"),
)  # fmt: skip
#: Campus networks: (ASN, country).
UNIVERSITY = ((3, "US"), (25, "US"), (786, "GB"), (680, "DE"), (2200, "FR"))
#: Third-party LLM routers: (user agent, egress ASN, country).
ROUTERS = (
    ("OpenRouter/1.0 (+https://openrouter.ai)", 13335, "US"),
    ("LiteLLM-Proxy/1.55.3", 16509, "US"),
    ("one-api/v0.6.11", 45102, "SG"),
    ("new-api/v0.4.9", 132203, "HK"),
)

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")
#: The model released during the simulated window (nothing calls it before its release).
NEW_MODEL = "claude-opus-5"

SDK_CLIENTS = (
    "anthropic-sdk-python/{v} (CPython 3.{m}; Linux x86_64)",
    "anthropic-sdk-python/{v} (CPython 3.{m}; Darwin arm64)",
    "anthropic-sdk-typescript/{v} node/{m}.11.1",
    "anthropic-sdk-go/{v}",
    "anthropic-sdk-java/{v}",
)
RAW_CLIENTS = (
    "python-httpx/0.27.{m}",
    "python-requests/2.32.{m}",
    "axios/1.7.{m}",
    "curl/8.{m}.0",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
    "Dart/3.{m} (dart:io)",
)
AGENT_CLIENTS = (
    ("claude-cli/2.0.{m} (external, cli)", 17),
    ("Cline/3.17.{m}", 12),
    ("continue/1.0.{m}", 9),
    ("opencode/0.3.{m}", 14),
    ("aider/0.82.{m}", 0),
)


@dataclass(slots=True, frozen=True)
class Place:
    """One network location a call can come from."""

    ip: str
    asn: int
    country: str


@dataclass(slots=True)
class Account:
    """A billing account and the identity its gateway records carry."""

    account_id: str
    population: str
    campaign: str | None
    created_ts: float
    tz: float = 0.0
    org_id: str | None = None
    payment: str | None = None
    keys: tuple[str, ...] = ()
    user_agent: str = "python-httpx/0.27.0"
    system_hash: str | None = None
    places: list[Place] = field(default_factory=list)
    #: Optional fields this account's gateway path never sends.
    omit: frozenset[str] = frozenset()
    #: The gateway writes times as RFC 3339 strings rather than epoch numbers.
    rfc3339: bool = False

    @property
    def attack(self) -> bool:
        return self.campaign is not None


class World:
    """Deterministic allocator of prefixes and identifiers for one simulation."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(f"world:{seed}")
        self._v4: dict[int, list[tuple[int, int, int]]] = {}
        self._v6: dict[int, list[str]] = {}
        self._taken: set[tuple[int, int, int]] = set()
        self.accounts: list[Account] = []
        self.sdk_version = f"0.{self.rng.randint(40, 60)}.{self.rng.randint(0, 4)}"

    def v4_prefix(self, asn: int, index: int = 0) -> tuple[int, int, int]:
        """The `index`-th /24 of an ASN (allocated on first use)."""
        prefixes = self._v4.setdefault(asn, [])
        while len(prefixes) <= index:
            first = self.rng.choice((23, 31, 45, 62, 77, 81, 92, 103, 151, 178, 185, 203, 212))
            prefix = (first, self.rng.randint(0, 255), self.rng.randint(0, 255))
            if prefix not in self._taken:
                self._taken.add(prefix)
                prefixes.append(prefix)
        return prefixes[index]

    def v6_prefix(self, asn: int, index: int = 0) -> str:
        """The `index`-th /48 of an ASN."""
        prefixes = self._v6.setdefault(asn, [])
        while len(prefixes) <= index:
            prefixes.append(
                f"2{self.rng.choice('0246a')}{self.rng.randint(0, 255):02x}:"
                f"{self.rng.getrandbits(16):x}:{self.rng.getrandbits(16):x}"
            )
        return prefixes[index]

    def v4(self, rng: Random, asn: int, country: str, index: int = 0) -> Place:
        """A host in the ASN's `index`-th /24."""
        a, b, c = self.v4_prefix(asn, index)
        return Place(f"{a}.{b}.{c}.{rng.randint(2, 254)}", asn, country)

    def v6(self, rng: Random, asn: int, country: str, index: int = 0) -> Place:
        """A host in the ASN's `index`-th /48 (a /64 per subscriber)."""
        prefix = self.v6_prefix(asn, index)
        return Place(
            f"{prefix}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}:{rng.getrandbits(16):x}",
            asn,
            country,
        )

    def home(self, rng: Random, country: str | None = None) -> tuple[list[Place], float]:
        """A residential subscriber: 1-2 addresses at home, a third of them IPv6."""
        country = country or pick_country(rng)
        asns, tz = RESIDENTIAL[country]
        asn = rng.choice(asns)
        make = self.v6 if rng.random() < 0.3 else self.v4
        places = [make(rng, asn, country, rng.randint(0, 7))]
        if rng.random() < 0.3:
            places.append(self.v4(rng, asn, country, rng.randint(0, 7)))
        return places, tz

    def datacenter(self, rng: Random, n: int = 1) -> list[Place]:
        """`n` addresses in one cloud /24 of a random provider (one of its many /24s)."""
        asn, country = rng.choice(DATACENTER)
        pool = rng.randrange(64)
        return [self.v4(rng, asn, country, pool) for _ in range(n)]

    def router(self, rng: Random, index: int | None = None) -> tuple[str, list[Place]]:
        """A third-party router: its user agent and its shared egress addresses."""
        ua, asn, country = ROUTERS[rng.randrange(len(ROUTERS)) if index is None else index]
        egress = Random(f"router:{ua}")  # the same egress IPs for every router customer
        return ua, [self.v4(egress, asn, country, 0) for _ in range(6)]

    def account(
        self,
        rng: Random,
        population: str,
        created_ts: float,
        campaign: str | None = None,
        **identity: Any,
    ) -> Account:
        """A new account, registered for the ground truth; its gateway path is drawn here."""
        omit = set(identity.pop("omit", ()))
        if rng.random() < 0.05:
            omit |= {"asn", "country"}  # a gateway region without geo enrichment
        if rng.random() < 0.03:
            omit.add("account_created_ts")
        acct = Account(
            account_id=token(rng, "acct_"),
            population=population,
            campaign=campaign,
            created_ts=created_ts,
            keys=tuple(token(rng, "key_", 16) for _ in range(rng.choice((1, 1, 1, 2, 3)))),
            omit=frozenset(omit),
            rfc3339=rng.random() < 0.04,
            **identity,
        )
        self.accounts.append(acct)
        return acct


def pick_country(rng: Random) -> str:
    """A country weighted like a global user base."""
    return rng.choices(tuple(COUNTRY_WEIGHTS), weights=tuple(COUNTRY_WEIGHTS.values()))[0]


def token(rng: Random, prefix: str, n: int = 20) -> str:
    """An opaque identifier such as `acct_3k9...`."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    return prefix + "".join(rng.choice(alphabet) for _ in range(n))


def hex_digest(rng: Random, n: int = 32) -> str:
    """An opaque hash-like value (payment fingerprints, system prompt hashes)."""
    return f"{rng.getrandbits(4 * n):0{n}x}"


def sdk_agent(rng: Random) -> str:
    """A common SDK or HTTP client string with a plausible version."""
    pool = SDK_CLIENTS if rng.random() < 0.7 else RAW_CLIENTS
    version = f"0.{rng.randint(30, 60)}.{rng.randint(0, 5)}"
    return rng.choice(pool).format(v=version, m=rng.randint(8, 13))
