"""The record as a PDF: a RecordSnapshot in, bytes out; no database access at all.

Views and tasks call `signoff.pdf.render_record` through the module, so a test can patch it
and prove that a stored record is served without rendering again.
"""

from functools import cache
from html import escape
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from weasyprint import CSS, HTML, Attachment, URLFetcher

from signoff.records.content import RELATIONSHIP, embedded_files
from signoff.records.evidence import RecordEvidence
from signoff.records.snapshot import RecordSnapshot

TEMPLATE = "signoff/record.html"
STYLESHEET = Path(settings.BASE_DIR) / "templates" / "signoff" / "record.css"
# CSS `size` values of the paper sizes a deployment can choose (settings.RECORD_PAGE_SIZE).
PAGE_SIZES = {"a4": "A4", "letter": "letter"}
# PDF/A-3 (ISO 19005-3) is the PDF/A part that allows embedded files of any type, as
# associated files; level B is what an HTML render can claim (visual appearance), not A.
PDF_VARIANT = "pdf/a-3b"


class LocalOnlyFetcher(URLFetcher):
    """Fetches the record's own stylesheet folder and nothing else.

    The record needs no other resource. Refusing every other URL keeps a render from ever
    reaching the network: an evidence link is printed text and a link, never fetched, but
    a refusal here makes that a guarantee rather than a habit of the template.
    """

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if parts.scheme == "file" and not parts.netloc:
            path = Path(url2pathname(parts.path)).resolve()
            if path.is_relative_to(STYLESHEET.parent):
                return super().fetch(url, headers)
        raise ValueError(f"the record does not load {url[:80]!r}")


@cache
def _stylesheet() -> CSS:
    # Parsed once per process: the stylesheet is part of the code and does not change.
    return CSS(filename=str(STYLESHEET), url_fetcher=LocalOnlyFetcher())


def _css_string(text: str) -> str:
    """`text` as a quoted CSS string for @page margin boxes, safe inside <style>."""
    escaped = []
    for char in text:
        if char in '"\\<>' or ord(char) < 0x20:
            escaped.append(f"\\{ord(char):x} ")
        else:
            escaped.append(char)
    return mark_safe('"' + "".join(escaped) + '"')


def page_size_css(page_size: str | None) -> str:
    chosen = (page_size or settings.RECORD_PAGE_SIZE).strip().lower()
    if chosen not in PAGE_SIZES:
        raise ValueError(f"page size must be A4 or Letter, not {page_size!r}")
    return PAGE_SIZES[chosen]


def record_html(snapshot: RecordSnapshot, *, draft: bool, page_size: str | None = None) -> str:
    """The record's HTML, for rendering and for looking at it in a browser while styling."""
    what = f"{snapshot.service} {snapshot.version} → {snapshot.environment}"
    header = f"DRAFT — not a signed record · {what}" if draft else what
    return render_to_string(
        TEMPLATE,
        {
            "record": snapshot,
            "draft": draft,
            "page_size": page_size_css(page_size),
            "margin_text": {
                "top_right": _css_string(header),
                "bottom_left": _css_string(
                    f"Record {snapshot.record_id} · State digest {snapshot.state_digest[:16]}"
                ),
            },
        },
    )


def render_record(
    snapshot: RecordSnapshot,
    *,
    draft: bool,
    page_size: str | None = None,
    evidence: RecordEvidence | None = None,
) -> bytes:
    """The PDF of the record: watermarked DRAFT on every page when `draft`.

    `page_size` is "A4" or "Letter"; None takes settings.RECORD_PAGE_SIZE. `evidence` (read
    by the caller: this module reads no database) is embedded beside the snapshot.

    Every render is tagged (a structure tree a screen reader or a text extractor follows).
    The record to be signed is PDF/A-3b as well, the archival form that allows its embedded
    files; a draft is not: it is never kept, embeds nothing, and must not claim the archival
    conformance only the signed record has.
    """
    options = {
        # custom_metadata writes the readiness-* <meta> fields (record id, deployment, state
        # digest) into the PDF's document information, where verification can read them.
        "custom_metadata": True,
        "pdf_tags": True,
        "pdf_variant": None if draft else PDF_VARIANT,
        "attachments": [] if draft else _attachments(snapshot, evidence),
    }
    document = HTML(
        string=record_html(snapshot, draft=draft, page_size=page_size),
        base_url=str(STYLESHEET.parent) + "/",
        url_fetcher=LocalOnlyFetcher(),
    ).render(stylesheets=[_stylesheet()], **options)
    # PDF dates have whole seconds; an XMP CreateDate with the snapshot's microseconds would
    # not be "equivalent" to the document information's CreationDate, as PDF/A requires.
    document.metadata.created = snapshot.generated_at.replace(microsecond=0).isoformat()
    return document.write_pdf(finisher=None if draft else _finish_pdfa, **options)


def _finish_pdfa(document, pdf) -> None:
    """Two fixes to what WeasyPrint 70 writes for PDF/A-3, made before the file is signed."""
    # WeasyPrint lists every associated file twice in the catalog's /AF (once from the
    # embedded files' name tree, once from the file specifications themselves).
    associated = pdf.catalog.get("AF")
    if associated is not None:
        unique = list(dict.fromkeys(associated))
        associated.clear()
        associated.extend(unique)
    # pyHanko's signature (an incremental update) appends itself to the document
    # information's /Producer but writes only itself into the XMP pdf:Producer: the two would
    # differ, which PDF/A forbids. Without an information /Producer, pyHanko writes the same
    # value into both.
    pdf.info.pop("Producer", None)


def _attachments(snapshot: RecordSnapshot, evidence: RecordEvidence | None) -> list[Attachment]:
    """The record's content and evidence as PDF/A-3 associated files (signoff.records.content),
    written before the signature so that it covers them: verification reads what the record
    says from them."""
    return [
        Attachment(
            string=embedded.data,
            name=embedded.name,
            description=embedded.description,
            # Dated like the record, so the same snapshot renders the same files.
            created=snapshot.generated_at,
            modified=snapshot.generated_at,
            relationship=RELATIONSHIP,
        )
        for embedded in embedded_files(snapshot, evidence)
    ]


def render_bare_table(rows: int = 56) -> bytes:
    """A plain table of `rows` checklist-like rows with no stylesheet: the benchmark's floor,
    what WeasyPrint needs at least for as many rows as the checklist has items."""
    body = "".join(
        f"<tr><td>{n}</td><td>Section {n // 7 + 1}</td><td>{escape(f'Item number {n}')}</td>"
        "<td>done</td></tr>"
        for n in range(1, rows + 1)
    )
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Bare table</title></head>"
        "<body><table><thead><tr><th>No.</th><th>Section</th><th>Item</th><th>Status</th>"
        f"</tr></thead><tbody>{body}</tbody></table></body></html>"
    )
    return HTML(string=html, url_fetcher=LocalOnlyFetcher()).write_pdf()
