"""The monthly report (runbook §10): counts, MTTA and MTTR against the matrix, playbook
outcomes, Sev1/Sev2 summaries for the investor update, open deadlines, and a chart.

``monthly_stats`` is pure and tested on a known set of incidents; ``write_monthly`` renders
Markdown and PNG charts (matplotlib, loaded only here: the report runs from the CLI, never
inside a Lambda). Titles, ids and playbook outcomes come from outside: each goes through
``escape.markdown``, so none can add HTML, an image, a link or a table column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean

from chalicelib.config import ResponderConfig
from chalicelib.models import Duty, Incident, Severity
from chalicelib.notify.escape import markdown


@dataclass
class SeverityStats:
    count: int = 0
    acknowledged: int = 0
    resolved: int = 0
    mtta_minutes: float | None = None
    mttr_minutes: float | None = None
    target_minutes: int | None = None
    acked_within_target: int = 0


@dataclass
class MonthlyStats:
    month: str
    total: int
    by_severity: dict[int, SeverityStats]
    by_kind: dict[str, int]
    playbooks: dict[str, Counter[str]]
    major: list[Incident]
    open_deadlines: list[tuple[Incident, Duty]] = field(default_factory=list)
    silenced_sev1: list[Incident] = field(default_factory=list)  # a window said include_sev1 (issue 14)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def monthly_stats(incidents: list[Incident], month: str, config: ResponderConfig) -> MonthlyStats:
    start, end = month_bounds(month)
    chosen = [i for i in incidents if start <= i.opened_at < end]
    by_severity: dict[int, SeverityStats] = {}
    for severity in Severity:
        group = [i for i in chosen if i.severity is severity]
        acked = [i.time_to_acknowledge / 60 for i in group if i.time_to_acknowledge is not None]
        resolved = [(i.resolved_at - i.opened_at).total_seconds() / 60 for i in group if i.resolved_at]
        target = config.severity.matrix[severity].response_minutes
        by_severity[severity.value] = SeverityStats(
            count=len(group), acknowledged=len(acked), resolved=len(resolved),
            mtta_minutes=round(mean(acked), 1) if acked else None,
            mttr_minutes=round(mean(resolved), 1) if resolved else None, target_minutes=target,
            acked_within_target=sum(1 for m in acked if target is not None and m <= target))
    playbooks: dict[str, Counter[str]] = {}
    for incident in chosen:
        if incident.playbook:
            outcome = (incident.playbook_outcome or "did not run").split(":")[0]
            playbooks.setdefault(incident.playbook, Counter())[outcome] += 1
    deadlines = sorted(((i, d) for i in incidents for d in i.duties if d.done_at is None),
                       key=lambda pair: pair[1].due_at)
    return MonthlyStats(
        month=month, total=len(chosen), by_severity=by_severity,
        by_kind=dict(Counter(str(i.kind) for i in chosen).most_common()), playbooks=playbooks,
        major=sorted((i for i in chosen if i.severity <= Severity.SEV2), key=lambda i: i.opened_at),
        open_deadlines=deadlines,
        silenced_sev1=sorted((i for i in chosen if i.severity is Severity.SEV1 and i.silenced_by),
                             key=lambda i: i.opened_at))


def render_markdown(stats: MonthlyStats, charts: list[str], now: datetime) -> str:
    lines = [f"# Incident report {stats.month}", "", f"_Generated {now:%Y-%m-%d %H:%M} UTC._", "",
             f"**{stats.total} incidents** opened this month.", "", "## By severity", "",
             "| Severity | Incidents | Acknowledged | MTTA (min) | Target (min) | Acked in target | Resolved "
             "| MTTR (min) |",
             "|---|---|---|---|---|---|---|---|"]
    for severity, s in stats.by_severity.items():
        lines.append(f"| SEV{severity} | {s.count} | {s.acknowledged} | {_n(s.mtta_minutes)} | "
                     f"{s.target_minutes if s.target_minutes is not None else 'next sprint'} | "
                     f"{s.acked_within_target}/{s.acknowledged} | {s.resolved} | {_n(s.mttr_minutes)} |")
    lines += ["", *[f"![{name}]({name})" for name in charts], "", "## By kind", "", "| Kind | Incidents |", "|---|---|"]
    lines += [f"| {markdown(kind)} | {count} |" for kind, count in stats.by_kind.items()]
    lines += ["", "## Playbook outcomes", "", "| Playbook | Outcomes |", "|---|---|"]
    lines += [f"| {markdown(name)} | {markdown(', '.join(f'{k}: {v}' for k, v in sorted(c.items())))} |"
              for name, c in sorted(stats.playbooks.items())] or ["| (none ran) | |"]
    lines += ["", "## Sev1 / Sev2 summaries (investor update)", ""]
    for i in stats.major:
        duration = f"{(i.resolved_at - i.opened_at).total_seconds() / 60:.0f} min" if i.resolved_at else "ongoing"
        tta = (f"acknowledged after {i.time_to_acknowledge / 60:.0f} min" if i.time_to_acknowledge
               else "not acknowledged")
        lines.append(f"- **SEV{i.severity.value}** {i.opened_at:%Y-%m-%d %H:%M} UTC — {markdown(i.title)} "
                     f"({i.kind}); "
                     f"{tta}; duration {duration}" + ("; PHI exposure suspected" if i.phi_exposure_suspected else ""))
    if not stats.major:
        lines.append("- none")
    lines += ["", "## Silenced Sev1 incidents", ""]
    lines += [f"- {i.opened_at:%Y-%m-%d %H:%M} UTC {markdown(i.id)} {markdown(i.title)}: silenced by "
              f"{markdown(i.silenced_by or '')}" for i in stats.silenced_sev1] or ["- none"]
    lines += ["", "## Open deadlines", "", "| Due (UTC) | Duty | Incident |", "|---|---|---|"]
    lines += [f"| {d.due_at:%Y-%m-%d %H:%M} | {markdown(d.kind.replace('_', ' '))} | {markdown(i.id)} "
              f"SEV{i.severity.value} {markdown(i.title)} |"
              for i, d in stats.open_deadlines] or ["| - | none | |"]
    return "\n".join(lines) + "\n"


def write_monthly(incidents: list[Incident], month: str, out: Path, config: ResponderConfig,
                  now: datetime) -> Path:
    stats = monthly_stats(incidents, month, config)
    out.mkdir(parents=True, exist_ok=True)
    charts = [_chart(stats, out / f"incidents-{month}.png")]
    path = out / f"report-{month}.md"
    path.write_text(render_markdown(stats, charts, now), encoding="utf-8")
    return path


def _chart(stats: MonthlyStats, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"SEV{s}" for s in stats.by_severity]
    figure, (counts, times) = plt.subplots(1, 2, figsize=(9, 3.5))
    counts.bar(labels, [s.count for s in stats.by_severity.values()],
               color=["#c0392b", "#e67e22", "#f1c40f", "#95a5a6"])
    counts.set_title(f"Incidents {stats.month}")
    counts.yaxis.get_major_locator().set_params(integer=True)
    width = 0.38
    positions = range(len(labels))
    times.bar([p - width / 2 for p in positions], [s.mtta_minutes or 0 for s in stats.by_severity.values()],
              width, label="MTTA")
    times.bar([p + width / 2 for p in positions], [s.mttr_minutes or 0 for s in stats.by_severity.values()],
              width, label="MTTR")
    times.set_xticks(list(positions), labels)
    times.set_ylabel("minutes")
    times.set_title("Mean time to acknowledge / resolve")
    times.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
