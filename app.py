"""Wiring only: each decorator hands its trigger to ``chalicelib.handlers``.

Imports are kept lean because every Lambda function of this app (the SNS handler, each
EventBridge rule, the API) imports this module on its cold start: chalice and stdlib
here; pydantic, the pipeline and boto3 load on the first event, inside the handlers.
"""

import os
from collections.abc import Callable
from typing import Any

from chalice import AuthResponse, Chalice, Rate, Response
from chalice.app import AuthRequest, ChaliceAuthorizer, CloudWatchEvent, Request, SNSEvent, SQSEvent

from chalicelib import coldstart, observability
from chalicelib.sources import registry
from chalicelib.web import (
    gateway,  # Before the decorators: sentry-sdk's Chalice integration wraps handlers declared after init.
)

observability.init_error_reporting()

app = Chalice(app_name="alarm-responder")
observability.setup_logging(None, app.log)  # Chalice's own log too: its default prints exception messages

if "AWS_LAMBDA_FUNCTION_NAME" not in os.environ:  # chalice local, the test client: API Gateway's error bodies
    gateway.install_local_gateway_responses(os.path.join(os.path.dirname(__file__), ".chalice", "merge-template.json"))

_loaded_handlers = None


def _handlers():  # type: ignore[no-untyped-def]
    global _loaded_handlers
    if _loaded_handlers is None:
        with coldstart.loading():  # the first event's imports (pydantic, the pipeline, the config)
            from chalicelib import handlers
        _loaded_handlers = handlers
    return _loaded_handlers


def _guarded():  # type: ignore[no-untyped-def]
    """Store unavailable → 503 JSON, for the authorizer and the routes that read it (chalicelib/web/availability.py)."""
    from chalicelib.web import availability
    return availability


def on_alarm_sns(event: SNSEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "sns")


# One subscription per topic named in the stage config (RESPONDER_ALARM_TOPICS, comma-separated).
for _i, _topic in enumerate(t.strip() for t in os.environ.get(
        "RESPONDER_ALARM_TOPICS", "alarm-responder-alerts").split(",") if t.strip()):
    app.on_sns_message(topic=_topic, name="on_alarm_sns" if _i == 0 else f"on_alarm_sns_{_i}")(on_alarm_sns)


def _eventbridge_handler(name: str) -> Callable[[CloudWatchEvent], dict]:
    def handler(event: CloudWatchEvent) -> dict:
        return _handlers().on_event(event.to_dict(), "eventbridge")
    handler.__name__ = handler.__qualname__ = name
    return handler


# One Lambda per EventBridge rule the sources declare (chalicelib/sources/catalog.py, stdlib only).
for _rule in registry.eventbridge_rules():
    app.on_cw_event(_rule.pattern, name=_rule.name)(_eventbridge_handler(_rule.name))


@app.schedule(Rate(1, unit=Rate.MINUTES), name="escalation_sweep")
def escalation_sweep(event: CloudWatchEvent) -> dict:
    """Durable timers: hand every incident with something due (the next escalation step, a
    page retry, a fallback) to the sweep queue; locally, advance them here."""
    return _handlers().sweep()


@app.schedule(Rate(1, unit=Rate.DAYS), name="secret_rotation_check")
def secret_rotation_check(event: CloudWatchEvent) -> dict:
    """Runbook §6: one Sev3 incident per secret not rotated for 90 days (names only, never values)."""
    return _handlers().check_secret_rotation()


# The sweep's fan-out (chalicelib/notify/sweep_queue.py): the queue the merge template declares
# for this stage; ten incidents per invocation; at most SWEEP_WORKERS at once, so a burst of due
# incidents cannot take all of DynamoDB's and the channels' headroom (README, "Sweep at scale").
SWEEP_WORKERS = 100


@app.on_sqs_message(queue=f"alarm-responder-{os.environ.get('RESPONDER_STAGE', 'local')}-sweep", batch_size=10,
                    name="sweep_worker", maximum_concurrency=SWEEP_WORKERS)
def sweep_worker(event: SQSEvent) -> dict:
    """Advance the batch's incidents; only the messages that failed go back to the queue."""
    from chalicelib.notify.sweep_queue import lambda_time_left

    return _handlers().on_sweep_messages(event.to_dict(), time_left=lambda_time_left(event.context))


@app.schedule(Rate(5, unit=Rate.MINUTES), name="canary")
def canary(event: CloudWatchEvent) -> dict:
    """Self-monitoring: classify → store → pager on the canary channel, then a CanaryCompleted metric."""
    from chalicelib.canary import run_canary

    deps = _handlers().get_deps()
    return run_canary(deps, deps.clock())


@app.route("/webhooks/pagerduty", methods=["POST"],
           content_types=["application/json", "text/plain", "application/octet-stream"])
def pagerduty_webhook() -> Response:
    request = app.current_request
    result = _guarded().guarded(lambda: _handlers().on_pagerduty_webhook(dict(request.headers),
                                                                         request.raw_body or b""))
    return Response(body=result.body, status_code=result.status, headers={"Content-Type": "application/json"})


# Slack's buttons and slash commands: no authorizer, Slack signs each request; the Slack member
# acts as the person routing.yaml maps them to (chalicelib/web/slack.py).
@app.route("/webhooks/slack", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def slack_webhook() -> Response:
    from chalicelib.web import slack
    request = app.current_request
    result = _guarded().guarded(lambda: slack.handle(_handlers().get_deps(), dict(request.headers),
                                                     request.raw_body or b""))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


@app.middleware("all")
def lambda_context_in_logs(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Every invocation's log lines carry its Lambda context (function, request id, cold start)."""
    context = getattr(event, "lambda_context", None)  # a route's Request; an event's is .context
    observability.bind_lambda_context(context if context is not None else getattr(event, "context", None))
    return get_response(event)


@app.middleware("http")
def api_edge(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """Every API request: the API learns its own address (the template cannot tell it without a
    circular dependency); every error Chalice itself answers leaves in the README's shape."""
    from chalicelib import wiring
    wiring.learn_public_url(gateway.public_url(request.context or {}, request.headers or {}))
    response = get_response(request)
    route = app.routes.get((request.context or {}).get("resourcePath", ""), {}).get(request.method)
    reshaped = gateway.reshape_chalice_error(response.status_code, response.body,
                                             route.content_types if route else None)
    if reshaped is not None:
        response.body = reshaped
        response.headers = {**(response.headers or {}), "Content-Type": "application/json"}
    return response


# --- the incident API: bearer tokens; the authorizer identifies, each view checks the role ---


class _LoggedAuthorizer(ChaliceAuthorizer):
    """Chalice runs no middleware for authorizers and hands them no context: bind it here."""

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        observability.bind_lambda_context(context)
        return super().__call__(event, context)


@app.authorizer(ttl_seconds=0)  # no policy cache: a revoked token stops working at once
def token_authorizer(auth_request: AuthRequest) -> AuthResponse:
    identity = _guarded().identify(auth_request.token)
    return AuthResponse(routes=["*"], principal_id=identity["user"], context=identity)


token_authorizer.__class__ = _LoggedAuthorizer  # the registered object stays; its calls bind the context


def _api(view_name: str, *args: object) -> Response:
    request = app.current_request
    result = _guarded().api_view(view_name, (request.context or {}).get("authorizer") or {}, *args)
    return Response(body=result.body, status_code=result.status, headers=result.headers)


def _raw() -> bytes:
    return app.current_request.raw_body or b""


@app.route("/incidents", methods=["GET"], authorizer=token_authorizer)
def list_incidents() -> Response:
    return _api("list_incidents", dict(app.current_request.query_params or {}))


@app.route("/incidents", methods=["POST"], authorizer=token_authorizer, content_types=["application/json"])
def page_on_purpose() -> Response:
    return _api("page", _raw())


@app.route("/incidents/{incident_id}", methods=["GET"], authorizer=token_authorizer)
def get_incident(incident_id: str) -> Response:
    return _api("get_incident", incident_id)


@app.route("/incidents/{incident_id}/ack", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def ack_incident(incident_id: str) -> Response:
    return _api("acknowledge", incident_id, _raw())


@app.route("/incidents/{incident_id}/resolve", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def resolve_incident(incident_id: str) -> Response:
    return _api("resolve", incident_id, _raw())


@app.route("/incidents/{incident_id}/notes", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def add_note(incident_id: str) -> Response:
    return _api("add_note", incident_id, _raw())


@app.route("/incidents/{incident_id}/postmortem", methods=["GET"], authorizer=token_authorizer)
def incident_postmortem(incident_id: str) -> Response:
    return _api("postmortem", incident_id)


@app.route("/incidents/{incident_id}/phi-exposure", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def incident_phi_exposure(incident_id: str) -> Response:
    return _api("mark_phi_exposure", incident_id, _raw())


@app.route("/incidents/{incident_id}/duties/{kind}/done", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def incident_duty_done(incident_id: str, kind: str) -> Response:
    return _api("complete_duty", incident_id, kind)


@app.route("/incidents/{incident_id}/escalate", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def escalate_incident(incident_id: str) -> Response:
    return _api("escalate", incident_id, _raw())


@app.route("/incidents/{incident_id}/reassign", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json"])
def reassign_incident(incident_id: str) -> Response:
    return _api("reassign", incident_id, _raw())


@app.route("/incidents/{incident_id}/snooze", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json"])
def snooze_incident(incident_id: str) -> Response:
    return _api("snooze", incident_id, _raw())


@app.route("/incidents/{incident_id}/severity", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json"])
def incident_severity(incident_id: str) -> Response:
    return _api("set_severity", incident_id, _raw())


@app.route("/oncall/overrides", methods=["GET"], authorizer=token_authorizer)
def list_overrides() -> Response:
    return _api("list_overrides")


@app.route("/oncall/overrides", methods=["POST"], authorizer=token_authorizer, content_types=["application/json"])
def add_override() -> Response:
    return _api("add_override", _raw())


@app.route("/oncall/overrides/{override_id}", methods=["DELETE"], authorizer=token_authorizer)
def remove_override(override_id: str) -> Response:
    return _api("remove_override", override_id)


@app.route("/silences", methods=["GET"], authorizer=token_authorizer)
def list_silences() -> Response:
    return _api("list_silences")


@app.route("/silences", methods=["POST"], authorizer=token_authorizer, content_types=["application/json"])
def add_silence() -> Response:
    return _api("add_silence", _raw())


@app.route("/silences/{silence_id}", methods=["DELETE"], authorizer=token_authorizer)
def end_silence(silence_id: str) -> Response:
    return _api("end_silence", silence_id)


@app.route("/heartbeats", methods=["GET"], authorizer=token_authorizer)
def list_heartbeats() -> Response:
    return _api("list_heartbeats")


# No authorizer: a cron job's curl holds a bearer token or only its signed URL; the view checks either.
@app.route("/heartbeats/{name}", methods=["POST"],
           content_types=["application/json", "text/plain", "application/x-www-form-urlencoded",
                          "application/octet-stream"])
def heartbeat(name: str) -> Response:
    from chalicelib.web import api
    request = app.current_request
    result = _guarded().guarded(lambda: api.heartbeat(_handlers().get_deps(), name, dict(request.headers),
                                                      dict(request.query_params or {}), request.raw_body or b""))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


# No authorizer: calendar apps cannot send a bearer token; the feed's signed URL (?sig=) is its credential.
@app.route("/oncall/calendar/role/{role}", methods=["GET"])
def role_calendar(role: str) -> Response:
    return _calendar("role", role)


@app.route("/oncall/calendar/person/{person}", methods=["GET"])
def person_calendar(person: str) -> Response:
    return _calendar("person", person)


def _calendar(kind: str, segment: str) -> Response:
    from chalicelib.web import calendar  # icalendar loads with the feed, never on an event's path
    query = dict(app.current_request.query_params or {})
    result = _guarded().guarded(lambda: calendar.feed(_handlers().get_deps(), kind, segment, query))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


@app.route("/tokens", methods=["POST"], authorizer=token_authorizer, content_types=["application/json"])
def create_token() -> Response:
    return _api("create_token", _raw())


@app.route("/tokens/{token_id}", methods=["DELETE"], authorizer=token_authorizer)
def revoke_token(token_id: str) -> Response:
    return _api("revoke_token", token_id)


# --- one-click ack links: the link is the credential; GET changes nothing ---


@app.route("/ack/{token}", methods=["GET"])
def ack_link_page(token: str) -> Response:
    from chalicelib.web import ackpage
    result = _guarded().guarded(lambda: ackpage.show(_handlers().get_deps(), token))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


@app.route("/ack/{token}", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def ack_link_submit(token: str) -> Response:
    from chalicelib.web import ackpage
    result = _guarded().guarded(lambda: ackpage.submit(_handlers().get_deps(), token,
                                                       dict(app.current_request.headers)))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


@app.route("/a/{link_id}", methods=["GET"])
def short_ack_link_page(link_id: str) -> Response:
    from chalicelib.web import ackpage
    result = _guarded().guarded(lambda: ackpage.show(_handlers().get_deps(), link_id, short=True))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


@app.route("/a/{link_id}", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def short_ack_link_submit(link_id: str) -> Response:
    from chalicelib.web import ackpage
    result = _guarded().guarded(lambda: ackpage.submit(_handlers().get_deps(), link_id,
                                                       dict(app.current_request.headers), short=True))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


# --- the web console: a session cookie from a token, server-rendered pages (chalicelib/web/console.py) ---

FORM = ["application/x-www-form-urlencoded"]


def _console(view_name: str, *args: object) -> Response:
    from chalicelib.web import console
    request = app.current_request
    site = gateway.public_url(request.context or {}, request.headers or {}) or ""
    result = _guarded().guarded(lambda: getattr(console, view_name)(_handlers().get_deps(), site,
                                                                    dict(request.headers or {}), *args))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


@app.route("/console", methods=["GET"])
def console_incidents() -> Response:
    return _console("incident_list", dict(app.current_request.query_params or {}))


@app.route("/console/login", methods=["GET"])
def console_login_form() -> Response:
    return _console("login_form")


@app.route("/console/login", methods=["POST"], content_types=FORM)
def console_login() -> Response:
    return _console("login", _raw())


@app.route("/console/logout", methods=["POST"], content_types=FORM)
def console_logout() -> Response:
    return _console("logout", _raw())


@app.route("/console/incidents/{incident_id}", methods=["GET"])
def console_incident(incident_id: str) -> Response:
    return _console("incident_page", incident_id, dict(app.current_request.query_params or {}))


@app.route("/console/incidents/{incident_id}/{action}", methods=["POST"], content_types=FORM)
def console_act(incident_id: str, action: str) -> Response:
    return _console("act", incident_id, action, _raw())


@app.route("/console/oncall", methods=["GET"])
def console_oncall() -> Response:
    return _console("oncall_page")


@app.route("/webhooks/sentry", methods=["POST"],
           content_types=["application/json", "text/plain", "application/octet-stream"])
def sentry_webhook() -> Response:
    request = app.current_request
    result = _guarded().guarded(lambda: _handlers().on_sentry_webhook(dict(request.headers),
                                                                      request.raw_body or b""))
    return Response(body=result.body, status_code=result.status,
                    headers={"Content-Type": "application/json"})


@app.route("/health", methods=["GET"])
def health() -> dict:
    return _handlers().health()
