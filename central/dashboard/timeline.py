"""A visit's timeline as inline SVG, drawn on the server: the planned window as a band, each
arrival, departure, tap, door and key-safe event as a labelled mark at its time, and "now"
as a line. Text alternatives (``<title>``, ``aria-label``) say the same in words, so the
picture is never the only way to read it."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any

from central.dashboard.context import local
from homecall.clock import parse_utc

WIDTH, HEIGHT, PAD = 720, 120, 24
MARK = {"arrival": ("#0a6b2d", "in"), "departure": ("#1f4fa3", "out"),
        "door": ("#5b4a00", "door"), "keysafe": ("#7a2e00", "key safe")}


def visit_svg(window: tuple[datetime, datetime] | None, timeline: list[dict[str, Any]],
              now: datetime) -> str:
    """The SVG markup (empty string when there is nothing to draw)."""
    times = [parse_utc(e["time"]) for e in timeline]
    if window is None and not times:
        return ""
    lows = [t for t in ([window[0]] if window else []) + times]
    highs = [t for t in ([window[1]] if window else []) + times]
    start = min(lows) - timedelta(minutes=30)
    end = max(max(highs) + timedelta(minutes=30), min(now, max(highs) + timedelta(hours=3)))
    span = (end - start).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        return PAD + (WIDTH - 2 * PAD) * (moment - start).total_seconds() / span

    parts = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="timeline-title" preserveAspectRatio="xMinYMid meet">']
    words = []
    if window:
        words.append(f"window {local(window[0])}\u2013{local(window[1])}")
        parts.append(f'<rect x="{x(window[0]):.1f}" y="30" width="'
                     f'{max(x(window[1]) - x(window[0]), 2):.1f}" height="40" '
                     f'fill="#d8e8f8" stroke="#1f4fa3"/>')
        parts.append(f'<text x="{x(window[0]):.1f}" y="24" font-size="12" fill="#111">'
                     f'window {escape(local(window[0]))}\u2013{escape(local(window[1]))}</text>')
    for i, event in enumerate(timeline):
        moment = parse_utc(event["time"])
        colour, label = MARK.get(event["type"], ("#333", event["type"].replace("_", " ")))
        state = event.get("data", {}).get("state")
        text = f"{label}{' ' + state if state else ''} {local(moment)}"
        words.append(text)
        mx = x(moment)
        y = 78 + (i % 2) * 18
        parts.append(f'<line x1="{mx:.1f}" y1="30" x2="{mx:.1f}" y2="{y - 10}" '
                     f'stroke="{colour}" stroke-width="3"/>')
        parts.append(f'<text x="{mx:.1f}" y="{y + 4}" font-size="11" fill="{colour}" '
                     f'text-anchor="middle">{escape(text)}</text>')
    if start <= now <= end:
        parts.append(f'<line x1="{x(now):.1f}" y1="10" x2="{x(now):.1f}" y2="{HEIGHT - 4}" '
                     f'stroke="#b00020" stroke-dasharray="4 3"/>')
        words.append(f"now {local(now)}")
    title = "Visit timeline: " + "; ".join(words)
    parts.insert(1, f'<title id="timeline-title">{escape(title)}</title>')
    parts.append("</svg>")
    return "".join(parts)
