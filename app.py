"""Wiring only: each decorator hands its trigger to ``chalicelib.handlers``.

Imports are kept lean because every Lambda function of this app (the SNS handler, each
EventBridge rule, the API) imports this module on its cold start: chalice and stdlib
here; pydantic, the pipeline and boto3 load on the first event, inside the handlers.
"""

import os

from chalice import Chalice, Rate, Response
from chalice.app import CloudWatchEvent, SNSEvent

from chalicelib import observability

# Before the decorators: sentry-sdk's Chalice integration wraps handlers declared after init.
observability.init_error_reporting()
observability.setup_logging()

app = Chalice(app_name="alarm-responder")

# CloudTrail S3 calls that can touch Object Lock protection (runbook §5.5).
OBJECT_LOCK_EVENT_NAMES = [
    "PutObjectRetention", "PutObjectLegalHold", "PutObjectLockConfiguration",
    "DeleteObject", "DeleteObjects", "PutBucketVersioning",
]


def _handlers():  # type: ignore[no-untyped-def]
    from chalicelib import handlers

    return handlers


def on_alarm_sns(event: SNSEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "sns")


# One subscription per topic named in the stage config (RESPONDER_ALARM_TOPICS, comma-separated).
for _i, _topic in enumerate(t.strip() for t in os.environ.get(
        "RESPONDER_ALARM_TOPICS", "alarm-responder-alerts").split(",") if t.strip()):
    app.on_sns_message(topic=_topic, name="on_alarm_sns" if _i == 0 else f"on_alarm_sns_{_i}")(on_alarm_sns)


@app.on_cw_event({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]},
                 name="on_alarm_state_change")
def on_alarm_state_change(event: CloudWatchEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "eventbridge")


@app.on_cw_event({"source": ["aws.s3"], "detail-type": ["AWS API Call via CloudTrail"],
                  "detail": {"eventSource": ["s3.amazonaws.com"], "eventName": OBJECT_LOCK_EVENT_NAMES}},
                 name="on_cloudtrail_s3")
def on_cloudtrail_s3(event: CloudWatchEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "eventbridge")


@app.on_cw_event({"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]},
                 name="on_ecs_deployment")
def on_ecs_deployment(event: CloudWatchEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "eventbridge")


@app.schedule(Rate(1, unit=Rate.MINUTES), name="escalation_sweep")
def escalation_sweep(event: CloudWatchEvent) -> dict:
    """Durable timers: page the next escalation step, retry failed pages, use fallbacks."""
    return _handlers().sweep()


@app.route("/webhooks/sentry", methods=["POST"],
           content_types=["application/json", "text/plain", "application/octet-stream"])
def sentry_webhook() -> Response:
    request = app.current_request
    result = _handlers().on_sentry_webhook(dict(request.headers), request.raw_body or b"")
    return Response(body=result.body, status_code=result.status,
                    headers={"Content-Type": "application/json"})


@app.route("/health", methods=["GET"])
def health() -> dict:
    return _handlers().health()
