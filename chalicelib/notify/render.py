"""What a page says, for a person woken at 3 a.m.: pure functions of the incident and the config.

In this order: severity; what failed, in human words (the service and its symptom, from a
phrase table per kind and fact, never ``ecs_deployment`` or ``RDS-EVENT-0049``); when it
started in the team's time zone and how often it fired; what the responder already did; the
runbook section; a console link for the kind; who is paged next and when; the ack link.
An escalation page first says why it was sent.

``content`` gathers those fields once (``PageContent``); each channel gets its own form:

- ``full_text``: one line with everything (the console, PagerDuty's summary, Slack's fallback);
- ``sms_text``: one 160-character GSM-7 segment, the ack link last (``fit_sms`` puts the short
  link in when the page is sent, web/shortlinks.py);
- ``details`` and ``links``: PagerDuty ``custom_details`` and ``links``;
- ``slack_blocks``: Slack Block Kit blocks, a list another writer may extend (buttons).

Everything here comes from names, ids, times and counts the converters made PHI-free
(``Incident.facts``); never a description, a reason text or a request body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from chalicelib.config import ResponderConfig
from chalicelib.models import Frozen, Incident, PageKind, Severity
from chalicelib.notify import escape

SMS_LIMIT = 160  # one GSM-7 segment
# The ack link's length the SMS body is laid out for (an API Gateway address plus /a/<id>);
# ``fit_sms`` trims the body if the real one is longer.
SMS_LINK_ROOM = 72
FULL_LIMIT = 1024  # PagerDuty's payload.summary limit; every full-text channel gets the same text
WHAT_LIMIT = 200

VERBS = {PageKind.TRIGGER: "OPEN", PageKind.ESCALATION: "ESCALATED", PageKind.ACKNOWLEDGE: "ACKNOWLEDGED",
         PageKind.RESOLVE: "RESOLVED", PageKind.UPDATE: "UPDATE", PageKind.REMINDER: "REMINDER"}


class PageContent(Frozen):
    severity: Severity
    verb: str
    what: str
    started: str  # "10:42 EDT"
    fired: int
    done: str | None = None
    why: str | None = None  # an escalation's reason
    runbook: str | None = None  # the section's address, or its name without a base URL
    console: tuple[str, str] | None = None  # (label, address)
    next_up: str | None = None  # "christian (founder-backup) at 10:47 EDT"
    incident_id: str
    service: str | None = None  # the service it belongs to (services.yaml), when known
    holds: str | None = None  # a cause's effects that paged before it and page no further (grouping.took_over)
    phi: bool = False
    other_links: tuple[str, ...] = ()


# --- what failed, in words ---------------------------------------------------------------

ECS_DEPLOYMENT = {"SERVICE_DEPLOYMENT_FAILED": "deploy failed", "SERVICE_DEPLOYMENT_COMPLETED": "deploy completed",
                  "SERVICE_DEPLOYMENT_IN_PROGRESS": "deploying"}
RDS_EVENTS = {
    "RDS-EVENT-0004": "database shut down", "RDS-EVENT-0006": "database restarted",
    "RDS-EVENT-0007": "database storage full: writes stop", "RDS-EVENT-0013": "failover started",
    "RDS-EVENT-0015": "failover completed", "RDS-EVENT-0028": "automated backups disabled",
    "RDS-EVENT-0031": "database failed", "RDS-EVENT-0034": "database failing over",
    "RDS-EVENT-0035": "database unavailable: invalid parameters", "RDS-EVENT-0036": "database unavailable: network",
    "RDS-EVENT-0043": "snapshot failed", "RDS-EVENT-0049": "Multi-AZ failover completed",
    "RDS-EVENT-0050": "Multi-AZ failover completed", "RDS-EVENT-0069": "cluster failover started",
    "RDS-EVENT-0071": "cluster failover completed", "RDS-EVENT-0072": "cluster failover started",
    "RDS-EVENT-0073": "cluster failover completed", "RDS-EVENT-0089": "storage over 90% used",
    "RDS-EVENT-0173": "cluster patched",
}
CLOUDTRAIL = {
    "DeleteObject": "object deleted", "DeleteObjects": "objects deleted",
    "PutObjectRetention": "Object Lock retention changed", "PutObjectLegalHold": "legal hold changed",
    "PutObjectLockConfiguration": "Object Lock configuration changed", "PutBucketVersioning": "versioning changed",
    "PutBucketLifecycleConfiguration": "lifecycle rules changed", "PutBucketLifecycle": "lifecycle rules changed",
    "DeleteBucketLifecycle": "lifecycle rules deleted", "DeleteDBSnapshot": "DB snapshot deleted",
    "DeleteDBClusterSnapshot": "DB cluster snapshot deleted", "ModifyDBInstance": "database settings changed",
    "ModifyDBCluster": "cluster settings changed",
}
RECOVERY = {"pitr_disabled": "point-in-time recovery disabled", "retention_lowered": "backup retention lowered",
            "snapshot_deleted": "DB snapshot deleted"}
METRICS = {
    "HTTPCode_Target_5XX_Count": "5xx errors", "HTTPCode_ELB_5XX_Count": "load balancer 5xx errors",
    "5XXError": "5xx errors", "CPUUtilization": "CPU high", "DatabaseConnections": "database connections high",
    "FreeStorageSpace": "storage low", "Errors": "errors", "Throttles": "throttled",
    "UnHealthyHostCount": "unhealthy targets", "HealthyHostCount": "no healthy targets", "Latency": "slow",
    "TargetResponseTime": "slow responses", "Invocations": "invocations", "Duration": "slow",
}


def what_failed(incident: Incident) -> str:
    """The service and its symptom, in words, from the kind and the opening signal's facts."""
    facts = _facts(incident)
    kind = str(incident.kind)
    phrase = _PHRASES.get(kind)
    text = phrase(incident, facts) if phrase else None
    return escape.plain(text or incident.title)[:WHAT_LIMIT]


def _ecs_deployment(incident: Incident, facts: Mapping[str, str]) -> str:
    cluster, service = _ecs_names(incident.resource)
    symptom = ECS_DEPLOYMENT.get(facts.get("event_name", ""), "deployment event")
    return f"{service or incident.title} {symptom}" + (f" ({cluster})" if cluster else "")


def _ecs_task(incident: Incident, facts: Mapping[str, str]) -> str:
    service = facts.get("task_group", "").removeprefix("service:").removeprefix("family:") or "a task"
    if facts.get("health_check_failed") == "True":
        return f"{service} task stopped: failed health checks"
    code = facts.get("stop_code")
    return f"{service} task stopped" + (f" ({code})" if code else "")


def _rds(incident: Incident, facts: Mapping[str, str]) -> str:
    name = _arn_tail(incident.resource)
    event = facts.get("event_name", "")
    symptom = RDS_EVENTS.get(event) or f"{facts.get('event_category') or 'database'} event"
    return f"{name} {symptom}"


def _alarm(incident: Incident, facts: Mapping[str, str]) -> str:
    name = facts.get("alarm_name") or incident.title
    metrics = [METRICS[m] for m in _all(incident, "metric") if m in METRICS]
    symptom = metrics[0] if metrics else ("composite alarm firing" if facts.get("alarm_type") == "composite"
                                          else "alarm firing")
    return f"{name}: {symptom}"


def _cloudtrail(incident: Incident, facts: Mapping[str, str]) -> str:
    event = facts.get("event_name", "")
    symptom = RECOVERY.get(facts.get("recovery_weakening", "")) or CLOUDTRAIL.get(event) or f"{event} call"
    if event.startswith("DeleteObject") and facts.get("version_targeted") == "True":
        symptom = "object version deleted"
    target = facts.get("bucket") or _arn_tail(incident.resource)
    who = {"internal": "our account", "external": "OUTSIDE account"}.get(facts.get("caller", ""), "")
    denied = ", denied" if facts.get("error_code") else ""
    return f"{target}: {symptom}" + (f" ({who}{denied})" if who else f" ({denied[2:]})" if denied else "")


def _aws_health(incident: Incident, facts: Mapping[str, str]) -> str:
    service = facts.get("health_service", "AWS")
    region = facts.get("region", "")
    if facts.get("event_type_category") == "scheduledChange":
        return f"scheduled AWS {service} maintenance" + (f" in {region}" if region else "")
    state = {"closed": "over", "open": "ongoing"}.get(facts.get("status_code", ""), "reported")
    return f"AWS {service} outage {state}" + (f" in {region}" if region else "")


def _guardduty(incident: Incident, facts: Mapping[str, str]) -> str:
    band = facts.get("severity_band", "")
    return f"GuardDuty {band} finding: {facts.get('finding_type', incident.title)}".replace("  ", " ")


def _secrets(incident: Incident, facts: Mapping[str, str]) -> str:
    problem = {"failed": "rotation failed", "overdue": "rotation overdue"}.get(facts.get("rotation_problem", ""),
                                                                               "rotation problem")
    return f"secret {facts.get('secret_name') or incident.resource} {problem}"


def _sentry(incident: Incident, facts: Mapping[str, str]) -> str:
    where = incident.resource if incident.resource and not incident.resource.isdigit() else ""
    action = facts.get("sentry_action", "")
    if facts.get("sentry_resource") == "metric_alert":
        return incident.title.replace("Sentry metric alert", "Sentry alert")
    symptom = "new error" if action in ("created", "triggered") else f"error {action}".strip()
    return f"{symptom} in {where} (Sentry)" if where else f"{symptom} (Sentry)"


def _backup(incident: Incident, facts: Mapping[str, str]) -> str:
    state = facts.get("backup_state", "").lower() or "problem"
    return f"{_arn_tail(incident.resource) or 'a resource'} backup {state}"


_PHRASES = {
    "backup": _backup,
    "ecs_deployment": _ecs_deployment, "ecs_task": _ecs_task, "rds_event": _rds, "alarm": _alarm,
    "cloudtrail": _cloudtrail, "s3_object": _cloudtrail, "aws_health": _aws_health, "guardduty": _guardduty,
    "secrets_rotation": _secrets, "sentry_issue": _sentry, "sentry_event_alert": _sentry,
    "sentry_error": _sentry, "sentry_metric_alert": _sentry,
}


# --- where to look -----------------------------------------------------------------------

def console_link(incident: Incident) -> tuple[str, str] | None:
    """(label, address) of the console page for the incident's kind; the region (and account,
    in the label) from the signal."""
    facts = _facts(incident)
    region = facts.get("region") or _arn_part(incident.resource, 3) or "us-east-1"
    account = facts.get("account") or _arn_part(incident.resource, 4)
    home = f"https://{region}.console.aws.amazon.com"
    kind = str(incident.kind)
    label: str
    url: str
    if kind == "alarm":
        name = facts.get("alarm_name") or incident.title
        label, url = f"CloudWatch alarm {name}", f"{home}/cloudwatch/home?region={region}#alarmsV2:alarm/{quote(name)}"
    elif kind in ("ecs_deployment", "ecs_task"):
        cluster, service = _ecs_names(incident.resource)
        service = service if kind == "ecs_deployment" else facts.get("task_group", "").removeprefix("service:")
        if not cluster or not service:
            return None
        label = f"ECS service {service}"
        url = f"{home}/ecs/v2/clusters/{quote(cluster)}/services/{quote(service)}/health?region={region}"
    elif kind == "rds_event":
        name, what = _arn_tail(incident.resource), _arn_part(incident.resource, 5)
        anchor = {"cluster": "database:id={};is-cluster=true", "snapshot": "db-snapshot:id={}",
                  "cluster-snapshot": "db-snapshot:id={}"}.get(what, "database:id={};is-cluster=false")
        label, url = f"RDS {what or 'db'} {name}", f"{home}/rds/home?region={region}#{anchor.format(quote(name))}"
    elif kind in ("cloudtrail", "s3_object"):
        target = facts.get("bucket") or _arn_tail(incident.resource)
        label = f"CloudTrail events on {target}"
        url = f"{home}/cloudtrailv2/home?region={region}#/events?ResourceName={quote(target)}"
    elif kind == "aws_health":
        label, url = "AWS Health dashboard", "https://health.aws.amazon.com/health/home#/account/dashboard/open-issues"
    elif kind == "guardduty":
        label, url = "GuardDuty findings", f"{home}/guardduty/home?region={region}#/findings"
    elif kind == "secrets_rotation":
        name = facts.get("secret_name") or incident.resource
        label, url = f"secret {name}", f"{home}/secretsmanager/secret?name={quote(name)}&region={region}"
    elif kind == "backup":
        label, url = "AWS Backup jobs", f"{home}/backup/home?region={region}#/jobs"
    elif kind == "codebuild":
        project = facts.get("project_name", "")
        label = f"CodeBuild {project}"
        url = f"{home}/codesuite/codebuild/projects/{quote(project)}/history?region={region}"
    elif kind.startswith("sentry") and incident.links:
        return "Sentry issue", incident.links[0]
    else:
        return None
    if account:
        label += f" (account {account}, {region})"
    return label, url


def runbook_link(incident: Incident, config: ResponderConfig) -> str:
    """The runbook section for the incident's playbook, else its rule, else the default."""
    runbook = config.routing.runbook
    rule = incident.rule.removeprefix("rule:")
    section = runbook.sections.get(incident.playbook or "") or runbook.sections.get(rule) or runbook.default
    return f"{runbook.base_url}#{section}" if runbook.base_url else f"section {section}"


def local_time(moment: datetime, config: ResponderConfig) -> str:
    return moment.astimezone(config.routing.zone).strftime("%H:%M %Z")


# --- the content, once -------------------------------------------------------------------

def content(incident: Incident, kind: PageKind, config: ResponderConfig, *, why: str | None = None,
            next_up: str | None = None, done: str | None = None, verb: str | None = None) -> PageContent:
    console = console_link(incident)
    others = tuple(link for link in incident.links if console is None or link != console[1])
    return PageContent(
        severity=incident.severity, verb=verb or VERBS[kind], what=what_failed(incident),
        started=local_time(incident.opened_at, config), fired=incident.count,
        done=done if done is not None else responder_did(incident), why=why,
        runbook=runbook_link(incident, config), console=console, next_up=next_up,
        incident_id=incident.id, service=incident.service or None, phi=incident.phi_exposure_suspected,
        other_links=others[:2], holds=holds(incident) if kind.calls_for_action else None)


def holds(incident: Incident, shown: int = 3) -> str | None:
    """"holds 2 paged before it: <title> (<id>); …": the effects a late cause took over, which
    page no further; its pages say so, so nobody is un-paged silently."""
    if not incident.took_over:
        return None
    titles = dict(incident.related)
    named = "; ".join(f"{titles.get(i, i)} ({i})" for i in incident.took_over[:shown])
    more = len(incident.took_over) - shown
    return f"holds {len(incident.took_over)} paged before it: {named}" + (f" and {more} more" if more > 0 else "")


def responder_did(incident: Incident) -> str | None:
    """What the playbook did, as the incident records it; before it ran, that it is about to."""
    if not incident.playbook:
        return None
    if incident.playbook_outcome:
        return f"playbook {incident.playbook}: {incident.playbook_outcome}"
    return f"playbook {incident.playbook} starting"  # an update page follows if it changes anything


def full_text(c: PageContent, ack: str | None = None) -> str:
    """One line with everything, the ack link last (kept whole if the line must be clipped)."""
    parts = [f"[SEV{c.severity.value}] {c.verb}" + (f" ({c.why})" if c.why else "") + f": {c.what}"]
    if c.service:
        parts.append(f"service {c.service}")
    if c.holds:
        parts.append(c.holds)
    if c.phi:
        parts.append("PHI exposure suspected")  # the fact, never the data
    parts.append(f"started {c.started}" + (f", fired {c.fired}x" if c.fired > 1 else ""))
    if c.done:
        parts.append(f"responder: {c.done}")
    if c.runbook:
        parts.append(f"runbook: {c.runbook}")
    if c.console:
        parts.append(f"console: {c.console[1]}")
    if c.next_up:
        parts.append(f"next: {c.next_up}")
    parts.append(f"incident {c.incident_id}")
    tail = f" | ack: {ack}" if ack else ""
    return escape.plain(" | ".join(parts))[:FULL_LIMIT - len(tail)] + tail


def sms_text(c: PageContent, ack: str | None = None) -> str:
    """The SMS body (severity, why, what, when, what was done, who is next), laid out to leave
    room for the ack link; with ``ack`` (a placeholder until sending) it follows last. What does
    not fit goes from the end (who is next, then what was done), then the reason shortens."""
    verb = "" if c.verb == "OPEN" else f" {c.verb}"
    what = re.sub(r" \([^)]*\)$", "", c.what)  # "(prod-cluster)": the console page has it
    when = f"since {c.started}" + (f" x{c.fired}" if c.fired > 1 else "")
    done = _short_done(c.done)
    took = f"holds {c.holds.split()[1]} paged before" if c.holds else ""  # their names: the other channels
    optional = [o for o in ("PHI suspected" if c.phi else "", took, "" if c.verb == "UPDATE" else done,
                            f"Next {_short_next(c.next_up)}" if c.next_up else "") if o]
    if c.verb == "UPDATE" and done:  # the update is what was done: it replaces the time
        when = done
    room = SMS_LIMIT - (SMS_LINK_ROOM + 1 if ack else 0)
    segments: list[str] = []
    for why in _short_whys(c.why):
        segments = [f"SEV{c.severity.value}{verb}" + (f", {why}" if why else "") + f": {what}", when, *optional]
        while len(segments) > 2 and septets(gsm7(". ".join(segments))) > room:
            segments.pop()
        if septets(gsm7(". ".join(segments))) <= room:
            break
    over = septets(gsm7(". ".join(segments))) - room
    if over > 0:  # the words give way before the time does
        head, _, words = segments[0].partition(": ")
        segments[0] = f"{head}: {fit_gsm7(words, max(septets(gsm7(words)) - over, 12))}"
    body = fit_gsm7(". ".join(segments), room).replace("....", "...")
    return f"{body} {ack}" if ack else body


def fit_sms(text: str, placeholder: str, url: str) -> str:
    """The stored SMS text with ``url`` for ``placeholder``, in one GSM-7 segment: the body is
    trimmed if the link is longer than laid out for."""
    body = gsm7(text.replace(placeholder, "").rstrip())
    return f"{fit_gsm7(body, SMS_LIMIT - len(url) - 1)} {url}"


def details(c: PageContent) -> tuple[tuple[str, str], ...]:
    """The page's fields by name, in the page's order (PagerDuty ``custom_details``, the console)."""
    rows = [("severity", f"SEV{c.severity.value}"), ("what", c.what), ("service", c.service or ""),
            ("holds", c.holds or ""), ("why", c.why or ""), ("phi", "exposure suspected" if c.phi else ""),
            ("started", c.started), ("fired", str(c.fired)), ("responder did", c.done or ""),
            ("runbook", c.runbook or ""), ("console", c.console[1] if c.console else ""),
            ("next", c.next_up or ""), ("incident", c.incident_id)]
    return tuple((name, escape.plain(value)) for name, value in rows if value)


def links(c: PageContent) -> tuple[tuple[str, str], ...]:
    """(text, address) for channels that show links apart: the console page, the runbook, the rest."""
    found = []
    if c.console:
        found.append(c.console)
    if c.runbook and c.runbook.startswith("https://"):
        found.append(("Runbook", c.runbook))
    found += [("Link", link) for link in c.other_links]
    return tuple(found)


def slack_blocks(text: str, fields: tuple[tuple[str, str], ...], page_links: tuple[tuple[str, str], ...],
                 ack_url: str | None = None) -> list[dict[str, Any]]:
    """Block Kit blocks for a page: the headline, its fields, and a row of link buttons (the ack
    link among them only on the paged person's own channel). A list, so a caller may add blocks."""
    fields_by = dict(fields)
    headline = fields_by.get("what") or text
    sev = fields_by.get("severity", "")
    why = fields_by.get("why")
    title = f"*{escape.slack(sev)}* {escape.slack(headline)}" + (f"\nEscalated: {escape.slack(why)}" if why else "")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": title[:3000]}}]
    shown = [(name, value) for name, value in fields if name not in ("severity", "what", "why", "console", "runbook")]
    if shown:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{escape.slack(name)}*\n{escape.slack(value)}"[:2000]}
            for name, value in shown[:10]]})
    buttons = [{"type": "button", "text": {"type": "plain_text", "text": label[:75]}, "url": url}
               for label, url in page_links if url.startswith("https://")][:4]
    if ack_url:
        buttons.insert(0, {"type": "button", "style": "primary", "text": {"type": "plain_text", "text": "Acknowledge"},
                           "url": ack_url})
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


# --- GSM-7 --------------------------------------------------------------------------------

_GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
              "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXTENDED = "^{}\\[~]|€"  # two septets each
_ASCII = {"—": "-", "–": "-", "…": "...", "→": "->", "×": "x", "·": "-", "“": '"', "”": '"', "‘": "'", "’": "'",
          "•": "-", "\u00a0": " ", "`": "'"}


def gsm7(text: str) -> str:
    """``text`` in the GSM-7 alphabet: a phone shows it as sent, in 160 characters a segment
    (one character outside it would switch the whole SMS to UCS-2: 70 a segment)."""
    text = escape.plain(text)
    out = []
    for char in text:
        char = _ASCII.get(char, char)
        out.append("".join(c if c in _GSM_BASIC or c in _GSM_EXTENDED else "?" for c in char))
    return "".join(out)


def septets(text: str) -> int:
    return sum(2 if char in _GSM_EXTENDED else 1 for char in text)


def fit_gsm7(text: str, room: int) -> str:
    text = gsm7(text)
    if septets(text) <= room:
        return text
    while text and septets(text) > room - 3:
        text = text[:-1]
    return text.rstrip() + "..."


# --- helpers ------------------------------------------------------------------------------

def _facts(incident: Incident) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in incident.facts:
        found.setdefault(name, value)
    return found


def _all(incident: Incident, name: str) -> list[str]:
    return [value for key, value in incident.facts if key == name]


def _arn_part(arn: str, index: int) -> str:
    parts = arn.split(":", 5)
    if not arn.startswith("arn:") or len(parts) <= index:
        return ""
    return parts[index].split("/")[0] if index == 5 else parts[index]


def _arn_tail(resource: str) -> str:
    """The name at the end of an ARN (``db:credentialing-prod`` → ``credentialing-prod``)."""
    if not resource.startswith("arn:"):
        return resource.split(",")[0].strip()
    rest = resource.split(":", 5)[-1]
    return re.split(r"[:/]", rest)[-1]


def _ecs_names(arn: str) -> tuple[str, str]:
    """(cluster, service) of an ECS service or task ARN (``service/prod-cluster/checkout-api``)."""
    if not arn.startswith("arn:aws:ecs:"):
        return "", ""
    path = arn.split(":", 5)[-1].split("/")
    if path[0] == "service" and len(path) == 3:
        return path[1], path[2]
    if path[0] == "task" and len(path) >= 2:
        return path[1], ""
    return "", ""


def _short_whys(why: str | None) -> list[str]:
    """An escalation's reason, from its whole SMS form to its first words ("breaker open")."""
    if not why:
        return [""]
    short = re.sub(r"unacknowledged for (\d+) min", r"unacked \1m", why).replace("verification failed", "check failed")
    short = short.removesuffix("; a human decides")
    forms = [short, re.split(r"[,;]", short)[0], short.split(":")[0]]
    return list(dict.fromkeys(forms))


def _short_done(done: str | None) -> str:
    if not done:
        return ""
    return done.replace("playbook ", "").replace("; an update follows", "")


def _short_next(next_up: str) -> str:
    return re.sub(r" \([^)]*\)", "", next_up)  # the role left out: the name and time say enough


def playbook_summary(playbook: str, dry_run: bool, steps: list[tuple[dict[str, Any], str]],
                     error: str | None = None) -> str | None:
    """What a playbook run did, for the update page: its changes and their results, the watch
    it started, a severity it raised (reads and notes left out: the timeline has them). None
    when there is nothing to tell: a dry run, or a run with nothing to change."""
    if error:
        return f"{playbook} could not run ({error}); nothing was changed"
    if dry_run:
        return None
    said = []
    for step, result in steps:
        kind = step.get("type")
        if kind == "api_call" and step.get("mutating", True):
            what = step.get("why") or f"{step.get('service')}:{step.get('operation')}"
            said.append(f"{what}: {result}")
        elif kind == "watch" and result.startswith("watching"):
            said.append(result.split(" until ")[0])
        elif kind == "raise_severity":
            said.append(result)
    return f"{playbook} (live): " + "; ".join(said) if said else None
