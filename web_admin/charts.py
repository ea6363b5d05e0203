"""Charts drawn on the server as SVG: read at a glance, no script, printable, escaped text."""
from __future__ import annotations

from html import escape

WIDTH = 640
_BAR_H, _GAP, _LABEL_W = 22, 6, 180


def bars(items: list[tuple[str, float, str]], *, limit: float | None = None,
         limit_label: str = "", title: str = "") -> str:
    """Horizontal bars: (label, value, shown value); an optional vertical limit line."""
    top = max([v for _, v, _ in items] + [limit or 0, 1e-9])
    h = len(items) * (_BAR_H + _GAP) + 30
    span = WIDTH - _LABEL_W - 80
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {WIDTH} {h}" width="{WIDTH}" height="{h}">',
             f"<title>{escape(title)}</title>"]
    for i, (label, value, shown) in enumerate(items):
        y = 10 + i * (_BAR_H + _GAP)
        w = max(0.0, value / top * span)
        parts.append(f'<text x="{_LABEL_W - 8}" y="{y + 16}" text-anchor="end" '
                     f'class="chart-label">{escape(label)}</text>')
        parts.append(f'<rect x="{_LABEL_W}" y="{y}" width="{w:.1f}" height="{_BAR_H}" '
                     f'class="chart-bar"/>')
        parts.append(f'<text x="{_LABEL_W + w + 6:.1f}" y="{y + 16}" '
                     f'class="chart-value">{escape(shown)}</text>')
    if limit is not None:
        x = _LABEL_W + limit / top * span
        parts.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{h - 20}" '
                     f'class="chart-limit"/>')
        parts.append(f'<text x="{x:.1f}" y="{h - 6}" text-anchor="middle" '
                     f'class="chart-limit-label">{escape(limit_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heatmap(cells: dict[tuple[int, int], float], *, rows: list[str], title: str = "",
            hours: range = range(24), shown: dict[tuple[int, int], str] | None = None) -> str:
    """A grid of weekday rows by hour columns; darker means more (0..1 values)."""
    cw, ch, left, head = 24, 22, 40, 20
    w, h = left + cw * len(hours) + 4, head + ch * len(rows) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {w} {h}" width="{w}" height="{h}">', f"<title>{escape(title)}</title>"]
    for j, hour in enumerate(hours):
        parts.append(f'<text x="{left + j * cw + cw / 2}" y="14" text-anchor="middle" '
                     f'class="chart-axis">{hour}</text>')
    for i, name in enumerate(rows):
        y = head + i * ch
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" '
                     f'class="chart-axis">{escape(name)}</text>')
        for j, hour in enumerate(hours):
            v = cells.get((i, hour))
            opacity = 0.06 if v is None else 0.15 + 0.85 * max(0.0, min(1.0, v))
            tip = (shown or {}).get((i, hour), "")
            parts.append(f'<rect x="{left + j * cw}" y="{y}" width="{cw - 2}" height="{ch - 2}" '
                         f'class="chart-cell" fill-opacity="{opacity:.2f}">'
                         f"<title>{escape(tip)}</title></rect>")
    parts.append("</svg>")
    return "".join(parts)
