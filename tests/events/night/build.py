"""Build the night replay corpus (README.md here says what it is): ``python tests/events/night/build.py``.

Every event is a fixture of ``tests/events/`` (real shapes, provenance in its SOURCES.md) with
names, ids and times changed to one service of the shipped ``services.yaml``
(``credentialing-api``). Sentry webhooks are API Gateway requests signed with ``SECRET`` (a test
value, not a real secret) over the exact body, as Sentry signs them. Writes ``NN-*.json`` and
``manifest.json`` (file and the time to replay it at, in order).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EVENTS = HERE.parent
SECRET = "night-replay-sentry-secret-NOT-REAL"
ACCOUNT, REGION = "123456789012", "us-east-1"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod-cluster"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod-cluster/credentialing-api"
DB_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:credentialing-db"
ALB = "app/credentialing-alb/3f6b2a1c9d8e7f60"
TG = "targetgroup/credentialing-tg/8a7b6c5d4e3f2a10"
DAY = "2025-03-15"  # a Saturday; 06:00 UTC is 02:00 in New York: nobody is in business hours


def fixture(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def at(hms: str) -> str:
    return f"{DAY}T{hms}Z"


def uid(text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def sns_alarm(hms: str, name: str, state: str, metric: str, namespace: str, dims: dict[str, str]) -> Any:
    event = fixture("sns-cloudwatch-alarm-metric.json")
    sns = event["Records"][0]["Sns"]
    message = json.loads(sns["Message"])
    old = "OK" if state == "ALARM" else "ALARM"
    message.update(AlarmName=name, AlarmDescription=f"{name}. Runbook: https://wiki.example.com/runbooks/{name}",
                   AlarmArn=f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}", NewStateValue=state,
                   OldStateValue=old, StateChangeTime=at(hms).replace("Z", ".000+0000"),
                   NewStateReason=f"Threshold Crossed: alarm went {old} -> {state}.")
    message["Trigger"].update(MetricName=metric, Namespace=namespace,
                              Dimensions=[{"value": v, "name": k} for k, v in dims.items()])
    sns.update(MessageId=uid(f"{name}{hms}{state}"), Message=json.dumps(message), Timestamp=at(hms),
               Subject=f'{state}: "{name}" in US East (N. Virginia)')
    return event


def eventbridge_alarm(hms: str, name: str, state: str, metric: str, namespace: str, dims: dict[str, str]) -> Any:
    event = fixture("eventbridge-cloudwatch-alarm-state-change-single-metric.json")
    event.update(id=uid(f"eb{name}{hms}{state}"), time=at(hms),
                 resources=[f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"])
    detail = event["detail"]
    detail["alarmName"] = name
    detail["configuration"]["description"] = f"{name}: p99 latency"
    detail["configuration"]["metrics"][0]["metricStat"]["metric"].update(dimensions=dims, name=metric,
                                                                         namespace=namespace)
    detail["previousState"]["value"] = "OK" if state == "ALARM" else "ALARM"
    detail["state"].update(value=state, timestamp=at(hms).replace("Z", ".000+0000"),
                           reason=f"Threshold Crossed: p99 went {state}.")
    return event


def rds(hms: str, event_id: str, message: str) -> Any:
    event = fixture("rds-db-instance-event-failover.json")
    event.update(id=uid(f"rds{hms}{event_id}"), time=at(hms), resources=[DB_ARN])
    event["detail"].update(SourceArn=DB_ARN, SourceIdentifier="rds:credentialing-db", EventID=event_id,
                           Message=message, Date=at(hms))
    return event


def ecs_deployment(hms: str, name: str, deployment: str, reason: str) -> Any:
    event = fixture("ecs-deployment-in-progress.json")
    event.update(id=uid(f"ecs{hms}{name}"), time=at(hms), resources=[SERVICE_ARN])
    event["detail"].update(eventType="ERROR" if name.endswith("FAILED") else "INFO", eventName=name,
                           deploymentId=deployment, updatedAt=at(hms), reason=reason)
    return event


def ecs_task_stopped(hms: str, task: str) -> Any:
    event = fixture("ecs-task-state-change-stopped-health-check.json")
    task_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod-cluster/{task}"
    event.update(id=uid(f"task{task}"), time=at(hms), resources=[task_arn])
    detail = event["detail"]
    detail.update(clusterArn=CLUSTER_ARN, group="service:credentialing-api", taskArn=task_arn,
                  startedBy="ecs-svc/7700112233445566778", stoppedAt=at(hms), updatedAt=at(hms),
                  stoppedReason=f"Task failed ELB health checks in (target-group "
                                f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:{TG})")
    for container in detail.get("containers", []):
        container.update(name="credentialing-api", taskArn=task_arn)
    return event


def signed(resource: str, body: dict[str, Any], request_id: str) -> Any:
    raw = json.dumps(body, separators=(",", ":"))
    signature = hmac.new(SECRET.encode(), raw.encode(), hashlib.sha256).hexdigest()
    return {"resource": "/webhooks/sentry", "path": "/webhooks/sentry", "httpMethod": "POST",
            "headers": {"Content-Type": "application/json", "Request-ID": request_id,
                        "Sentry-Hook-Resource": resource, "Sentry-Hook-Timestamp": "1742018400",
                        "Sentry-Hook-Signature": signature},
            "body": raw, "isBase64Encoded": False}


def sentry_error(hms: str, issue: str, event_id: str) -> Any:
    body = fixture("sentry-error-created.json")
    error = body["data"]["error"]
    error.update(project=4505123, issue_id=issue, level="error", datetime=at(hms), event_id=event_id,
                 issue_url=f"https://sentry.io/api/0/issues/{issue}/",
                 web_url=f"https://sentry.io/organizations/example-org/issues/{issue}/events/{event_id}/")
    error.pop("timestamp", None)
    return signed("error", body, event_id[:32])


def sentry_issue_created(hms: str, issue: str) -> Any:
    body = fixture("sentry-issue-created.json")
    data = body["data"]["issue"]
    data.update(id=issue, shortId=f"CREDENTIALING-API-{issue[-2:]}", lastSeen=at(hms), firstSeen=at(hms),
                web_url=f"https://example-org.sentry.io/issues/{issue}/",
                project={"platform": "python", "slug": "credentialing-api", "id": "4505123",
                         "name": "Credentialing API"})
    return signed("issue", body, uid(f"issue{issue}").replace("-", ""))


def sentry_metric(hms: str, action: str, identifier: str, started: str) -> Any:
    body = fixture("sentry-metric-alert-critical.json" if action == "critical" else "sentry-metric-alert-resolved.json")
    body["action"] = action
    alert = body["data"]["metric_alert"]
    alert["alert_rule"].update(name="Credentialing API error spike", projects=["credentialing-api"])
    alert["alert_rule"]["organization_id"] = "1002003"
    alert.update(organization_id="1002003", projects=["credentialing-api"], identifier=identifier, title="Credentialing API error spike",
                 date_started=at(started), date_detected=at(hms), date_created=at(hms),
                 date_closed=at(hms) if action == "resolved" else None)
    return signed("metric_alert", body, uid(f"metric{identifier}{action}").replace("-", ""))


FIVE_XX = ("credentialing-api-alb-5xx-high", "HTTPCode_Target_5XX_Count", "AWS/ApplicationELB", {"LoadBalancer": ALB})
CONNECTIONS = ("credentialing-db-connections-high", "DatabaseConnections", "AWS/RDS",
               {"DBInstanceIdentifier": "credentialing-db"})
LATENCY = ("credentialing-api-p99-latency", "TargetResponseTime", "AWS/ApplicationELB", {"LoadBalancer": ALB})
UNHEALTHY = ("credentialing-api-unhealthy-hosts", "UnHealthyHostCount", "AWS/ApplicationELB",
             {"TargetGroup": TG, "LoadBalancer": ALB})


def alarm(hms: str, spec: tuple[str, str, str, dict[str, str]], state: str, *, eventbridge: bool = False) -> Any:
    name, metric, namespace, dims = spec
    return (eventbridge_alarm if eventbridge else sns_alarm)(hms, name, state, metric, namespace, dims)


# (time, file stem, event): an RDS Multi-AZ failover at 06:00, a failed deploy at 07:30.
NIGHT: list[tuple[str, str, Any]] = [
    ("06:00:05", "rds-failover-started", rds("06:00:05", "RDS-EVENT-0013", "A Multi-AZ failover has started.")),
    ("06:00:18", "sentry-error-operationalerror", sentry_error("06:00:18", "4200117", "a1" * 16)),
    ("06:00:24", "sentry-error-operationalerror-2", sentry_error("06:00:24", "4200117", "b2" * 16)),
    ("06:00:31", "sentry-issue-created-pool-timeout", sentry_issue_created("06:00:31", "4200118")),
    ("06:00:52", "rds-failover-completed", rds("06:00:52", "RDS-EVENT-0049", "A Multi-AZ failover has completed.")),
    ("06:01:02", "alarm-5xx", alarm("06:01:02", FIVE_XX, "ALARM")),
    ("06:01:07", "alarm-db-connections", alarm("06:01:07", CONNECTIONS, "ALARM")),
    ("06:01:15", "alarm-latency", alarm("06:01:15", LATENCY, "ALARM", eventbridge=True)),
    ("06:01:40", "sentry-metric-critical", sentry_metric("06:01:40", "critical", "61", "05:51:40")),
    ("06:02:02", "alarm-5xx-repeat", alarm("06:02:02", FIVE_XX, "ALARM")),  # re-notified: a new MessageId
    ("06:04:02", "alarm-5xx-ok", alarm("06:04:02", FIVE_XX, "OK")),
    ("06:04:37", "alarm-db-connections-ok", alarm("06:04:37", CONNECTIONS, "OK")),
    ("06:05:15", "alarm-latency-ok", alarm("06:05:15", LATENCY, "OK", eventbridge=True)),
    ("06:06:40", "sentry-metric-resolved", sentry_metric("06:06:40", "resolved", "61", "05:51:40")),
    ("07:30:00", "deploy-in-progress", ecs_deployment("07:30:00", "SERVICE_DEPLOYMENT_IN_PROGRESS",
                                                      "ecs-svc/7700112233445566778",
                                                      "ECS deployment ecs-svc/7700112233445566778 in progress.")),
    ("07:32:10", "task-stopped-health-check", ecs_task_stopped("07:32:10", "5c1d2e3f4a5b46c7d8e9f0a1b2c3d4e5")),
    ("07:32:41", "task-stopped-health-check-2", ecs_task_stopped("07:32:41", "6d2e3f4a5b6c47d8e9f0a1b2c3d4e5f6")),
    ("07:33:00", "alarm-unhealthy-hosts", alarm("07:33:00", UNHEALTHY, "ALARM")),
    ("07:33:20", "alarm-5xx-deploy", alarm("07:33:20", FIVE_XX, "ALARM")),
    ("07:33:31", "sentry-error-keyerror", sentry_error("07:33:31", "4200190", "c3" * 16)),
    ("07:33:45", "sentry-metric-critical-deploy", sentry_metric("07:33:45", "critical", "62", "07:23:45")),
    ("07:34:30", "deploy-failed", ecs_deployment("07:34:30", "SERVICE_DEPLOYMENT_FAILED",
                                                 "ecs-svc/7700112233445566778",
                                                 "ECS deployment circuit breaker: tasks failed to start.")),
    ("07:34:36", "deploy-rollback-in-progress", ecs_deployment(
        "07:34:36", "SERVICE_DEPLOYMENT_IN_PROGRESS", "ecs-svc/5507843301862214587",
        "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/5507843301862214587.")),
    ("07:35:05", "alarm-latency-deploy", alarm("07:35:05", LATENCY, "ALARM", eventbridge=True)),
    ("07:37:00", "alarm-unhealthy-hosts-ok", alarm("07:37:00", UNHEALTHY, "OK")),
    ("07:37:30", "alarm-5xx-deploy-ok", alarm("07:37:30", FIVE_XX, "OK")),
    ("07:38:05", "alarm-latency-deploy-ok", alarm("07:38:05", LATENCY, "OK", eventbridge=True)),
    ("07:38:45", "sentry-metric-resolved-deploy", sentry_metric("07:38:45", "resolved", "62", "07:23:45")),
    ("07:39:10", "deploy-completed", ecs_deployment("07:39:10", "SERVICE_DEPLOYMENT_COMPLETED",
                                                    "ecs-svc/5507843301862214587",
                                                    "ECS deployment ecs-svc/5507843301862214587 completed.")),
]


def main() -> None:
    for old in HERE.glob("[0-9][0-9]-*.json"):
        old.unlink()
    manifest = []
    for number, (hms, stem, event) in enumerate(NIGHT, start=1):
        name = f"{number:02d}-{stem}.json"
        (HERE / name).write_text(json.dumps(event, indent=1) + "\n")
        manifest.append({"file": name, "at": at(hms)})
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
