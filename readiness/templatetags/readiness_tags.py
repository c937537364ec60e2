from django import template
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from readiness.probes.base import STATUS_WORDS

register = template.Library()

# CommonMark with raw HTML off: what a template or a probe writes in Markdown (`code`,
# *emphasis*, [links](https://…)) shows as such, and any HTML in it is escaped. Links that
# markdown-it refuses (javascript:, data: …) stay text; images stay links, so a page or a
# record never loads anything from a description.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image")


@register.filter
def markdown_inline(text: str) -> SafeString:
    """Inline Markdown of template text and probe remediations, as HTML."""
    return mark_safe(_MARKDOWN.renderInline(text or ""))


_PROBE_LABELS = {
    **STATUS_WORDS,
    "pending": "pending",
    "running": "running",
    "cancelled": "not run",
}


@register.filter
def probe_label(status: str) -> str:
    return _PROBE_LABELS.get(status, status)


@register.filter
def duration_words(seconds) -> str:
    """A time left as a person reads it: "8 s", "3 min", "1 h 5 min"."""
    if seconds is None:
        return ""
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@register.filter
def join_if_sequence(value) -> str:
    """A threshold as a reader writes it: lists and tuples comma-separated."""
    if isinstance(value, list | tuple):
        return ", ".join(str(part) for part in value)
    return str(value)
