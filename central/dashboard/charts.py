"""Bar charts as inline SVG, drawn on the server for the reports page: one horizontal bar per
row with its value written beside it, and an optional target drawn as a dashed line. The
numbers are text in the picture and the ``<title>`` says it all in words, so colour is never
the only way to read a chart; the page puts the same figures in a table beside it."""

from __future__ import annotations

from html import escape

ROW, LABEL_W, BAR_W, VALUE_W = 26, 170, 340, 190


def bar_chart(title: str, rows: list[tuple[str, float, str]], *, maximum: float | None = None,
              target: float | None = None, target_label: str = "") -> str:
    """``rows``: (label, value, value as text). ``maximum`` scales the bars (default: the
    largest value); ``target`` draws a line at that value."""
    top = max([maximum or 0.0, *(value for _, value, _ in rows)]) or 1.0
    height = ROW * len(rows) + (34 if target is not None else 14)
    width = LABEL_W + BAR_W + VALUE_W
    words = "; ".join(f"{label}: {text}" for label, _, text in rows)
    if target is not None:
        words += f"; {target_label}"
    ident = "chart-" + "".join(c if c.isalnum() else "-" for c in title.lower())
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="{ident}" preserveAspectRatio="xMinYMin meet">',
             f'<title id="{ident}">{escape(title)}: {escape(words)}</title>']
    for i, (label, value, text) in enumerate(rows):
        y = 6 + i * ROW
        length = BAR_W * max(value, 0.0) / top
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 15}" font-size="13" fill="#111" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{max(length, 1):.1f}" height="18" '
                     f'fill="#1f4fa3"/>')
        parts.append(f'<text x="{LABEL_W + length + 6:.1f}" y="{y + 15}" font-size="13" '
                     f'fill="#111">{escape(text)}</text>')
    if target is not None:
        x = LABEL_W + BAR_W * target / top
        bottom = 6 + ROW * len(rows)
        parts.append(f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="{bottom}" stroke="#b00020" '
                     f'stroke-width="2" stroke-dasharray="5 3"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" font-size="12" fill="#8a0018" '
                     f'text-anchor="middle">{escape(target_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
