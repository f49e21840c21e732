"""The report's page: the sections rendered as one self-contained HTML page (figures embedded as
PNG data and linked to their files, tables inline) under the fit's health verdict, and the
files written."""

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from climb_bayes.inspect.sections import Section
from climb_bayes.io import atomic_path, write_text
from climb_bayes.model.health import BROKEN, HEALTHY, Health


def png_bytes(figure: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def render_figures(sections: list[Section]) -> dict[str, bytes]:
    """``<stem>.png`` -> PNG bytes for every figure; the figures are closed."""
    rendered = {}
    for section in sections:
        for stem, figure in section.figures.items():
            rendered[f"{stem}.png"] = png_bytes(figure)
            plt.close(figure)
    return rendered


def _table_html(table: pd.DataFrame) -> str:
    index = not isinstance(table.index, pd.RangeIndex)
    return table.to_html(index=index, float_format=lambda v: f"{v:.6g}", na_rep="",
                         border=0, classes="table")


STYLE = """body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#222}
img{max-width:100%;border:1px solid #ddd}table.table{border-collapse:collapse;font-size:12px;
margin:0.5em 0 1.5em}table.table td,table.table th{padding:2px 6px;border-bottom:1px solid #eee;
text-align:right}.note{color:#8a5300}.read{background:#f4f7fb;padding:0.6em;border-radius:4px}
.scroll{overflow-x:auto}.health{padding:0.6em 1em;border-radius:4px;margin:0.5em 0 1em}
.healthy{color:#1a7f37;font-size:13px;padding:0}.marginal{background:#fff4d6;
border:2px solid #d49a00}.broken{background:#ffe3e3;border:2px solid #c62828;color:#6d0000}"""


def _number(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "not a number"


def health_numbers(health: Health) -> str:
    """The numbers a verdict was judged on, in one line."""
    return (f"max R-hat {_number(health.max_r_hat, '.3f')}, min bulk ESS "
            f"{_number(health.min_ess_bulk, '.0f')}, min tail ESS "
            f"{_number(health.min_ess_tail, '.0f')}, {health.divergences} of "
            f"{health.transitions} transitions divergent, min E-BFMI "
            f"{_number(health.min_bfmi, '.2f')}")


def health_banner(health: Health) -> str:
    """The fit's verdict (:mod:`climb_bayes.model.health`) as HTML for the top of the page: a small
    green line when healthy, an amber box with the reasons when marginal, a red one with the
    reasons and the fix when broken."""
    numbers = html.escape(health_numbers(health))
    if health.verdict == HEALTHY:
        return f"<p class='health healthy'>Healthy fit: {numbers}.</p>"
    reasons = "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in health.reasons) + "</ul>"
    if health.verdict == BROKEN:
        return ("<div class='health broken'><strong>Broken fit: these numbers are not "
                f"results.</strong> The sampler's diagnostics fail:{reasons}<p>{numbers}.</p>"
                "<p>Fix: fit again with more warmup (sampler.warmup), a higher "
                "sampler.target_accept, or pilots that pin down the flagged parameters. This "
                "report was drawn only because allow_broken=true was given.</p></div>")
    return ("<div class='health marginal'><strong>Marginal fit:</strong> some diagnostics "
            f"fall short:{reasons}<p>{numbers}.</p><p>Read the numbers with care: the chains "
            "may not have explored the whole posterior, so intervals and probabilities can be "
            "off. More draws (sampler.samples) or warmup (sampler.warmup) usually help.</p>"
            "</div>")


def render_html(sections: list[Section], figures: Mapping[str, bytes], title: str,
                header: str, banner: str) -> str:
    """One self-contained HTML page: figures embedded as data URIs, each linking to its PNG.
    ``banner`` (HTML, :func:`health_banner`) comes first after the title."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
             f"{banner}<p>{html.escape(header)}</p><ul>"]
    parts += [f"<li><a href='#s{i}'>{html.escape(s.title)}</a></li>"
              for i, s in enumerate(sections)]
    parts.append("</ul>")
    for i, section in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(section.title)}</h2>"
                     f"<p class='read'>{html.escape(section.text)}</p>")
        parts += [f"<p class='note'>Note: {html.escape(n)}</p>" for n in section.notes]
        for stem in section.figures:
            name = f"{stem}.png"
            data = base64.b64encode(figures[name]).decode("ascii")
            parts.append(f"<p><a href='{name}'><img alt='{stem}' "
                         f"src='data:image/png;base64,{data}'></a><br>"
                         f"<a href='{name}'>{name}</a></p>")
        for caption, table in section.tables.items():
            parts.append(f"<h3>{html.escape(caption)}</h3><div class='scroll'>"
                         f"{_table_html(table)}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(output: str | Path, figures: Mapping[str, bytes], page: str) -> Path:
    """Write the PNG files and ``report.html`` into ``output`` (each atomically)."""
    output = Path(output)
    for name, data in figures.items():
        with atomic_path(output / name) as tmp:
            tmp.write_bytes(data)
    write_text(output / "report.html", page)
    return output / "report.html"
