"""The printed table: our figures beside the baselines', their ratio, and the issue's targets."""

from bench.harness import Series


def cell(values, digits: int = 1, unit: str = "") -> str:
    """'median (min-max)' of repeated measurements; the bare value for one; '-' for none."""
    series = values if isinstance(values, Series) else Series(values if isinstance(values, list) else [values])
    if not series:
        return "-"
    fmt = f"{{:,.{digits}f}}"
    text = fmt.format(series.median) + unit
    if len(series.values) > 1:
        text += f" ({fmt.format(series.low)}-{fmt.format(series.high)})"
    return text


def ratio(ours, theirs, digits: int = 2) -> str:
    """ours / theirs, on the medians."""
    a = ours.median if isinstance(ours, Series) else ours
    b = theirs.median if isinstance(theirs, Series) else theirs
    if a is None or b is None or b == 0:
        return "-"
    value = a / b
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.{digits}g}x" if value < 1 else f"{value:,.1f}x"


def verdict(ok) -> str:
    if ok is None:
        return "not measured"
    return "met" if ok else "MISSED"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(values):
        return "| " + " | ".join(str(v).ljust(w) for v, w in zip(values, widths)) + " |"

    rule = "|-" + "-|-".join("-" * w for w in widths) + "-|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def section(title: str, note: str, headers, rows) -> str:
    text = f"{title}\n\n{table(headers, rows)}\n"
    if note:
        text += "\n" + note.strip() + "\n"
    return text


# Issue 19's figures of the engine before its change (measured in the issue, not by this run), and
# its targets: printed beside what the run measures.
ISSUE_19 = {
    "before": {
        # runs per second of the steady part -> CPU ms per run, share of one core
        "steady": {50: (6.9, 0.35), 150: (3.6, 0.54)},
        "million": {"jobs": 1_000_000, "due": 16_667, "last_start_s": 4.2, "lag_p99_s": 4.2, "rss_mb": 65.6},
        "burst": {"jobs": 10_000, "rate": 3_051},
    },
    "targets": {
        "steady_cpu_ms_per_run": 0.5,
        "steady_lag_p99_ms": 50,
        "boundary_lag_p99_ms": 1_000,
        "burst_rate": 5_000,
    },
}


def before_steady(column: int) -> str:
    """Issue 19's before figures of the steady workload: column 0 CPU ms per run, 1 core share."""
    digits = 1 if column == 0 else 2
    return ", ".join(f"{v[column]:.{digits}f} at {rate}/s" for rate, v in ISSUE_19["before"]["steady"].items())
