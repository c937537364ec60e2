import functools
import re
from datetime import UTC, datetime

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from readiness.probes.base import STATUS_WORDS

register = template.Library()

# CommonMark with raw HTML off: what a template or a probe writes in Markdown (`code`,
# *emphasis*, [links](https://…)) shows as such, and any HTML in it is escaped. Links that
# markdown-it refuses (javascript:, data: …) stay text; images stay links, so a page or a
# record never loads anything from a description.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image")


@register.simple_tag
def page_url(name: str) -> str:
    """`{% url name %}` of a URL that takes no argument, as the menu on every page names
    them: reversed once per URLconf and script prefix (what reverse's answer depends on for
    such a URL), where nine `{% url %}` cost each page ~0.3 ms of CPU."""
    return _page_url(name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())


@functools.lru_cache(maxsize=64)
def _page_url(name: str, urlconf, prefix: str) -> str:
    return reverse(name, urlconf=urlconf)


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


def _hash_html(digest: str, shown: int) -> str:
    # <details> rather than a title: the full digest opens in place by touch, keyboard or
    # screen reader, as selectable text to copy.
    return (
        f'<details class="hash"><summary><code>{digest[:shown]}…</code>'
        f'<span class="visually-hidden"> (show the full hash)</span></summary>'
        f'<code class="hash-full">{digest}</code></details>'
    )


@register.filter
def short_hash(digest: str, shown: int = 12) -> SafeString:
    """A SHA-256 (or any long hex digest) as its first characters, the whole one a click away."""
    digest = str(digest or "")
    if not _HEX.fullmatch(digest):
        return conditional_escape(digest)
    return mark_safe(_hash_html(digest, shown))


_HEX = re.compile(r"[0-9a-f]{32,}")
_LONG_HEX = re.compile(r"\b[0-9a-f]{32,}\b")
_ISO_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")


def _utc_time(match: re.Match) -> str:
    try:
        moment = datetime.fromisoformat(match.group(0)).astimezone(UTC)
    except ValueError:
        return match.group(0)
    return f'<time datetime="{moment.isoformat()}">{moment:%Y-%m-%d %H:%M:%S} UTC</time>'


@register.filter
def readable_change(line: str) -> SafeString:
    """One line of an audit event's change, as the audit page shows it: digests short (the
    whole one a click away) and ISO times as 24-hour UTC, like every other time here."""
    text = str(conditional_escape(line))
    text = _ISO_TIME.sub(_utc_time, text)
    return mark_safe(_LONG_HEX.sub(lambda m: _hash_html(m.group(0), 12), text))
