"""Benign populations, including the look-alikes that share one trait or more with a campaign.

Each builder creates `n` accounts in the `World` and returns their event sources: iterators of
(event time, event object) in time order. Look-alikes are built to be hard: evaluation
harnesses do say "think step by step" at high volume, enterprises do share an IP and a card,
a classroom of fresh accounts does send one template in lock-step, yet each differs from a
campaign in what a campaign cannot avoid (bounded runs, aged verified orgs, human timing,
short outputs, unrelated content behind a shared key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from random import Random
from typing import Any

from stream_detector.simulation import text
from stream_detector.simulation.text import between
from stream_detector.simulation.traffic import (
    PROFILES,
    Window,
    arrivals,
    call,
    lognormal,
    status,
)
from stream_detector.simulation.world import (
    AGENT_CLIENTS,
    MOBILE,
    MODELS,
    NEW_MODEL,
    RESIDENTIAL,
    UNIVERSITY,
    Account,
    World,
    hex_digest,
    sdk_agent,
    token,
)

Event = tuple[float, dict[str, Any]]
Source = Iterator[Event]
DAY = 86400.0
HOUR = 3600.0
_MEAN_ACTIVITY = {name: sum(p) / 24 for name, p in PROFILES.items()}


def _sub(rng: Random) -> Random:
    """An independent RNG for one account, so accounts do not perturb each other."""
    return Random(rng.getrandbits(64))


def _aged(rng: Random, window: Window, lo_days: float = 20, hi_days: float = 900) -> float:
    return window.start - rng.uniform(lo_days, hi_days) * DAY


def sessions(
    rng: Random,
    acct: Account,
    start: float,
    end: float,
    *,
    daily: float,
    profile: str,
    msgs: float,
    gap: float,
) -> Iterator[tuple[float, int]]:
    """A person's messages: diurnal sessions of a few messages with human gaps; (ts, turn)."""
    per_hour = daily / 24 / _MEAN_ACTIVITY[profile]
    free = start
    for begin in arrivals(rng, start, end, per_hour, profile, acct.tz):
        if begin < free:
            continue
        t = begin
        for i in range(max(1, round(lognormal(rng, msgs, 0.8)))):
            if t >= end:
                return
            yield t, 1 + 2 * i
            t += lognormal(rng, gap, 0.7)
        free = t


@dataclass(slots=True)
class Style:
    """How one person or app talks to the API."""

    templates: tuple[str, ...]
    model: str
    max_tokens: int | None
    out_median: float
    temperature: float | None = None
    thinking_p: float = 0.05
    p429: float = 0.002
    adopt_ts: float | None = None  # switches to the new model from then on
    endpoint: str = "messages"

    def event(self, acct: Account, rng: Random, ts: float, turn: int, prompt: str) -> Event:
        model = NEW_MODEL if self.adopt_ts is not None and ts >= self.adopt_ts else self.model
        return call(
            acct,
            rng,
            ts,
            model=model,
            prompt=prompt,
            output_tokens=int(lognormal(rng, self.out_median, 0.9)) + 1,
            max_tokens=self.max_tokens,
            context_tokens=(turn - 1) * between(rng, 80, 400),
            endpoint=self.endpoint,
            temperature=self.temperature,
            thinking=rng.random() < self.thinking_p,
            turns=turn,
            code=status(rng, self.p429),
        )


def _chat_style(rng: Random, window: Window, templates: tuple[str, ...] = text.CHAT) -> Style:
    adopt = window.release_ts + lognormal(rng, 6 * HOUR, 1.0) if rng.random() < 0.1 else None
    return Style(
        templates=tuple(rng.sample(templates, min(len(templates), between(rng, 6, 14)))),
        model=rng.choices(MODELS, weights=(6, 3, 1))[0],
        max_tokens=rng.choice((1024, 1024, 2048, 4096, 8192)),
        out_median=rng.uniform(150, 500),
        temperature=rng.choice((None, None, 0.7, 1.0)),
        thinking_p=rng.choice((0.0, 0.0, 0.1, 0.4)),
        adopt_ts=adopt,
    )


def _talk(
    rng: Random,
    acct: Account,
    style: Style,
    times: Iterator[tuple[float, int]],
    prompt: Callable[[Random, int], str] | None = None,
) -> Source:
    for ts, turn in times:
        body = prompt(rng, turn) if prompt else text.fill(rng, rng.choice(style.templates))
        yield style.event(acct, rng, ts, turn, body)


def chat(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Ordinary chat users: diurnal, bursty, diverse; a few reach the API through a router."""
    sources = []
    for _ in range(n):
        r = _sub(rng)
        if r.random() < 0.08:
            ua, places = world.router(r)
            tz = RESIDENTIAL[r.choice(tuple(RESIDENTIAL))][1]
        else:
            ua = sdk_agent(r)
            places, tz = world.home(r)
        acct = world.account(
            r,
            "chat",
            _aged(r, window, 1, 900),
            tz=tz,
            places=places,
            user_agent=ua,
            payment=hex_digest(r),
        )
        times = sessions(
            r,
            acct,
            window.start,
            window.end,
            daily=lognormal(r, 1.5, 0.9),
            profile="human",
            msgs=r.uniform(2, 5),
            gap=r.uniform(40, 150),
        )
        sources.append(_talk(r, acct, _chat_style(r, window), times))
    return sources


def eval_harness(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Benchmark suites at temperature 0 with "think step by step": high volume, bounded runs.

    One harness evaluates the new model within hours of its release, as eval teams do.
    """
    return [_harness(world, window, _sub(rng), i == 0) for i in range(n)]


def _harness(world: World, window: Window, r: Random, evaluates_release: bool) -> Source:
    places = world.datacenter(r, between(r, 1, 4))
    acct = world.account(
        r,
        "eval_harness",
        _aged(r, window, 120, 1200),
        org_id=token(r, "org_", 12),
        payment=hex_digest(r),
        places=places,
        user_agent=f"lm-eval/0.4.{between(r, 2, 8)} {sdk_agent(r)}",
        tz=r.choice((-6.0, 0.0, 1.0)),
    )
    suites = [
        (
            f"suite{r.randrange(40)}",
            r.choice(text.BENCHMARK),
            r.choice(("math", "logic", "science")),
        )
        for _ in range(between(r, 2, 3))
    ]
    starts = sorted(window.at(r.uniform(0.0, 0.9)) for _ in range(r.choice((1, 2, 2, 3))))
    runs = [(ts, r.choices(MODELS, weights=(3, 2, 2))[0]) for ts in starts]
    if evaluates_release:
        runs = sorted([*runs, (window.release_ts + r.uniform(0.5, 4) * HOUR, NEW_MODEL)])
    return _runs(r, acct, window, runs, suites)


def _runs(
    r: Random,
    acct: Account,
    window: Window,
    runs: list[tuple[float, str]],
    suites: list[tuple[str, str, str]],
) -> Source:
    free = window.start
    for begin, model in runs:
        t = max(begin, free)
        suite, template, capability = r.choice(suites)
        concurrency = r.choice((4, 8, 16))
        max_tokens = r.choice((1024, 2048, 4096))
        thinking = r.random() < 0.2
        for i in range(between(r, 250, 1200)):
            item = Random(f"{suite}:{i}")  # the same benchmark items in every run
            prompt = text.fill(item, template, text.CAPABILITIES[capability](item))
            code = 429
            while code == 429 and t < window.end:
                code = status(r, 0.004 * concurrency)
                yield call(
                    acct,
                    r,
                    t,
                    model=model,
                    prompt=prompt,
                    temperature=0.0,
                    thinking=thinking,
                    output_tokens=int(lognormal(r, 320, 0.5)),
                    max_tokens=max_tokens,
                    code=code,
                )
                t += lognormal(r, 6.0 / concurrency, 0.6) + (r.uniform(1, 8) if code == 429 else 0)
            if t >= window.end:
                return
        free = t


def batch_jobs(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Batch classification: one template, thousands of items, one-word answers."""
    sources = []
    for _ in range(n):
        r = _sub(rng)
        acct = world.account(
            r,
            "batch_jobs",
            _aged(r, window, 60, 900),
            org_id=token(r, "org_", 12),
            payment=hex_digest(r),
            places=world.datacenter(r, 1),
            user_agent=sdk_agent(r),
        )
        sources.append(_batches(r, acct, window, r.choice(text.CLASSIFY)))
    return sources


def _batches(r: Random, acct: Account, window: Window, template: str) -> Source:
    max_tokens = r.choice((5, 10, 16, 20))
    model = r.choice(("claude-haiku-4-5", "claude-haiku-4-5", "claude-sonnet-4-5"))
    t = window.start
    for begin in sorted(window.at(r.uniform(0, 0.95)) for _ in range(between(r, 1, 3))):
        t = max(t, begin)
        rate = r.uniform(4, 15)
        for _ in range(between(r, 1500, 6000)):
            if t >= window.end:
                return
            yield call(
                acct,
                r,
                t,
                model=model,
                prompt=text.fill(r, template),
                endpoint="batches",
                output_tokens=between(r, 1, 4),
                max_tokens=max_tokens,
                temperature=0.0,
                code=status(r, 0.0),
            )
            t += r.expovariate(rate)


def enterprise(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Staff of verified organizations: one office IP range, one card, internal-tool templates.

    Each org also runs a nightly service account (templated, regular): a look-alike of a bot.
    One org in two forbids prompt logging (zero retention), so its events carry no prompt.
    """
    orgs = max(1, round(n / 40))
    sources: list[Source] = []
    for o in range(orgs):
        r = _sub(rng)
        country = r.choice(("US", "DE", "GB", "JP", "IN"))
        asns, tz = RESIDENTIAL[country]
        asn = asns[0]
        office = [world.v4(r, asn, country, 200 + o) for _ in range(between(r, 1, 3))]
        if r.random() < 0.5:
            office.append(world.v6(r, asn, country, 200 + o))
        org = token(r, "org_", 12)
        payment = hex_digest(r)
        onboarded = _aged(r, window, 60, 700)
        product = r.choice(("acme-assist", "helpdesk-ai", "copilot-internal", "docbot"))
        apps = [
            (hex_digest(r, 16), r.choice(text.ENTERPRISE), f"{product}/{between(r, 1, 5)}.{a}")
            for a in range(3)
        ]
        omit = ("prompt",) if o % 2 == 1 else ()
        size = n // orgs + (1 if o < n % orgs else 0)
        for i in range(size):
            a = _sub(r)
            system_hash, template, app_ua = a.choice(apps)
            created = onboarded + (
                a.uniform(0, 600) if a.random() < 0.7 else a.uniform(0, 50) * DAY
            )
            acct = world.account(
                a,
                "enterprise",
                min(created, window.start - DAY),
                tz=tz,
                org_id=org,
                payment=payment,
                places=office,
                system_hash=system_hash,
                omit=omit,
                user_agent=f"{app_ua} anthropic-sdk-python/0.{between(a, 38, 44)}.0",
            )
            style = Style((template,), "claude-sonnet-4-5", a.choice((2048, 4096)), 300, 0.3)
            if i == 0:
                sources.append(_nightly(a, acct, window, style))
                continue
            times = sessions(
                a,
                acct,
                window.start,
                window.end,
                daily=a.uniform(3, 15),
                profile="work",
                msgs=3,
                gap=120,
            )
            sources.append(_talk(a, acct, style, times))
    return sources


def _nightly(r: Random, acct: Account, window: Window, style: Style) -> Source:
    """A service account's nightly job: regular calls from 01:00 to 05:00 local time."""
    interval = r.uniform(20, 60)
    day = (window.start + acct.tz * HOUR) // DAY * DAY - acct.tz * HOUR
    while day < window.end:
        t = day + HOUR + r.uniform(0, 600)
        while t < day + 5 * HOUR and t < window.end:
            if t >= window.start:
                yield style.event(acct, r, t, 1, text.fill(r, style.templates[0]))
            t += interval * r.uniform(0.9, 1.1)
        day += DAY


def agentic_users(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Developers with coding agents: many tools, long multi-turn loops, working hours.

    A third adopt the new model within hours of its release, as early adopters do.
    """
    sources = []
    for _ in range(n):
        r = _sub(rng)
        ua, tools = r.choice(AGENT_CLIENTS)
        places, tz = world.home(r)
        if r.random() < 0.3:
            places = places + world.datacenter(r, 1)  # a cloud dev box too
        acct = world.account(
            r,
            "agentic_users",
            _aged(r, window, 2, 700),
            tz=tz,
            places=places,
            user_agent=ua.format(m=between(r, 0, 30)),
            payment=hex_digest(r),
            org_id=token(r, "org_", 12) if r.random() < 0.4 else None,
        )
        adopt = window.release_ts + lognormal(r, 2.5 * HOUR, 0.8) if r.random() < 0.35 else None
        style = Style(
            (),
            r.choice(MODELS[::2]),
            r.choice((8192, 16000, 32000)),
            r.uniform(200, 600),
            thinking_p=r.choice((0.0, 0.5, 0.9)),
            p429=0.01,
            adopt_ts=adopt,
        )
        sources.append(_agent_loops(r, acct, window, style, tools + between(r, 0, 20)))
    return sources


def _agent_loops(r: Random, acct: Account, window: Window, style: Style, tools: int) -> Source:
    per_day = lognormal(r, 1.5, 0.5)
    t = window.start
    for begin, _ in sessions(
        r, acct, window.start, window.end, daily=per_day, profile="work", msgs=1, gap=60
    ):
        if begin < t:
            continue  # still in the previous session
        t = begin
        context = between(r, 3000, 12000)
        for step in range(between(r, 15, 120)):
            if step == 0:
                prompt = text.fill(r, r.choice(text.AGENT_TASKS))
            elif r.random() < 0.12:
                prompt = text.fill(r, r.choice(text.AGENT_FOLLOWUPS))
                t += lognormal(r, 90, 1.0)  # the human reads and answers
            else:
                prompt = text.tool_output(r)
            if t >= window.end:
                return
            ts, event = style.event(acct, r, t, 1 + 2 * step, prompt)
            event["tools"] = tools
            if event.get("status") == 200:
                event["tool_calls"] = r.choice((0, 1, 1, 1, 2, 3))
            event["input_tokens"] = context + event["input_tokens"]
            yield ts, event
            context = context + between(r, 500, 3000) if context < 150_000 else 20_000
            t += event.get("latency_ms", 2000) / 1000 + r.uniform(1, 20)


def cgnat(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Unrelated mobile users behind one carrier's CGNAT pool: same few IPs, same ASN."""
    groups = max(1, round(n / 150))
    sources = []
    for g in range(groups):
        r = _sub(rng)
        asn, country = MOBILE[g % len(MOBILE)]
        pool = [world.v4(r, asn, country, 0) for _ in range(8)]
        tz = RESIDENTIAL.get(country, ((), 0.0))[1]
        size = n // groups + (1 if g < n % groups else 0)
        for _ in range(size):
            a = _sub(r)
            places = a.sample(pool, 2)
            if a.random() < 0.3:
                places.append(world.v6(a, asn, country, 0))
            ua = a.choice(
                ("okhttp/4.12.0", "Dart/3.4 (dart:io)", "CFNetwork/1494.0.7 Darwin/23.4.0")
            )
            fresh = a.random() < 0.15
            acct = world.account(
                a,
                "cgnat",
                window.start - (a.uniform(0.1, 3) if fresh else a.uniform(5, 700)) * DAY,
                tz=tz,
                places=places,
                user_agent=ua if a.random() < 0.7 else sdk_agent(a),
                payment=hex_digest(a),
            )
            times = sessions(
                a,
                acct,
                window.start,
                window.end,
                daily=lognormal(a, 2, 0.8),
                profile="human",
                msgs=3,
                gap=60,
            )
            sources.append(_talk(a, acct, _chat_style(a, window), times))
    return sources


def new_users(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Accounts created during the window: an eager first session (long answers, "think step
    by step", extended thinking, low-tier 429s), then ordinary use."""
    sources = []
    for _ in range(n):
        r = _sub(rng)
        places, tz = world.home(r)
        created = window.at(r.uniform(0, 0.9))
        acct = world.account(
            r,
            "new_users",
            created,
            tz=tz,
            places=places,
            user_agent=sdk_agent(r),
            payment=hex_digest(r) if r.random() < 0.8 else None,
        )
        style = _chat_style(r, window)
        style.max_tokens = r.choice((4096, 8192, 32000))
        style.thinking_p = 0.4
        style.p429 = 0.05
        sources.append(_newcomer(r, acct, window, style))
    return sources


def _newcomer(r: Random, acct: Account, window: Window, style: Style) -> Source:
    t = acct.created_ts + r.uniform(60, 1800)
    eager = (*text.COT_ELICIT[:2], *text.CHAT)
    for i in range(max(2, round(lognormal(r, 12, 0.6)))):
        if t >= window.end:
            return
        yield style.event(
            acct, r, t, 1 + 2 * (i % 6), text.fill(r, r.choice(eager), text.science_question(r))
        )
        t += lognormal(r, 45, 0.8)
    style.p429 = 0.01
    times = sessions(r, acct, t, window.end, daily=2, profile="human", msgs=3, gap=80)
    yield from _talk(r, acct, style, times)


def classroom(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """A class of accounts created the evening before, working one assignment together."""
    classes = max(1, round(n / 35))
    sources = []
    for c in range(classes):
        r = _sub(rng)
        asn, country = UNIVERSITY[c % len(UNIVERSITY)]
        tz = -6.0 if country == "US" else (0.0 if country == "GB" else 1.0)
        campus = [world.v4(r, asn, country, 0) for _ in range(3)] + [world.v6(r, asn, country, 0)]
        day = (window.start + tz * HOUR) // DAY * DAY - tz * HOUR
        begin = day + DAY + 14 * HOUR
        if begin > window.end - 2 * HOUR:
            begin = window.at(0.5)
        assignment = r.choice(text.ASSIGNMENTS)
        model = r.choice(MODELS[:2])
        notebook = f"python-requests/2.3{between(r, 0, 2)}.{between(r, 0, 3)}"
        size = n // classes + (1 if c < n % classes else 0)
        for _ in range(size):
            a = _sub(r)
            acct = world.account(
                a,
                "classroom",
                begin - 19 * HOUR + a.uniform(0, 3 * HOUR),
                tz=tz,
                places=campus,
                user_agent=notebook if a.random() < 0.8 else sdk_agent(a),
                payment=hex_digest(a) if a.random() < 0.3 else None,
            )
            style = Style((assignment,), model, 4096, 450, thinking_p=0.1, p429=0.01)
            sources.append(_student(a, acct, window, style, begin, world))
    return sources


def _student(
    r: Random, acct: Account, window: Window, style: Style, begin: float, world: World
) -> Source:
    t = begin + r.uniform(0, 900)
    for i in range(between(r, 10, 35)):
        if t >= min(window.end, begin + 100 * 60):
            break
        body = (
            style.templates[0] if i == 0 or r.random() < 0.25 else r.choice(text.STUDENT_FOLLOWUPS)
        )
        yield style.event(acct, r, t, 1 + 2 * min(i, 10), text.fill(r, body))
        t += lognormal(r, 150, 0.7)
    if r.random() < 0.3:  # finishing the homework at home in the evening
        acct.places = acct.places + world.home(r, acct.places[0].country)[0]
        home = acct.places[-1]
        t = begin + r.uniform(5, 8) * HOUR
        for _ in range(between(r, 5, 15)):
            if t >= window.end:
                return
            ts, event = style.event(acct, r, t, 1, text.fill(r, r.choice(text.STUDENT_FOLLOWUPS)))
            event.update(ip=home.ip, asn=home.asn, country=home.country)
            yield ts, event
            t += lognormal(r, 200, 0.7)


def sdk_crowd(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Thousands of users of the same SDK release: an identical client string and defaults.

    A quarter are cron scripts on a VPS (regular, round the clock, templated): look-alikes of
    bots, at low volume with short outputs from aged accounts.
    """
    ua = f"anthropic-sdk-python/{world.sdk_version} (CPython 3.12; Linux x86_64)"
    sources = []
    for _ in range(n):
        r = _sub(rng)
        cron = r.random() < 0.25
        places, tz = world.home(r)
        acct = world.account(
            r,
            "sdk_crowd",
            _aged(r, window, 3, 600),
            tz=tz,
            user_agent=ua,
            places=world.datacenter(r, 1) if cron else places,
            payment=hex_digest(r),
        )
        style = _chat_style(r, window)
        style.max_tokens = 1024 if r.random() < 0.7 else style.max_tokens
        if cron:
            style.templates = (r.choice(text.CRON),)
            sources.append(_cron(r, acct, window, style, r.choice((900.0, 1800.0, 3600.0))))
        else:
            times = sessions(
                r,
                acct,
                window.start,
                window.end,
                daily=lognormal(r, 3, 0.9),
                profile="human",
                msgs=2,
                gap=30,
            )
            sources.append(_talk(r, acct, style, times))
    return sources


def _cron(r: Random, acct: Account, window: Window, style: Style, interval: float) -> Source:
    t = window.start + r.uniform(0, interval)
    while t < window.end:
        yield style.event(acct, r, t, 1, text.fill(r, style.templates[0]))
        t += interval + r.uniform(-3, 8)


def app_vendor(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Customers of one note-taking app: the app's system prompt, client string and templates,
    each customer with their own card, home address and content."""
    r = _sub(rng)
    name = r.choice(("NoteGenie", "Scribely", "Inkwell", "MemoMind"))
    versions = [(f"{name}/4.{minor}.{between(r, 0, 9)}", hex_digest(r, 16)) for minor in (1, 2)]
    sources = []
    for _ in range(n):
        a = _sub(r)
        version, system_hash = a.choice(versions)
        os_ = a.choice(("Macintosh; macOS 14.6", "Windows NT 10.0; Win64", "iPhone; iOS 17.5"))
        places, tz = world.home(a)
        acct = world.account(
            a,
            "app_vendor",
            _aged(a, window, 1, 400),
            tz=tz,
            places=places,
            payment=hex_digest(a),
            user_agent=f"{version} ({os_}) anthropic-sdk-typescript/0.33.1",
            system_hash=system_hash,
        )
        style = Style(text.APP_VENDOR, "claude-sonnet-4-5", 2048, 250, 0.7)
        times = sessions(
            a,
            acct,
            window.start,
            window.end,
            daily=lognormal(a, 5, 0.8),
            profile="human",
            msgs=2,
            gap=90,
        )
        sources.append(_talk(a, acct, style, times))
    return sources


def content_platform(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """A long-form writing SaaS on one verified org account: round the clock, high volume,
    templated prompts with diverse fills, long outputs often at the ceiling (a look-alike of a
    harvester that elicits no reasoning and concentrates on writing, not on capabilities)."""
    sources = []
    for _ in range(n):
        r = _sub(rng)
        acct = world.account(
            r,
            "content_platform",
            _aged(r, window, 200, 1000),
            org_id=token(r, "org_", 12),
            payment=hex_digest(r),
            places=world.datacenter(r, between(r, 2, 6)),
            user_agent=sdk_agent(r),
            system_hash=hex_digest(r, 16),
        )
        style = Style(
            tuple(r.sample(text.CONTENT, 5)), r.choice(MODELS[:2]), r.choice((4096, 8192)),
            r.uniform(1500, 3000), temperature=r.choice((0.8, 1.0)), thinking_p=0.0, p429=0.01,
        )  # fmt: skip
        times = arrivals(r, window.start, window.end, r.uniform(100, 250), "global", 0.0)
        sources.append(_talk(r, acct, style, ((t, 1) for t in times)))
    return sources
