"""Durations in words, the one way every page, command and description says how long something is."""

from datetime import datetime

# (long name, short name, seconds), largest first.
UNITS = (("day", "d", 86400), ("hour", "h", 3600), ("minute", "min", 60), ("second", "s", 1))


def duration_words(seconds: int, *, parts: int = 1, long: bool = False, largest: str = "day") -> str:
    """Whole seconds as '3 min', '4 min 2 s' (parts=2) or '1 day 1 hour' (long=True).

    The largest unit that fits leads, followed by up to `parts` - 1 of the next smaller units
    (those that are zero left out); `largest` caps the leading unit ('hour' gives '30 h', not
    '1 d 6 h').
    """
    seconds = max(0, int(seconds))
    units = UNITS[[name for name, _, _ in UNITS].index(largest) :]
    lead = next((i for i, (_, _, size) in enumerate(units) if seconds >= size), len(units) - 1)
    words = []
    for name, short, size in units[lead : lead + parts]:
        value, seconds = divmod(seconds, size)
        if value or not words and size == 1:
            words.append(f"{value} {name}{'s' if value != 1 else ''}" if long else f"{value} {short}")
    return " ".join(words)


def interval_words(total_seconds: int) -> str:
    """An interval schedule: 'every 5 minutes', 'every hour', 'every 1 day 30 seconds'."""
    if total_seconds <= 0:
        return "never"
    words = duration_words(total_seconds, parts=len(UNITS), long=True)
    return f"every {words[2:]}" if words.startswith("1 ") and " " not in words[2:] else f"every {words}"


def milliseconds_words(value) -> str:
    """A run's duration: '850 ms', '12.3 s', '4 min 2 s', '2 h 5 min'; '-' for none."""
    if value is None:
        return "-"
    ms = float(value)
    if ms < 10 and ms != int(ms):
        return f"{ms:.1f} ms"  # chart ticks of very short runs: 0.5 ms, not a second "0 ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return duration_words(round(ms / 1000), parts=2, largest="hour")


def age_words(moment: datetime | None, now: datetime) -> str:
    """How long ago `moment` was, to the largest unit: '4 s ago', '3 min ago'; '-' for none."""
    if moment is None:
        return "-"
    return f"{duration_words((now - moment).total_seconds())} ago"


def relative_words(moment: datetime, now: datetime) -> str:
    """'in 5 min' or '3 h ago'."""
    delta = (moment - now).total_seconds()
    return f"in {duration_words(delta)}" if delta >= 0 else f"{duration_words(-delta)} ago"
