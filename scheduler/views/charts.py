"""Geometry of the dashboard's inline SVG charts: the database gives the numbers, templates draw them."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from scheduler.durations import milliseconds_words
from scheduler.enums import RAN_STATUSES
from scheduler.enums import ExecutionStatus as S

# Stacking order, bottom up: outcomes people act on sit where the eye lands first.
OUTCOMES = (S.SUCCESS, S.FAILED, S.TIMED_OUT, S.MISSED, S.SKIPPED, S.CANCELLED)
IN_PROGRESS = (S.RUNNING, S.WAITING, S.PENDING)
WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 10, 22  # room for the y labels and the hour labels
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _hours(now: datetime, hours: int) -> list[datetime]:
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    return [start + timedelta(hours=i) for i in range(hours)]


def chart_start(now: datetime, hours: int) -> datetime:
    """The start of the first hour a chart of the last `hours` hours shows."""
    return _hours(now, hours)[0]


def _slot(index: int, count: int) -> tuple[float, float]:
    """x and width of bar `index` of `count`, with a small gap between bars."""
    slot = PLOT_W / count
    gap = min(2.0, slot * 0.2)
    return round(LEFT + index * slot + gap / 2, 2), round(max(slot - gap, 1.0), 2)


def _y_ticks(top_value: float, label) -> list[dict]:
    return [
        {"y": round(TOP + PLOT_H * (1 - fraction), 2), "label": label(top_value * fraction)} for fraction in (0, 0.5, 1)
    ]


def _frame(**extra) -> dict:
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right_edge": WIDTH - RIGHT,
        "top": TOP,
        "baseline": TOP + PLOT_H,
        "plot_h": PLOT_H,
        "label_y": HEIGHT - 6,
        **extra,
    }


def runs_by_hour_chart(rows, now: datetime, hours: int = 24, in_progress=()) -> dict:
    """Stacked bars: the runs that ended in each hour, by outcome (ExecutionSummaryQuerySet.hourly),
    topped by the runs still in progress in the hour they were created
    (ExecutionQuerySet.in_progress_by_hour)."""
    slots = _hours(now, hours)
    counts = {hour: Counter() for hour in slots}
    for row, statuses in [(row, OUTCOMES) for row in rows] + [(row, IN_PROGRESS) for row in in_progress]:
        hour = row["hour"].astimezone(UTC)
        if hour in counts and row["status"] in statuses:
            counts[hour][row["status"]] += row["runs"]
    peak = max((sum(c.values()) for c in counts.values()), default=0) or 1
    bars, totals = [], Counter()
    for index, hour in enumerate(slots):
        x, width = _slot(index, hours)
        bottom = TOP + PLOT_H
        segments = []
        for status in OUTCOMES + IN_PROGRESS:
            count = counts[hour][status]
            if not count:
                continue
            totals[status] += count
            height = PLOT_H * count / peak
            bottom -= height
            segments.append(
                {"status": status, "count": count, "y": round(bottom, 2), "height": round(max(height, 0.5), 2)}
            )
        bars.append(
            {
                "hour": hour,
                "x": x,
                "width": width,
                "segments": segments,
                "label": index % 3 == 0,
                "total": sum(counts[hour].values()),
            }
        )
    return _frame(
        bars=bars,
        ticks=_y_ticks(peak, lambda v: f"{v:.0f}" if v == int(v) else f"{v:.1f}"),
        legend=[{"status": s, "count": totals[s]} for s in OUTCOMES + IN_PROGRESS],
        total=sum(totals.values()),
        hours=hours,
    )


def _durations_by_hour(rows) -> dict:
    """{hour: {count, avg_ms, max_ms}} of the successful and failed runs that ended in each hour."""
    by_hour = {}
    for row in rows:
        if row["status"] not in RAN_STATUSES or not row["timed"]:
            continue
        hour = by_hour.setdefault(row["hour"].astimezone(UTC), {"count": 0, "total": 0, "max_ms": None})
        hour["count"] += row["timed"]
        hour["total"] += row["total"]
        hour["max_ms"] = max(hour["max_ms"] or 0, row["longest"] or 0)
    for hour in by_hour.values():
        hour["avg_ms"] = hour.pop("total") / hour["count"]
    return by_hour


def durations_by_hour_chart(rows, now: datetime, hours: int = 24) -> dict:
    """Per hour, the longest and the average run time, from ExecutionSummaryQuerySet.hourly."""
    slots = _hours(now, hours)
    by_hour = _durations_by_hour(rows)
    peak = max((row["max_ms"] or 0 for row in by_hour.values()), default=0) or 1
    bars = []
    for index, hour in enumerate(slots):
        x, width = _slot(index, hours)
        row = by_hour.get(hour)
        bar = {"hour": hour, "x": x, "width": width, "label": index % 3 == 0, "count": 0}
        if row:
            max_h = PLOT_H * (row["max_ms"] or 0) / peak
            avg_h = PLOT_H * (row["avg_ms"] or 0) / peak
            bar.update(
                count=row["count"],
                max_ms=row["max_ms"],
                avg_ms=round(row["avg_ms"] or 0),
                max_y=round(TOP + PLOT_H - max_h, 2),
                max_height=round(max(max_h, 0.5), 2),
                avg_y=round(TOP + PLOT_H - avg_h, 2),
                avg_height=round(max(avg_h, 0.5), 2),
            )
        bars.append(bar)
    return _frame(bars=bars, ticks=_y_ticks(peak, milliseconds_words), hours=hours, runs=sum(b["count"] for b in bars))


def job_durations_chart(executions) -> dict:
    """One bar per run, oldest left, height by duration and colour by outcome."""
    runs = list(executions)
    peak = max((run.duration_ms or 0 for run in runs), default=0) or 1
    bars = []
    for index, run in enumerate(runs):
        x, width = _slot(index, max(len(runs), 1))
        height = PLOT_H * (run.duration_ms or 0) / peak
        bars.append(
            {
                "run": run,
                "x": x,
                "width": width,
                "y": round(TOP + PLOT_H - max(height, 1.5), 2),
                "height": round(max(height, 1.5), 2),
            }
        )
    return _frame(bars=bars, ticks=_y_ticks(peak, milliseconds_words), runs=len(runs))
