"""``python -m chalicelib``: the operator's and the tests' interface (stable).

    simulate FILE [--now ISO]            dry run of one event; prints one JSON object
    replay FILE... | replay - [--now ISO] run events through the real pipeline; one JSON line each
    incidents [--json] [--now ISO]        a table: severity, status, age, owner, title (team's time zone)
    incidents show ID [--json]            one incident with its pages and timeline
    ack ID --by NAME [--now ISO]
    resolve ID --by NAME [--now ISO]
    escalate [--now ISO]                  one run of the escalation sweep
    playbooks [--json]                    every playbook: id, IAM permissions, summary
    tokens create --user NAME --role ROLE [--json] | tokens revoke ID_OR_TOKEN
    postmortem ID [--done --by NAME]      the post-mortem draft (Markdown), or mark it written
    phi ID --by NAME                      mark "PHI exposure suspected" (Sev1, breach clock)
    report monthly --month YYYY-MM --out DIR   Markdown report with a PNG chart
    oncall [--at ISO] [--json]            who holds each role at that moment
    oncall calendar-url --role R | --person P   the signed URL of a calendar feed (.ics)
    page --severity N --title TEXT [--role ROLE | --person NAME] [--key KEY] --by NAME [--now ISO]
                                          page a human on purpose (a ``manual`` incident)
    escalate-now ID | reassign ID --to NAME | snooze ID --until ISO | severity ID --to N
                                          act on an incident, each with --by NAME [--now ISO]

The store comes from ``RESPONDER_STORE`` (default ``sqlite:///.responder/state.db``); a command
that finds it new or empty says which store it read, on stderr. With ``--now`` incident ids
are derived from the input, so the same replay gives the same ids.
Errors print one line on stderr and exit 1; ``tokens revoke`` of a token revoked before exits 3
(nothing changed). No tracebacks for bad input.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.errors import ConflictError, IncidentNotFound, InvalidRequest, ResponderError
from chalicelib.sources import safejson

EXIT_FAILED = 1  # argparse itself exits 2 on a usage error
EXIT_UNCHANGED = 3  # asked for a state that already held (a token revoked before)
LEASE_POLL_SECONDS = 0.05  # replay re-tries a delivery another process holds this often


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except IncidentNotFound as exc:
        return _fail(f"no incident {exc} in {_store_named(args)}")
    except ConflictError as exc:
        return _fail(str(exc))
    except ResponderError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib", description="alarm responder")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="dry run of one event: classification, decision, planned pages")
    p.add_argument("file")
    _add_now(p)
    p.set_defaults(run=cmd_simulate)

    p = sub.add_parser("replay", help="run events through the real pipeline (files, or - for NDJSON on stdin)")
    p.add_argument("files", nargs="+")
    _add_now(p)
    p.set_defaults(run=cmd_replay)

    p = sub.add_parser("incidents", help="list incidents (a table), or show one")
    p.add_argument("--json", action="store_true", help="every incident with pages and timeline, as JSON")
    p.add_argument("--now", type=_iso, help="ages as of this ISO time (default: the real clock)")
    p.set_defaults(run=cmd_incidents)
    show = p.add_subparsers(required=False, metavar="show ID").add_parser(
        "show", help="one incident with its pages and timeline")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    show.add_argument("--now", type=_iso, default=argparse.SUPPRESS)
    show.set_defaults(run=cmd_incident_show)

    p = sub.add_parser("escalate", help="run one escalation sweep (pages due steps, retries, fallbacks)")
    _add_now(p)
    p.set_defaults(run=cmd_escalate)

    p = sub.add_parser("backfill-due-shards",
                       help="one-off, DynamoDB: give incidents saved before the sharded due index their shard")
    p.set_defaults(run=cmd_backfill_due_shards)

    p = sub.add_parser("tokens", help="API tokens: create (printed once) or revoke")
    token_sub = p.add_subparsers(required=True, metavar="ACTION")
    create = token_sub.add_parser("create", help="create a token for a person and role")
    create.add_argument("--user", required=True)
    create.add_argument("--role", required=True, choices=["viewer", "responder", "admin"])
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=cmd_token_create)
    revoke = token_sub.add_parser("revoke", help="revoke a token (by id or the token itself)")
    revoke.add_argument("token")
    revoke.set_defaults(run=cmd_token_revoke)

    p = sub.add_parser("postmortem", help="print the post-mortem draft, or mark it written")
    p.add_argument("id")
    p.add_argument("--done", action="store_true")
    p.add_argument("--by")
    _add_now(p)
    p.set_defaults(run=cmd_postmortem)

    p = sub.add_parser("phi", help="mark an incident 'PHI exposure suspected'")
    p.add_argument("id")
    p.add_argument("--by", required=True)
    _add_now(p)
    p.set_defaults(run=cmd_phi)

    p = sub.add_parser("report", help="reports")
    report_sub = p.add_subparsers(required=True, metavar="KIND")
    monthly = report_sub.add_parser("monthly", help="the monthly incident report")
    monthly.add_argument("--month", required=True, type=_month)
    monthly.add_argument("--out", required=True)
    _add_now(monthly)
    monthly.set_defaults(run=cmd_report_monthly)

    p = sub.add_parser("playbooks", help="list the playbooks with their IAM permissions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_playbooks)

    p = sub.add_parser("oncall", help="who holds each role at a moment, and the stored overrides")
    p.add_argument("--at", dest="now", type=_iso, help="the moment (default: now)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_oncall)
    oncall_sub = p.add_subparsers(required=False, metavar="override | override-remove | calendar-url")
    add = oncall_sub.add_parser("override", help="someone holds a role for a stretch (kept in the store)")
    add.add_argument("--role", required=True)
    add.add_argument("--person", required=True)
    add.add_argument("--from", dest="start", required=True, help="ISO time with a UTC offset")
    add.add_argument("--to", dest="end", required=True, help="ISO time with a UTC offset, after --from")
    add.add_argument("--by", default="cli")
    _add_now(add)
    add.set_defaults(run=cmd_override_add)
    remove = oncall_sub.add_parser("override-remove", help="remove a stored override by its id")
    remove.add_argument("id")
    remove.add_argument("--by", default="cli")
    _add_now(remove)
    remove.set_defaults(run=cmd_override_remove)
    feed = oncall_sub.add_parser("calendar-url", help="the signed URL of a role's or a person's calendar feed "
                                                     "(a credential: share it only with them)")
    whose = feed.add_mutually_exclusive_group(required=True)
    whose.add_argument("--role")
    whose.add_argument("--person")
    feed.set_defaults(run=cmd_calendar_url)

    p = sub.add_parser("silence", help="silences: matching signals are recorded and page nobody (issue 14)")
    silence_sub = p.add_subparsers(required=True, metavar="add | list | end")
    add = silence_sub.add_parser("add", help="silence matching signals for a stretch (kept in the store)")
    add.add_argument("--match", action="append", required=True, metavar="FIELD=VALUE",
                     help="kind, resource, service, words or severity; repeat for more (all must match)")
    add.add_argument("--from", dest="start", required=True, help="ISO time with a UTC offset")
    add.add_argument("--to", dest="end", required=True, help="ISO time with a UTC offset, after --from")
    add.add_argument("--reason", required=True)
    add.add_argument("--include-sev1", action="store_true", help="silence Sev1 signals too")
    add.add_argument("--by", required=True)
    _add_now(add)
    add.set_defaults(run=cmd_silence_add)
    listing = silence_sub.add_parser("list", help="the silences not ended, and the maintenance windows")
    _add_now(listing)
    listing.set_defaults(run=cmd_silence_list)
    end = silence_sub.add_parser("end", help="end a silence now; what it held back is paged by the next sweep")
    end.add_argument("id")
    end.add_argument("--by", required=True)
    _add_now(end)
    end.set_defaults(run=cmd_silence_end)

    p = sub.add_parser("page", help="page a human on purpose: a manual incident through the pipeline")
    p.add_argument("--severity", required=True, type=int)
    p.add_argument("--title", required=True)
    owner = p.add_mutually_exclusive_group()
    owner.add_argument("--role", help="page whoever holds this role (default: the severity's chain)")
    owner.add_argument("--person", help="page this person")
    p.add_argument("--key", help="pages with the same key share the incident open for it")
    p.add_argument("--by", required=True)
    _add_now(p)
    p.set_defaults(run=cmd_page)

    for name, option, value_help, act in (
            ("escalate-now", None, None, "escalate"),
            ("reassign", "--to", "a role or a person of routing.yaml", "reassign"),
            ("snooze", "--until", "an ISO time: escalation pauses until then", "snooze"),
            ("severity", "--to", "the new severity, 1-4", "set_severity")):
        p = sub.add_parser(name, help=f"{name} an incident")
        p.add_argument("id")
        if option:
            p.add_argument(option, dest="value", required=True, help=value_help,
                           type=_iso if option == "--until" else int if name == "severity" else str)
        p.add_argument("--by", required=True)
        _add_now(p)
        p.set_defaults(run=functools.partial(cmd_operation, act=act))

    p = sub.add_parser("heartbeat", help="report in for a job (a heartbeat of routing.yaml)")
    p.add_argument("name")
    p.add_argument("--by", default="cli")
    _add_now(p)
    p.set_defaults(run=cmd_heartbeat)

    p = sub.add_parser("heartbeats", help="each heartbeat with its last beat and state")
    p.add_argument("--json", action="store_true")
    p.add_argument("--urls", action="store_true", help="also each one's signed URL (a credential: keep it secret)")
    _add_now(p)
    p.set_defaults(run=cmd_heartbeats)

    for name, fn in (("ack", cmd_ack), ("resolve", cmd_resolve)):
        p = sub.add_parser(name, help=f"{name} an incident")
        p.add_argument("id")
        p.add_argument("--by", required=True)
        _add_now(p)
        p.set_defaults(run=fn)
    return parser


def _add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", type=_iso, help="act as of this ISO time (default: the real clock)")


def _iso(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _clock(args: argparse.Namespace) -> Callable[[], datetime]:
    fixed: datetime | None = getattr(args, "now", None)
    if fixed is not None:
        return lambda: fixed
    return lambda: datetime.now(UTC)


def _deps(args: argparse.Namespace) -> Any:
    from chalicelib.decisions.incidents import derived_incident_id
    from chalicelib.settings import Settings
    from chalicelib.wiring import build_deps

    settings = Settings.from_env()
    args.store_url, args.store_was_new = settings.store_url, _is_new_store(settings.store_url)
    # With --now the run is a replay of a fixed moment: same input, same incident ids.
    return build_deps(settings, clock=_clock(args),
                      new_id=derived_incident_id if getattr(args, "now", None) else None)


def _is_new_store(url: str) -> bool:
    """True for a SQLite file that does not exist yet (opening the store creates it)."""
    if not url.startswith("sqlite://"):
        return False
    path = url.removeprefix("sqlite://").removeprefix("/")
    return not path or path == ":memory:" or not Path(path).exists()


def _store_named(args: argparse.Namespace) -> str:
    url = getattr(args, "store_url", None) or "the store"
    return url + (" (a new store)" if getattr(args, "store_was_new", False) else "")


def _say_if_empty(args: argparse.Namespace, incidents: list[Any]) -> None:
    """Say which store was read when it held nothing: the usual cause is a different RESPONDER_STORE."""
    if not incidents:
        print(f"no incidents in {_store_named(args)}", file=sys.stderr)


# --- commands -------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    from chalicelib import config, sources
    from chalicelib.pipeline import simulate
    from chalicelib.settings import Settings

    payload = _read_json(args.file)
    now = _clock(args)()
    settings = Settings.from_env()
    cfg = config.load(settings.config_dir)
    webhook: dict[str, Any] | None = None
    if _is_api_gateway_request(payload):
        signals, webhook = _webhook_signals(payload, settings, now)
    else:
        signals = sources.to_signals(payload, now, "simulate")
    executor = _planner(settings, cfg)
    plans = [_plan_json(simulate(signal, cfg, now, executor=executor), webhook) for signal in signals]
    _print(plans[0] if len(plans) == 1 else {"plans": plans})
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from chalicelib import handlers
    events = list(_replay_inputs(args.files))  # read everything first: a bad file stops before any effect
    deps = _deps(args)
    if args.store_was_new:
        print(f"replaying into {_store_named(args)}", file=sys.stderr)
    for origin, payload in events:
        if _is_api_gateway_request(payload):
            response = handlers.on_api_gateway_request(payload, deps)
            _print({"input": origin, "status": response.status, **response.body}, compact=True)
        else:
            result = _retrying(functools.partial(handlers.on_event, payload, "replay", deps), deps)
            for outcome in result["outcomes"]:
                _print({"input": origin, **outcome}, compact=True)
    return 0


def _retrying(run: Callable[[], Any], deps: Any) -> Any:
    """Run ``run``, waiting out another process's lease on the same delivery, as Lambda's retry would."""
    import time

    from chalicelib.errors import DeliveryInProgress
    from chalicelib.store.retry import retried

    attempts = int((deps.settings.delivery_lease_seconds + 5) / LEASE_POLL_SECONDS) + 1  # the lease, and then some
    return retried(run, what="delivery", attempts=attempts, pause=lambda _: time.sleep(LEASE_POLL_SECONDS),
                   retry_on=(DeliveryInProgress,))


def cmd_incidents(args: argparse.Namespace) -> int:
    from chalicelib.reports.textview import incident_table

    deps = _deps(args)
    incidents = deps.store.list()
    _say_if_empty(args, incidents)
    if args.json:
        _print([_incident_json(i) for i in incidents])
    elif incidents:
        print(incident_table(incidents, deps.clock(), deps.config.routing.zone))
    return 0


def cmd_incident_show(args: argparse.Namespace) -> int:
    from chalicelib.reports.textview import incident_detail

    deps = _deps(args)
    incident = deps.store.get(args.id)
    if incident is None:
        raise IncidentNotFound(args.id)
    if args.json:
        _print(_incident_json(incident))
    else:
        print(incident_detail(incident, deps.clock(), deps.config.routing.zone))
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    incident = _deps(args).pipeline.acknowledge(args.id, args.by)
    _print(_incident_json(incident))
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    incident = _deps(args).pipeline.resolve(args.id, args.by)
    _print(_incident_json(incident))
    return 0


def cmd_page(args: argparse.Namespace) -> int:
    from chalicelib.operations import Operations

    deps = _deps(args)
    reason, incident = Operations(deps.pipeline).page(severity=args.severity, title=args.title, role=args.role,
                                                      person=args.person, key=args.key, by=args.by)
    _print({"reason": reason, "incident": _incident_json(incident) if incident else None})
    return 0


def cmd_operation(args: argparse.Namespace, act: str) -> int:
    """escalate-now, reassign, snooze, severity: ``Operations.<act>``; prints the reason and the incident."""
    from chalicelib.operations import Operations

    operations = Operations(_deps(args).pipeline)
    run = getattr(operations, act)
    reason, incident = run(args.id, args.by) if act == "escalate" else run(args.id, args.value, args.by)
    _print({"reason": str(reason), "incident": _incident_json(incident)})
    return 0


def cmd_heartbeat(args: argparse.Namespace) -> int:
    from chalicelib.heartbeats import Heartbeats

    deps = _deps(args)
    _print(Heartbeats(deps.pipeline).beat(args.name, args.by, deps.clock()))
    return 0


def cmd_heartbeats(args: argparse.Namespace) -> int:
    from chalicelib.heartbeats import Heartbeats, signed_url

    deps = _deps(args)
    listing = Heartbeats(deps.pipeline).list(deps.clock())
    if args.urls:
        if deps.links is None:
            raise InvalidRequest("--urls", "no link secret is configured")
        listing = [item | {"url": signed_url(deps.links, item["name"])} for item in listing]
    if args.json:
        _print(listing)
        return 0
    for item in listing:
        print(f"{item['name']:<22} {item['state']:<13} last beat {item['last_beat'] or '-':<32} "
              f"every {item['every_minutes']} min + {item['grace_minutes']} grace, SEV{item['severity']}"
              + (f"\n{'':<22} {item['url']}" if args.urls else ""))
    return 0


def cmd_escalate(args: argparse.Namespace) -> int:
    from chalicelib import handlers

    deps = _deps(args)
    report = handlers.sweep(deps)
    if not report.get("incidents"):
        _say_if_empty(args, deps.store.list())
    _print(report, compact=True)
    return 0


def cmd_backfill_due_shards(args: argparse.Namespace) -> int:
    deps = _deps(args)
    backfill = getattr(deps.store, "backfill_due_shards", None)
    if backfill is None:  # SQLite keeps due_at in a column of its own: nothing to move
        print(f"nothing to backfill in {_store_named(args)}", file=sys.stderr)
        return 0
    _print({"backfilled": backfill()}, compact=True)
    return 0


def cmd_postmortem(args: argparse.Namespace) -> int:
    from chalicelib.reports.postmortem import draft
    from chalicelib.store import with_full_timeline

    deps = _deps(args)
    if args.done:
        if not args.by:
            raise InvalidRequest("--by", "who wrote the post-mortem is required with --done")
        _print(_incident_json(deps.pipeline.complete_duty(args.id, "postmortem", args.by)))
        return 0
    incident = deps.store.get(args.id)
    if incident is None:
        raise IncidentNotFound(args.id)
    print(draft(with_full_timeline(deps.store, incident), deps.config, deps.clock()))
    return 0


def cmd_phi(args: argparse.Namespace) -> int:
    _print(_incident_json(_deps(args).pipeline.mark_phi_exposure(args.id, args.by)))
    return 0


def cmd_report_monthly(args: argparse.Namespace) -> int:
    from chalicelib.reports.report import write_monthly

    deps = _deps(args)
    incidents = deps.store.list()
    _say_if_empty(args, incidents)
    path = write_monthly(incidents, args.month, Path(args.out), deps.config, deps.clock())
    print(path)
    return 0


def _month(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}") from None
    return text


def cmd_token_create(args: argparse.Namespace) -> int:
    from chalicelib.web.tokens import Role

    _, token = _deps(args).tokens.create(args.user, Role.parse(args.role))
    if args.json:
        _print({"token": token}, compact=True)
    else:
        print(token)  # alone on stdout: `TOKEN=$(python -m chalicelib tokens create …)`
    # A token works only where the API reads the same store: say which one holds it.
    print(f"token stored in {_store_named(args)}", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from chalicelib.web.tokens import token_id_of

    deps = _deps(args)
    token_id = token_id_of(args.token)
    record = deps.tokens.describe(token_id)
    if record is None:
        raise InvalidRequest("token", f"no token {token_id} in {_store_named(args)}")
    if record.get("revoked_at"):
        print(f"token {token_id} was already revoked ({record['revoked_at']} by {record.get('revoked_by')});"
              " nothing changed", file=sys.stderr)
        return EXIT_UNCHANGED
    deps.tokens.revoke(token_id)
    print(f"revoked {token_id} ({record['user']}, {record['role']})", file=sys.stderr)
    return 0


def cmd_playbooks(args: argparse.Namespace) -> int:
    from chalicelib.playbooks import REGISTRY

    listing = [{"id": p.id, "permissions": list(p.permissions), "summary": p.summary}
               for p in sorted(REGISTRY.values(), key=lambda p: p.id)]
    if args.json:
        _print(listing)
    else:
        for item in listing:
            print(f"{item['id']:<26} {item['summary']}\n{'':<26} permissions: {', '.join(item['permissions'])}")
    return 0


def cmd_override_add(args: argparse.Namespace) -> int:
    from chalicelib.overrides import OverrideService

    deps = _deps(args)
    added = OverrideService(deps.store, deps.config, deps.clock).add(role=args.role, person=args.person,
                                                                     start=args.start, end=args.end, by=args.by)
    _print(added.model_dump(mode="json"))
    return 0


def cmd_override_remove(args: argparse.Namespace) -> int:
    from chalicelib.overrides import OverrideService

    deps = _deps(args)
    _print(OverrideService(deps.store, deps.config, deps.clock).remove(args.id, args.by).model_dump(mode="json"))
    return 0


def cmd_silence_add(args: argparse.Namespace) -> int:
    from chalicelib.decisions.silences import unmapped_service_warning
    from chalicelib.silences import SilenceService

    matchers: dict[str, str] = {}
    for item in args.match:
        name, sep, value = item.partition("=")
        if not sep:
            raise InvalidRequest("--match", f"{item!r} is not FIELD=VALUE")
        matchers[f"{name.strip()}"] = value
    deps = _deps(args)
    added = SilenceService(deps.store, deps.clock).add(matchers=matchers, starts_at=args.start, ends_at=args.end,
                                                      reason=args.reason, by=args.by, include_sev1=args.include_sev1)
    warning = unmapped_service_warning(added.matchers, deps.config.services)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    _print(added.model_dump(mode="json") | ({"warnings": [warning]} if warning else {}))
    return 0


def cmd_silence_list(args: argparse.Namespace) -> int:
    from chalicelib.silences import SilenceService

    deps = _deps(args)
    windows = {name: w.model_dump(mode="json") for name, w in deps.config.routing.maintenance_windows.items()}
    _print({"silences": [s.model_dump(mode="json") for s in SilenceService(deps.store, deps.clock).listing()],
            "maintenance_windows": windows})
    return 0


def cmd_silence_end(args: argparse.Namespace) -> int:
    from chalicelib.silences import SilenceService

    deps = _deps(args)
    ended, released = SilenceService(deps.store, deps.clock, deps.pipeline.incidents).end(args.id, args.by)
    _print({**ended.model_dump(mode="json"), "released_incidents": released})
    return 0


def cmd_calendar_url(args: argparse.Namespace) -> int:
    from chalicelib.web.calendar import signed_url

    deps = _deps(args)
    routing = deps.config.routing
    if args.role is not None and args.role not in routing.roles:
        raise InvalidRequest("--role", f"no role {args.role!r} in routing.yaml")
    if args.person is not None and args.person not in routing.people:
        raise InvalidRequest("--person", f"no person {args.person!r} in routing.yaml")
    if deps.links is None or not deps.links.base_url:
        raise InvalidRequest("RESPONDER_PUBLIC_URL", "the responder's address is needed for a URL")
    print(signed_url(deps.links, "role", args.role) if args.role is not None
          else signed_url(deps.links, "person", args.person))
    return 0


def cmd_oncall(args: argparse.Namespace) -> int:
    from chalicelib import overrides
    from chalicelib.decisions.oncall import holders, in_business_hours, same_person_at

    at = _clock(args)()
    deps = _deps(args)
    stored = overrides.stored(deps.store)
    loaded = overrides.with_stored(deps.config, stored)
    routing = loaded.routing
    roles = {name: holders(role, at, routing.zone) for name, role in routing.roles.items()}
    business = in_business_hours(routing.business_hours, at, routing.zone)
    doubled = [f"{person} holds both {first} and {second}: escalating from one to the other pages {person} again"
               for first, second, person in same_person_at(routing, at)]
    if args.json:
        _print({"at": at.isoformat(), "timezone": routing.timezone, "business_hours": business, "roles": roles,
                "same_person_now": doubled, "warnings": list(loaded.warnings),
                "overrides": [o.model_dump(mode="json") for o in stored if o.removed_at is None]})
        return 0
    local = at.astimezone(routing.zone)
    print(f"on call at {local:%a %Y-%m-%d %H:%M} {routing.timezone}"
          + (" (business hours)" if business else ""))
    for name, people in roles.items():
        print(f"  {name:<22} {', '.join(people) or '-'}")
    for text in doubled:
        print(f"  now: {text}")
    for o in stored:
        if o.removed_at is None:
            print(f"  override {o.id}: {o.role} → {o.person} from {o.start.astimezone(routing.zone):%a %Y-%m-%d %H:%M}"
                  f" to {o.end.astimezone(routing.zone):%a %Y-%m-%d %H:%M} (by {o.by})")
    for text in loaded.warnings:
        print(f"warning: {text}")
    return 0


# --- helpers ---


def _incident_json(incident: Any) -> dict[str, Any]:
    out: dict[str, Any] = incident.model_dump(mode="json")
    out["time_to_acknowledge_seconds"] = incident.time_to_acknowledge
    return out


def _plan_json(plan: Any, webhook: dict[str, Any] | None) -> dict[str, Any]:
    signal = plan.signal
    out: dict[str, Any] = {
        "severity": plan.severity, "playbook": plan.playbook, "owner": plan.owner,
        "transition": plan.transition, "incident_key": plan.incident_key, "service": plan.service,
        "reason": plan.reason.value, "rule": plan.rule, "response_minutes": plan.response_minutes,
        "kind": str(signal.kind), "title": signal.title, "delivery_id": signal.delivery_id,
        "pages": [p.model_dump(mode="json", include={"role", "person", "channel", "kind", "text"})
                  for p in plan.pages],
        "escalation": list(plan.escalation),
        "playbook_steps": list(plan.playbook_steps),
        "playbook_reads": list(plan.playbook_reads),
    }
    if signal.unknown_reason:
        out["unknown_reason"] = signal.unknown_reason
    if webhook is not None:
        out["webhook"] = webhook
    return out


def _planner(settings: Any, cfg: Any) -> Any:
    """An executor that can only plan: reads allowed where AWS is (RESPONDER_AWS), no store writes."""
    from chalicelib.aws import Aws
    from chalicelib.playbooks.executor import Executor

    def refuse(*_: Any) -> None:
        raise AssertionError("simulate never escalates")

    return Executor(store=None, incidents=None, config=cfg, aws=Aws(build_missing=settings.aws_enabled),  # type: ignore[arg-type]
                    http=None, audit=None, stage=settings.stage, escalate_now=refuse)  # type: ignore[arg-type]


def _webhook_signals(payload: dict[str, Any], settings: Any, now: datetime) -> tuple[list[Any], dict[str, Any]]:
    import base64

    from chalicelib.errors import SignatureError
    from chalicelib.sources import decode, sentry
    from chalicelib.sources.unknown import unknown_signal

    headers = {str(k).lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
    body = payload.get("body") or ""
    raw = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode()
    path = str(payload.get("path") or "")
    check = "unchecked: SENTRY_CLIENT_SECRET not set"
    if settings.sentry_client_secret is not None:
        try:
            sentry.verify_signature(raw, headers, settings.sentry_client_secret.get_secret_value())
            check = "valid"
        except SignatureError as exc:
            check = f"invalid ({exc}): the route would answer 401 and store nothing"
    decoded = decode(raw)
    if not path.rstrip("/").endswith("/webhooks/sentry") or not isinstance(decoded, dict):
        return [unknown_signal(payload, source="http", received=now,
                               reason=f"no webhook route for {path!r} or body not JSON")], {"signature": check}
    signal = sentry.to_signal(decoded, resource=headers.get("sentry-hook-resource"),
                              request_id=headers.get("request-id"), raw=raw, received=now)
    return [signal], {"route": path, "signature": check}


def _is_api_gateway_request(payload: Any) -> bool:
    return isinstance(payload, dict) and "httpMethod" in payload and ("path" in payload or "resource" in payload)


def _read_json(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(path, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidRequest(path, "not UTF-8 text") from None
    try:
        return safejson.loads(text)
    except ValueError as exc:
        raise InvalidRequest(path, f"not JSON: {exc}") from None


def _replay_inputs(files: list[str]) -> Iterator[tuple[str, Any]]:
    for name in files:
        if name != "-":
            yield name, _read_json(name)
            continue
        for number, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                yield f"stdin:{number}", safejson.loads(line)
            except ValueError as exc:
                raise InvalidRequest(f"stdin line {number}", f"not JSON: {exc}") from None


def _print(value: Any, compact: bool = False) -> None:
    print(json.dumps(value, default=str, indent=None if compact else 2, sort_keys=compact))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED
