"""How it is rendered: the report as a list of blocks (heading, paragraph, table, image), written as
Markdown and as one self-contained HTML page (figures inlined)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from forgetlab.studies.mnist_mlp import LATENT_REPEAT, SECTIONS, STUDY_TEXT
from forgetlab.workflows.reproduce.prose import ONSET_HEADER, ONSET_INTRO, comparison, intro, latent_repeat, onset_rows
from forgetlab.workflows.reproduce.runs import Phases

LENET = ("lenet-concurrent", "lenet-sequential")
EXPLAINED = "mlp-sequential"  # the experiment whose forgetting the explanatory probes take apart


def _section(name: str, runs, figs_by_preset, onsets) -> list[tuple]:
    res = runs[name][0]
    B: list[tuple] = [
        ("p", f"Study: {STUDY_TEXT.get(name, 'not in the study text (the conv net of its earlier part).')}")
    ]
    header, rows, notes = comparison(name, res)
    B.append(("table", header, rows))
    B += [("p", n) for n in notes]
    if name in LATENT_REPEAT:
        B.append(("p", latent_repeat(LATENT_REPEAT[name])))
    if name in onsets:
        B.append(("p", ONSET_INTRO))
        B.append(("table", ONSET_HEADER, onset_rows(onsets[name])))
    B += [("img", png, caption) for png, caption in figs_by_preset.get(name, [])]
    return B


def build_blocks(
    runs,
    figs_by_preset,
    onsets,
    phases: Phases,
    seeds: int,
    wall: float,
    device: str,
    explained: list[tuple] = (),
    overrides: Sequence[str] = (),
) -> list[tuple]:
    """The whole report: title, method, timings, then one section per experiment in the study's order,
    then ``explained``: the explanatory probes' answers (``explain_report.section``). ``overrides``: the
    KEY=VALUE settings every experiment ran with instead of forgetlab's defaults."""
    B: list[tuple] = [
        ("h", 1, "Catastrophic forgetting in an MNIST MLP: the study, reproduced by forgetlab"),
        ("p", intro(seeds)),
    ]
    if overrides:
        B.append(
            (
                "p",
                "Every experiment ran with these settings instead of forgetlab's defaults: "
                + ", ".join(f"`{s}`" for s in overrides)
                + ".",
            )
        )
    B.append(
        (
            "table",
            ["phase", "seconds"],
            [[k, f"{getattr(phases, k):.1f}"] for k in ("training", "probes", "tsne", "figures", "report")]
            + [["total (wall)", f"{wall:.1f}"]],
        )
    )
    B.append(("p", f"Device: {device}. Cached experiments: {', '.join(phases.cached) or 'none'}."))
    current = None
    for top, sub, name in SECTIONS + [("Beyond the study", "LeNet-5", n) for n in LENET]:
        if name not in runs:
            continue
        if top != current:
            B.append(("h", 2, top))
            current = top
        B.append(("h", 3, f"{sub} (`{name}`)"))
        B += _section(name, runs, figs_by_preset, onsets)
    if explained:
        B.append(("h", 2, f"Why the network forgets: the study's questions, measured (`{EXPLAINED}`)"))
        B.append(
            (
                "p",
                f"Each question the study raises, answered with a measured quantity over {seeds} seeds (mean ± "
                f"std); every finding is a sentence generated from the numbers beside it "
                f"(`forgetlab/explain.py`), not typed in.",
            )
        )
        B += explained
    return B


def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _inline_md_to_html(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
    "text-align:right}th{background:#f3f3f3}img{max-width:100%}figure{margin:1.5em 0}"
    "figcaption{font-size:13px;color:#555}code{background:#f3f3f3;padding:0 3px}"
)


def _block(b: tuple, out: Path) -> tuple[str, str]:
    """One block as (Markdown, HTML)."""
    if b[0] == "h":
        return "#" * b[1] + " " + b[2], f"<h{b[1]}>{_inline_md_to_html(b[2])}</h{b[1]}>"
    if b[0] == "p":
        return b[1], f"<p>{_inline_md_to_html(b[1])}</p>"
    if b[0] == "table":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in b[1])
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in b[2])
        return _md_table(b[1], b[2]), f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    rel = b[1].relative_to(out).as_posix()
    data = base64.b64encode(b[1].read_bytes()).decode()
    return (
        f"![{b[2]}]({rel})\n*{b[2]}* (PDF: `{Path(rel).with_suffix('.pdf')}`)",
        f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(b[2])}</figcaption></figure>",
    )


def render(blocks, out: Path) -> tuple[str, str]:
    """(REPORT.md text, report.html page); image paths are relative to ``out``."""
    md, body = zip(*(_block(b, out) for b in blocks), strict=True)
    page = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>forgetlab report</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
    return "\n\n".join(md) + "\n", page
