"""The monthly report (runbook §10): counts, MTTA and MTTR against the matrix, playbook
outcomes, Sev1/Sev2 summaries for the investor update, open deadlines, and a chart.

``monthly_stats`` is pure and tested on a known set of incidents; ``write_monthly`` renders
Markdown and a PNG chart (matplotlib, loaded only here: the report runs from the CLI, never
inside a Lambda). Titles, ids and playbook outcomes come from outside: each goes through
``escape.markdown``, so none can add HTML, an image, a link or a table column.

Times to acknowledge and resolve are skewed (one 10-hour night beside ten 5-minute
acknowledgements): the table gives the median and the worst case with n, never a bare mean.
Sev4 (cosmetic, "next sprint") is counted in the table but kept out of the headline, and the
investor summaries say what happened in words (``reports.describe``). A summary about
suspected PHI exposure is flagged for review: it must not go to investors unread.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean, median
from typing import Any

from chalicelib.config import ResponderConfig
from chalicelib.models import Duty, Incident, Severity
from chalicelib.notify.escape import markdown
from chalicelib.reports.describe import headline

TREND_MONTHS = 6
NEEDS_REVIEW = "⚠ needs review before sending (PHI exposure)"


@dataclass
class SeverityStats:
    count: int = 0
    acknowledged: int = 0
    resolved: int = 0
    mtta_minutes: float | None = None  # mean, kept for callers that compare one value
    mttr_minutes: float | None = None
    target_minutes: int | None = None
    acked_within_target: int = 0
    mtta: Spread | None = None
    mttr: Spread | None = None


@dataclass(frozen=True)
class Spread:
    """Minutes: the median, the worst case, and how many incidents they are of."""

    median: float
    worst: float
    n: int

    @classmethod
    def of(cls, minutes: list[float]) -> Spread | None:
        return cls(round(median(minutes), 1), round(max(minutes), 1), len(minutes)) if minutes else None


@dataclass
class MonthlyStats:
    month: str
    total: int
    by_severity: dict[int, SeverityStats]
    by_kind: dict[str, int]
    playbooks: dict[str, Counter[str]]
    major: list[Incident]
    open_deadlines: list[tuple[Incident, Duty]] = field(default_factory=list)
    # the six months up to and including this one: (YYYY-MM, incidents opened per severity value)
    trend: list[tuple[str, dict[int, int]]] = field(default_factory=list)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def previous_months(month: str, count: int) -> list[str]:
    """``count`` months ending with ``month``, oldest first: ``2025-01`` … ``2025-03``."""
    start, _ = month_bounds(month)
    months = [start]
    for _ in range(count - 1):
        months.insert(0, (months[0] - timedelta(days=1)).replace(day=1))
    return [f"{m:%Y-%m}" for m in months]


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
            acked_within_target=sum(1 for m in acked if target is not None and m <= target),
            mtta=Spread.of(acked), mttr=Spread.of(resolved))
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
        open_deadlines=deadlines, trend=_trend(incidents, month))


def _trend(incidents: list[Incident], month: str) -> list[tuple[str, dict[int, int]]]:
    counts = {m: dict.fromkeys((s.value for s in Severity), 0) for m in previous_months(month, TREND_MONTHS)}
    for incident in incidents:
        row = counts.get(f"{incident.opened_at.astimezone(UTC):%Y-%m}")
        if row is not None:
            row[incident.severity.value] += 1
    return list(counts.items())


def render_markdown(stats: MonthlyStats, charts: list[str], now: datetime) -> str:
    lines = [f"# Incident report {stats.month}", "", f"_Generated {now:%Y-%m-%d %H:%M} UTC._", "",
             _headline(stats), "", "## By severity", "",
             "Times in minutes: median / worst case, over n incidents acknowledged (MTTA) or resolved (MTTR).", "",
             "| Severity | Incidents | Target (min) | MTTA median | MTTA worst | n | Acked in target | MTTR median "
             "| MTTR worst | n |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for severity, s in stats.by_severity.items():
        lines.append(f"| SEV{severity} | {s.count} | "
                     f"{s.target_minutes if s.target_minutes is not None else 'next sprint'} | "
                     f"{_spread(s.mtta)} | {s.acked_within_target}/{s.acknowledged} | {_spread(s.mttr)} |")
    lines += ["", *[f"![{name}]({name})" for name in charts], "", "## By kind", "", "| Kind | Incidents |", "|---|---|"]
    lines += [f"| {markdown(kind)} | {count} |" for kind, count in stats.by_kind.items()]
    lines += ["", "## Playbook outcomes", "", "| Playbook | Outcomes |", "|---|---|"]
    lines += [f"| {markdown(name)} | {markdown(', '.join(f'{k}: {v}' for k, v in sorted(c.items())))} |"
              for name, c in sorted(stats.playbooks.items())] or ["| (none ran) | |"]
    lines += ["", "## Sev1 / Sev2 summaries (investor update)", "", _investor_headline(stats.major), ""]
    lines += [investor_line(i) for i in stats.major] or ["- none"]
    lines += ["", "## Open deadlines", "", "| State | Due (UTC) | Duty | Incident |", "|---|---|---|---|"]
    lines += [f"| {deadline_state(d, now)} | {d.due_at:%Y-%m-%d %H:%M} | {markdown(d.kind.replace('_', ' '))} | "
              f"{markdown(i.id)} SEV{i.severity.value} {markdown(headline(i))} |"
              for i, d in stats.open_deadlines] or ["| | - | none | |"]
    return "\n".join(lines) + "\n"


def investor_line(incident: Incident) -> str:
    """One Sev1/Sev2 incident as an investor reads it; flagged when it is about PHI exposure."""
    i = incident
    duration = _span(i.resolved_at - i.opened_at) if i.resolved_at else "ongoing"
    tta = (f"acknowledged after {_span(timedelta(seconds=i.time_to_acknowledge))}" if i.time_to_acknowledge
           else "not acknowledged")
    flag = f"**{NEEDS_REVIEW}** " if i.phi_exposure_suspected else ""
    return (f"- {flag}**SEV{i.severity.value}** {i.opened_at:%Y-%m-%d %H:%M} UTC — {markdown(headline(i))}; "
            f"{tta}; duration {duration}" + ("; PHI exposure suspected" if i.phi_exposure_suspected else ""))


def _investor_headline(major: list[Incident]) -> str:
    if not major:
        return "No Sev1 or Sev2 incidents this month."
    counts = Counter(i.severity.value for i in major)
    parts = " and ".join(f"{counts[sev]} Sev{sev}" for sev in sorted(counts))
    open_now = sum(1 for i in major if i.resolved_at is None)
    return f"{parts} this month; " + (f"{open_now} still open." if open_now else "all resolved.")


def deadline_state(duty: Duty, now: datetime) -> str:
    """``**OVERDUE** by 2 d 3 h`` or ``due in 5 h``: a deadline that passed must not read like one ahead."""
    if duty.due_at <= now:
        return f"**OVERDUE** by {_span(now - duty.due_at)}"
    return f"due in {_span(duty.due_at - now)}"


def _headline(stats: MonthlyStats) -> str:
    """The count people quote: Sev1–Sev3. Sev4 (cosmetic) is in the table, not here."""
    shown = {sev: s.count for sev, s in stats.by_severity.items() if sev < Severity.SEV4.value}
    total = sum(shown.values())
    parts = ", ".join(f"{count} Sev{sev}" for sev, count in shown.items() if count)
    cosmetic = stats.by_severity.get(Severity.SEV4.value)
    tail = f" Sev4 (cosmetic): {cosmetic.count}, in the table only." if cosmetic and cosmetic.count else ""
    counted = f"**{total} incident{'' if total == 1 else 's'}** opened this month"
    return counted + (f" ({parts})." if parts else ".") + tail


def write_monthly(incidents: list[Incident], month: str, out: Path, config: ResponderConfig,
                  now: datetime) -> Path:
    stats = monthly_stats(incidents, month, config)
    out.mkdir(parents=True, exist_ok=True)
    charts = [_chart(stats, out / f"incidents-{month}.png")]
    path = out / f"report-{month}.md"
    path.write_text(render_markdown(stats, charts, now), encoding="utf-8")
    return path


SEVERITY_COLOURS = {1: "#c0392b", 2: "#e67e22", 3: "#f1c40f", 4: "#95a5a6"}
_TICKS = [(1, "1 min"), (5, "5 min"), (15, "15 min"), (60, "1 h"), (120, "2 h"), (480, "8 h"), (1440, "24 h"),
          (10080, "7 d")]


def _chart(stats: MonthlyStats, path: Path) -> str:
    import matplotlib.pyplot as plt

    figure = chart_figure(stats)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


def chart_figure(stats: MonthlyStats) -> Any:
    """The report's chart as a matplotlib Figure (the caller saves and closes it).

    Top: MTTA and MTTR per severity on panels of their own (median bar, worst-case mark, n under
    each severity; on MTTA the runbook's response target as a line, a bar hatched when its median
    is over it); bottom: six months of incidents per severity. Minutes on a log scale: Sev1's 15
    minutes and Sev3's 24 hours share an axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(11, 7.5))
    grid = figure.add_gridspec(2, 2, height_ratios=(1.15, 1))
    mtta, mttr, trend = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[0, 1]), figure.add_subplot(grid[1, :])
    _time_panel(mtta, stats, "mtta", f"Time to acknowledge, {stats.month}")
    _time_panel(mttr, stats, "mttr", f"Time to resolve, {stats.month}")
    _trend_panel(trend, stats)
    figure.tight_layout()
    return figure


def _time_panel(axes: Any, stats: MonthlyStats, which: str, title: str) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    severities = list(stats.by_severity)
    spreads: list[Spread | None] = [getattr(stats.by_severity[s], which) for s in severities]
    positions = range(len(severities))
    axes.set_yscale("log")
    axes.set_ylim(0.5, 20000)
    axes.set_xlim(-0.6, len(severities) - 0.4)  # every severity keeps its place, with or without a bar
    handles: list[Any] = [Patch(color="#bdc3c7", label="median"),
                          Line2D([], [], marker="_", color="#2c3e50", markersize=14, markeredgewidth=2.5,
                                 linestyle="none", label="worst case")]
    for x, severity, spread in zip(positions, severities, spreads, strict=True):
        if spread is None:
            axes.text(x, 1, "no data", ha="center", va="bottom", fontsize=8, color="#7f8c8d")
            continue
        target = stats.by_severity[severity].target_minutes if which == "mtta" else None
        over = target is not None and spread.median > target
        axes.bar(x, spread.median, 0.6, color=SEVERITY_COLOURS[severity], hatch="//" if over else None,
                 edgecolor="#7b241c" if over else None)
        # the median's value inside its bar, the worst case's above its mark: they never overlap
        axes.annotate(_short_minutes(spread.median), (x, spread.median), textcoords="offset points", xytext=(0, -3),
                      ha="center", va="top", fontsize=8, color="#1b2631",
                      bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8, "linewidth": 0})
        if spread.worst > spread.median:
            axes.plot(x, spread.worst, marker="_", color="#2c3e50", markersize=14, markeredgewidth=2.5)
            axes.annotate(_short_minutes(spread.worst), (x, spread.worst), textcoords="offset points",
                          xytext=(0, 4), ha="center", va="bottom", fontsize=8, color="#2c3e50")
    labels = [f"SEV{s}\nn={spread.n if spread else 0}" for s, spread in zip(severities, spreads, strict=True)]
    if which == "mtta":
        for x, severity in zip(positions, severities, strict=True):
            target = stats.by_severity[severity].target_minutes
            if target is None:
                labels[x] += "\nno target"
                continue
            axes.hlines(target, x - 0.42, x + 0.42, colors="#27ae60", linestyles="--", linewidth=2)
        handles += [Line2D([], [], color="#27ae60", linestyle="--", linewidth=2, label="runbook target"),
                    Patch(facecolor="white", edgecolor="#7b241c", hatch="//", label="median over target")]
    axes.set_xticks(list(positions), labels)
    axes.set_yticks([t for t, _ in _TICKS], [label for _, label in _TICKS])
    axes.minorticks_off()
    axes.set_ylabel("log scale")
    axes.set_title(title)
    axes.legend(handles=handles, loc="upper left", fontsize=8)


def _trend_panel(axes: Any, stats: MonthlyStats) -> None:
    months = [month for month, _ in stats.trend]
    bottom = [0] * len(months)
    for severity in (s.value for s in Severity):
        counts = [row[severity] for _, row in stats.trend]
        axes.bar(months, counts, 0.6, bottom=bottom, color=SEVERITY_COLOURS[severity], label=f"SEV{severity}")
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    for x, total in enumerate(bottom):
        axes.annotate(str(total), (x, total), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    axes.set_ylim(0, max([*bottom, 1]) * 1.2)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel("incidents opened")
    axes.set_title(f"Incidents per month, the {len(months)} months to {stats.month}")
    axes.legend(loc="upper left", fontsize=8, ncols=4)


def _short_minutes(minutes: float) -> str:
    if minutes >= 2880:
        return f"{minutes / 1440:.1f} d".replace(".0 d", " d")
    if minutes >= 60:
        return f"{minutes / 60:.1f} h".replace(".0 h", " h")
    return f"{minutes:.0f} min"


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _spread(spread: Spread | None) -> str:
    """Three table cells: median | worst | n."""
    return "- | - | 0" if spread is None else f"{_n(spread.median)} | {_n(spread.worst)} | {spread.n}"


def _span(delta: timedelta) -> str:
    """``45 min``, ``3 h 10 min``, ``2 h``, ``11 d 9 h``."""
    minutes = int(delta.total_seconds() // 60)
    hours = minutes // 60
    if hours >= 24:
        return f"{hours // 24} d {hours % 24} h"
    if hours:
        return f"{hours} h" + (f" {minutes % 60} min" if minutes % 60 else "")
    return f"{minutes} min"
