import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from readiness.probes.base import STATUS_WORDS

register = template.Library()

_CODE_SPAN = re.compile(r"`([^`]+)`")


@register.filter
def inline_code(text: str) -> SafeString:
    """Show Markdown `code` spans of template text (e.g. `docs/runbook.md`) as code."""
    # Escaping first keeps the text safe; the backticks survive escaping unchanged.
    return mark_safe(_CODE_SPAN.sub(r"<code>\1</code>", escape(text)))


_PROBE_LABELS = {**STATUS_WORDS, "pending": "pending", "running": "running"}


@register.filter
def probe_label(status: str) -> str:
    return _PROBE_LABELS.get(status, status)


@register.filter
def join_if_sequence(value) -> str:
    """A threshold as a reader writes it: lists and tuples comma-separated."""
    if isinstance(value, list | tuple):
        return ", ".join(str(part) for part in value)
    return str(value)
