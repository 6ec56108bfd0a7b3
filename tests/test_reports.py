"""The monthly report (issue 15 §4): overdue deadlines, investor summaries in words with a PHI
review flag, Sev4 out of the headline, median/worst/n, and the chart's panels.

``python -m tests.test_reports docs/report-example.png`` renders the example chart in docs/ from
the same data the tests use."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.cli import main
from chalicelib.models import Duty, DutyKind, Incident, IncidentStatus, Severity
from chalicelib.reports.report import (
    NEEDS_REVIEW,
    Spread,
    chart_figure,
    deadline_state,
    investor_line,
    monthly_stats,
    previous_months,
    render_markdown,
)
from chalicelib.store.sqlite import SqliteStore
from tests.conftest import CONFIG

NOW = datetime(2025, 4, 1, 13, 0, tzinfo=UTC)
ECS = "arn:aws:ecs:us-east-1:123456789012:service/prod-cluster/checkout-api"
RDS = "arn:aws:rds:us-east-1:123456789012:db:credentialing-prod"


def incident(n: int, severity: int, opened: datetime, ack_min: float | None, resolve_min: float | None,
             kind: str = "alarm", title: str = "", resource: str = "", **changes: Any) -> Incident:
    return Incident(
        id=f"inc-{n}", key=f"k{n}", kind=kind, title=title or f"incident {n}", resource=resource,
        severity=Severity(severity), owner="engineering-oncall", playbook=None, rule="r", opened_at=opened,
        last_seen=opened, status=IncidentStatus.RESOLVED if resolve_min is not None else IncidentStatus.OPEN,
        acknowledged_at=opened + timedelta(minutes=ack_min) if ack_min is not None else None,
        resolved_at=opened + timedelta(minutes=resolve_min) if resolve_min is not None else None).model_copy(
        update=changes)


def six_months() -> list[Incident]:
    """October 2024 to March 2025; March is the month reported on."""
    march = [
        incident(1, 1, datetime(2025, 3, 3, 7, tzinfo=UTC), 9, 75, "ecs_deployment",
                 "checkout-api SERVICE_DEPLOYMENT_FAILED", ECS),
        incident(2, 1, datetime(2025, 3, 11, 2, tzinfo=UTC), 31, 190, "cloudtrail",
                 "PutObjectRetention on backup-vault-prod", "arn:aws:s3:::backup-vault-prod",
                 phi_exposure_suspected=True,
                 duties=(Duty(kind=DutyKind.BREACH_NOTIFICATION, due_at=datetime(2025, 5, 10, 2, tzinfo=UTC),
                              reason="BAA: 60 days"),)),
        incident(3, 2, datetime(2025, 3, 14, 14, tzinfo=UTC), 12, 95, "rds_event",
                 "credentialing-prod RDS-EVENT-0049", RDS),
        incident(4, 2, datetime(2025, 3, 20, 22, tzinfo=UTC), 140, 300, "alarm", "checkout-api-alb-5xx-high",
                 "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-api-alb-5xx-high",
                 duties=(Duty(kind=DutyKind.CUSTOMER_NOTIFICATION, due_at=datetime(2025, 3, 21, 4, tzinfo=UTC),
                              reason="customer SLA"),)),
        *[incident(10 + i, 3, datetime(2025, 3, 4 + 3 * i, 15, tzinfo=UTC), ack, res)
          for i, (ack, res) in enumerate([(40, 300), (200, 900), (600, 1500), (95, None)])],
        incident(20, 4, datetime(2025, 3, 9, 16, tzinfo=UTC), 2000, 9000),
        incident(21, 4, datetime(2025, 3, 25, 16, tzinfo=UTC), None, None),
    ]
    earlier = [incident(100 + n, severity, datetime(2024, month, 10 + n % 15, 12, tzinfo=UTC) if month > 9
                        else datetime(2025, month, 10 + n % 15, 12, tzinfo=UTC), 20, 120)
               for n, (month, severity) in enumerate(
                   [(10, 2), (10, 3), (10, 3), (11, 1), (11, 3), (11, 4), (11, 4), (12, 2), (12, 2), (12, 3),
                    (1, 3), (1, 3), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3)])]
    return march + earlier


def test_median_worst_and_n_per_severity() -> None:
    stats = monthly_stats(six_months(), "2025-03", CONFIG)
    sev = stats.by_severity
    assert sev[1].mtta == Spread(median=20.0, worst=31.0, n=2)
    assert sev[3].mtta == Spread(median=147.5, worst=600.0, n=4) and sev[3].mttr == Spread(900.0, 1500.0, 3)
    assert sev[4].mtta == Spread(2000.0, 2000.0, 1) and sev[4].count == 2
    assert Spread.of([]) is None
    table = render_markdown(stats, [], NOW)
    assert "| SEV3 | 4 | 1440 | 147.5 | 600 | 4 | 4/4 | 900 | 1500 | 3 |" in table
    assert "| SEV4 | 2 | next sprint | 2000 | 2000 | 1 | 0/1 | 9000 | 9000 | 1 |" in table


def test_headline_leaves_sev4_out() -> None:
    text = render_markdown(monthly_stats(six_months(), "2025-03", CONFIG), [], NOW)
    assert "**8 incidents** opened this month (2 Sev1, 2 Sev2, 4 Sev3). Sev4 (cosmetic): 2, in the table only." in text
    only_cosmetic = render_markdown(monthly_stats([incident(1, 4, datetime(2025, 3, 2, tzinfo=UTC), None, None)],
                                                  "2025-03", CONFIG), [], NOW)
    assert "**0 incidents** opened this month. Sev4 (cosmetic): 1, in the table only." in only_cosmetic


def test_investor_summaries_say_what_happened_and_flag_phi_for_review() -> None:
    stats = monthly_stats(six_months(), "2025-03", CONFIG)
    lines = [investor_line(i) for i in stats.major]
    assert lines[0] == ("- **SEV1** 2025-03-03 07:00 UTC — Deployment of ECS service checkout-api failed; "
                        "acknowledged after 9 min; duration 1 h 15 min")
    assert lines[1].startswith(f"- **{NEEDS_REVIEW}** **SEV1** 2025-03-11 02:00 UTC — Attempt to change object "
                               "retention on S3 bucket backup-vault-prod;")
    assert lines[2].startswith("- **SEV2** 2025-03-14 14:00 UTC — RDS database credentialing-prod failed over;")
    assert [NEEDS_REVIEW in line for line in lines] == [False, True, False, False]
    text = render_markdown(stats, [], NOW)
    assert "(investor update)\n\n2 Sev1 and 2 Sev2 this month; all resolved.\n\n- **SEV1**" in text
    assert "RDS-EVENT" not in "\n".join(lines) and "SERVICE_DEPLOYMENT" not in "\n".join(lines)


@pytest.mark.parametrize(("due", "state"), [
    (NOW - timedelta(days=11, hours=9), "**OVERDUE** by 11 d 9 h"),
    (NOW - timedelta(minutes=5), "**OVERDUE** by 5 min"),
    (NOW, "**OVERDUE** by 0 min"),
    (NOW + timedelta(hours=3), "due in 3 h"),
    (NOW + timedelta(days=39, hours=13), "due in 39 d 13 h"),
])
def test_deadline_state(due: datetime, state: str) -> None:
    assert deadline_state(Duty(kind=DutyKind.POSTMORTEM, due_at=due, reason="r"), NOW) == state


def test_open_deadlines_are_marked_overdue_in_the_report() -> None:
    text = render_markdown(monthly_stats(six_months(), "2025-03", CONFIG), [], NOW)
    rows = text.split("## Open deadlines", 1)[1].splitlines()
    assert ("| **OVERDUE** by 11 d 9 h | 2025-03-21 04:00 | customer notification | inc-4 SEV2 CloudWatch alarm "
            "checkout-api-alb-5xx-high fired |") in rows
    assert "| due in 38 d 13 h | 2025-05-10 02:00 | breach notification | inc-2 SEV1 Attempt to change object " \
           "retention on S3 bucket backup-vault-prod |" in rows


def test_six_months_of_trend_across_the_year_end() -> None:
    assert previous_months("2025-03", 6) == ["2024-10", "2024-11", "2024-12", "2025-01", "2025-02", "2025-03"]
    stats = monthly_stats(six_months(), "2025-03", CONFIG)
    assert [(m, [row[s] for s in (1, 2, 3, 4)]) for m, row in stats.trend] == [
        ("2024-10", [0, 1, 2, 0]), ("2024-11", [1, 0, 1, 2]), ("2024-12", [0, 2, 1, 0]),
        ("2025-01", [0, 0, 3, 1]), ("2025-02", [1, 1, 1, 0]), ("2025-03", [2, 2, 4, 2])]


def test_chart_has_mtta_and_mttr_panels_targets_every_severity_and_the_trend() -> None:
    import matplotlib.pyplot as plt

    figure = chart_figure(monthly_stats(six_months(), "2025-03", CONFIG))
    try:
        mtta, mttr, trend = figure.axes
        assert mtta.get_title() == "Time to acknowledge, 2025-03" and mttr.get_title() == "Time to resolve, 2025-03"
        for panel in (mtta, mttr):
            assert [t.get_text() for t in panel.get_xticklabels()][:3] == [
                "SEV1\nn=2", "SEV2\nn=2", "SEV3\nn=4" if panel is mtta else "SEV3\nn=3"]
        targets = sorted(float(segment[0][1]) for collection in mtta.collections for segment in collection.get_segments())
        assert targets == [15.0, 120.0, 1440.0]  # the runbook's response times; Sev4 has none
        assert [t.get_text() for t in mtta.get_xticklabels()][3] == "SEV4\nn=1\nno target"
        assert [t.get_text() for t in mttr.get_xticklabels()][3] == "SEV4\nn=1"
        # Sev1's median (20 min) is over its 15-minute target: its bar is hatched, the others are not
        assert [bar.get_hatch() for bar in mtta.patches] == ["//", None, None, None]
        assert not mttr.collections  # a response target is about acknowledging, not resolving
        assert [t.get_text() for t in trend.get_xticklabels()] == previous_months("2025-03", 6)
        assert [t.get_text() for t in trend.get_legend().get_texts()] == ["SEV1", "SEV2", "SEV3", "SEV4"]
    finally:
        plt.close(figure)


def test_a_severity_without_data_keeps_its_place_on_the_chart() -> None:
    import matplotlib.pyplot as plt

    only_sev1 = [incident(1, 1, datetime(2025, 3, 2, tzinfo=UTC), 5, 30)]
    figure = chart_figure(monthly_stats(only_sev1, "2025-03", CONFIG))
    try:
        mtta = figure.axes[0]
        assert mtta.get_xlim() == (-0.6, 3.6)
        assert [t.get_text() for t in mtta.texts].count("no data") == 3
    finally:
        plt.close(figure)


def test_report_through_the_cli_marks_overdue_and_phi(tmp_path: Path, capsys: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteStore(tmp_path / "report.db")
    for item in six_months():
        store.create(item)
    monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path}/report.db")
    assert main(["report", "monthly", "--month", "2025-03", "--out", str(tmp_path / "out"),
                 "--now", "2025-04-01T13:00:00Z"]) == 0
    text = Path(capsys.readouterr().out.strip()).read_text()
    assert text.count(NEEDS_REVIEW) == 1 and text.count("**OVERDUE**") == 1
    assert "**8 incidents** opened this month" in text
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "out" / "incidents-2025-03.png")
    assert image.shape[0] >= 700 and image.shape[1] >= 1000


def render_example(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = chart_figure(monthly_stats(six_months(), "2025-03", CONFIG))
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    render_example(Path(sys.argv[1]))
