"""HTML rendering: escaping, tables, and the self-contained page shell.

Every string that comes from a run (model and attack names, config values, warnings,
captions) goes through `esc`; only `Html` values, built here from escaped parts, are inserted
as markup. Pages load nothing from the network: the CSS is inline, figures are data URIs,
and fonts are the reader's own.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Collection, Iterable, Sequence

__all__ = ["Html", "data_uri", "esc", "join", "page", "swatch", "table"]


class Html(str):
    """Markup that is already safe to insert (built from escaped parts)."""

    __slots__ = ()


def esc(value: object) -> Html:
    """Escape any value for HTML text or a quoted attribute; `Html` passes unchanged."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Html:
    """Parts joined by ``sep`` (literal markup); parts escaped unless `Html`."""
    return Html(sep.join(esc(p) for p in parts))


def data_uri(png: bytes) -> Html:
    """A PNG as a data: URI (base64 has no characters that need escaping)."""
    return Html("data:image/png;base64," + base64.b64encode(png).decode("ascii"))


def swatch(colour: str) -> Html:
    """A small colour square (colour is one of the palette's hex codes)."""
    return Html(f'<span class="swatch" style="background:{esc(colour)}"></span>')


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    numeric_from: int = 1,
    text_columns: Collection[int] = (),
    css_class: str = "",
) -> Html:
    """A table; cells are escaped unless `Html`.

    Columns from ``numeric_from`` on are right-aligned, except those in ``text_columns``.
    """
    head = join(Html(f"<th>{esc(h)}</th>") for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            align = ' class="num"' if i >= numeric_from and i not in text_columns else ""
            cells.append(f"<td{align}>{esc(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    klass = f' class="{esc(css_class)}"' if css_class else ""
    return Html(
        f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
       sans-serif; margin: 0 auto; max-width: 1180px; padding: 1.5rem 2rem 4rem;
       color: #1a1a1a; background: #ffffff; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd;
     padding-bottom: 0.2rem; }
.facts { color: #444; margin: 0.3rem 0 1rem; }
.status { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 0.6rem;
          font-size: 0.85rem; background: #e6f2ea; color: #1c5e34; }
.status.partial { background: #fff4d6; color: #7a5300; }
.warnings { background: #fff4d6; border-left: 5px solid #E69F00; padding: 0.6rem 1rem;
            margin: 1rem 0; }
.warnings strong { color: #7a3d00; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e2e2e2; padding: 0.3rem 0.6rem; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
.swatch { display: inline-block; width: 0.8rem; height: 0.8rem; border-radius: 2px;
          margin-right: 0.4rem; vertical-align: -1px; }
figure { margin: 1.5rem 0 2.5rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { margin-top: 0.4rem; color: #333; max-width: 70rem; }
figcaption .title { font-weight: 600; }
.note { color: #555; font-size: 0.9rem; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.82rem; }
nav ol { columns: 2; }
a { color: #0057a0; }
"""


def page(title: object, body: Html) -> str:
    """A complete self-contained HTML document."""
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )
