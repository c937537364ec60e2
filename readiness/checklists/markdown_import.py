"""Parse a Markdown production-readiness checklist into sections and items.

The format is the seed's: `# Name`, `## Section` headings, items written as
`- [ ] **Title:** description`, and an optional `## Final Sign-Off` section holding the
role table, a `**Deployment Date:**` line and the `**Post-Deployment Notes:**` checklist.
Parsing is pure (no database); every error names its line, and any error means nothing is
imported.
"""

import hashlib
import re
from dataclasses import dataclass, field

from readiness.checklists.ownership import SEED_ROLES

MAX_BYTES = 256 * 1024
MAX_TITLE = 200
MAX_DESCRIPTION = 2000
MAX_ITEMS = 1000
SIGN_OFF_SECTION = "final sign-off"

# A trailing "(if required)" and the like marks an item that may be not applicable.
QUALIFIERS = ("if required", "if applicable", "optional")
_QUALIFIER_RE = re.compile(r"\((" + "|".join(QUALIFIERS) + r")\)\s*$", re.IGNORECASE)
_H1_RE = re.compile(r"^#\s+(?P<text>.+?)\s*#*\s*$")
_H2_RE = re.compile(r"^##\s+(?P<text>.+?)\s*#*\s*$")
_DEEPER_HEADING_RE = re.compile(r"^#{3,}\s")
_CHECKBOX_RE = re.compile(r"^\s*[-*+]\s+\[[ xX]\]\s*(?P<rest>.*)$")
# "**Title:** description" (the seed) or "**Title**: description".
_TITLED_RE = re.compile(r"^\*\*(?P<title>[^*]+?)(?::\*\*|\*\*\s*:)\s*(?P<description>.*)$")
_TABLE_ROW_RE = re.compile(r"^\s*\|(?P<cells>.*)\|\s*$")
_BOLD_LABEL_RE = re.compile(r"^\*\*(?P<label>[^*]+?):?\*\*:?\s*(?P<rest>.*)$")


@dataclass(frozen=True)
class ParsedItem:
    title: str
    description: str
    qualifier: str
    line: int


@dataclass(frozen=True)
class ParsedSection:
    title: str
    line: int
    items: tuple[ParsedItem, ...]


@dataclass(frozen=True)
class ParsedTemplate:
    name: str
    introduction: str
    sections: tuple[ParsedSection, ...]
    sign_off_roles: tuple[str, ...]
    has_deployment_date: bool
    post_deployment_items: tuple[str, ...]
    sha256: str

    @property
    def item_count(self) -> int:
        return sum(len(section.items) for section in self.sections)


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class TemplateImportError(ValueError):
    """The Markdown cannot be imported; `errors` lists every problem with its line."""

    def __init__(self, errors: list[LineError]):
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


def qualifier_of(description: str) -> str:
    match = _QUALIFIER_RE.search(description)
    return match.group(1).lower() if match else ""


def content_sha256(source: str) -> str:
    # Line endings and trailing whitespace do not change what a template says.
    normalized = "\n".join(line.rstrip() for line in source.strip().splitlines())
    return hashlib.sha256(normalized.encode()).hexdigest()


def decode(raw: bytes, *, max_bytes: int = MAX_BYTES) -> str:
    if len(raw) > max_bytes:
        raise TemplateImportError(
            [LineError(0, f"the file is {len(raw):,} bytes; the limit is {max_bytes:,} bytes")]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TemplateImportError([LineError(line, "the file is not UTF-8 text")]) from None
    if "\x00" in text:
        raise TemplateImportError([LineError(0, "the file is binary, not Markdown text")])
    return text


@dataclass
class _SectionDraft:
    title: str
    line: int
    items: list[ParsedItem] = field(default_factory=list)
    titles: dict[str, int] = field(default_factory=dict)


def parse(source: str, *, default_name: str = "", max_bytes: int = MAX_BYTES) -> ParsedTemplate:
    """Parse Markdown text; raise TemplateImportError listing every problem found."""
    if len(source.encode()) > max_bytes:
        decode(source.encode(), max_bytes=max_bytes)
    errors: list[LineError] = []
    name = ""
    introduction: list[str] = []
    sections: list[_SectionDraft] = []
    section_lines: dict[str, int] = {}
    in_sign_off = False
    in_post_notes = False
    roles: list[str] = []
    post_items: list[str] = []
    has_deployment_date = False
    in_comment = False

    for number, raw_line in enumerate(source.splitlines(), start=1):
        line = raw_line.rstrip()
        stripped = line.strip()
        if in_comment:
            in_comment = "-->" not in stripped
            continue
        if stripped.startswith("<!--"):
            in_comment = "-->" not in stripped
            continue
        if not stripped or stripped.startswith("<") or set(stripped) <= {"-", "*", "_", " "}:
            continue
        if match := _H1_RE.match(stripped):
            if not name and not sections:
                name = match["text"]
            else:
                errors.append(LineError(number, "a second '# ' title; sections start with '## '"))
            continue
        if match := _H2_RE.match(stripped):
            title = match["text"].strip()
            in_sign_off = title.lower() == SIGN_OFF_SECTION
            in_post_notes = False
            if in_sign_off:
                continue
            if len(title) > MAX_TITLE:
                errors.append(LineError(number, f"section title is over {MAX_TITLE} characters"))
            key = title.casefold()
            if key in section_lines:
                errors.append(
                    LineError(
                        number,
                        f"duplicate section '{title}' (first on line {section_lines[key]})",
                    )
                )
            section_lines.setdefault(key, number)
            sections.append(_SectionDraft(title=title, line=number))
            continue
        if _DEEPER_HEADING_RE.match(stripped):
            continue
        if in_sign_off:
            if row := _TABLE_ROW_RE.match(line):
                first = row["cells"].split("|")[0].strip().strip("*").strip()
                if first and first.lower() != "role" and not set(first) <= {":", "-", " "}:
                    roles.append(first)
                continue
            if label := _BOLD_LABEL_RE.match(stripped):
                text = label["label"].strip().lower()
                has_deployment_date = has_deployment_date or text == "deployment date"
                in_post_notes = text == "post-deployment notes"
                continue
            if checkbox := _CHECKBOX_RE.match(line):
                if in_post_notes:
                    post_items.append(checkbox["rest"].strip())
                else:
                    errors.append(
                        LineError(number, "a checklist item inside the Final Sign-Off section")
                    )
                continue
            continue
        checkbox = _CHECKBOX_RE.match(line)
        if not checkbox:
            if not sections:
                introduction.append(stripped)
            continue
        if not sections:
            errors.append(LineError(number, "a checklist item outside a section ('## Section')"))
            continue
        titled = _TITLED_RE.match(checkbox["rest"].strip())
        if not titled:
            errors.append(
                LineError(number, "a checklist item must read '- [ ] **Title:** description'")
            )
            continue
        section = sections[-1]
        title = titled["title"].strip()
        description = titled["description"].strip()
        if not title:
            errors.append(LineError(number, "a checklist item has an empty title"))
            continue
        if len(title) > MAX_TITLE:
            errors.append(LineError(number, f"item title is over {MAX_TITLE} characters"))
        if len(description) > MAX_DESCRIPTION:
            errors.append(LineError(number, f"description is over {MAX_DESCRIPTION} characters"))
        key = title.casefold()
        if key in section.titles:
            errors.append(
                LineError(
                    number,
                    f"duplicate item '{title}' in section '{section.title}' "
                    f"(first on line {section.titles[key]})",
                )
            )
            continue
        section.titles[key] = number
        section.items.append(
            ParsedItem(
                title=title,
                description=description,
                qualifier=qualifier_of(description),
                line=number,
            )
        )

    if not sections:
        errors.append(LineError(0, "no sections found: a checklist needs '## Section' headings"))
    for section in sections:
        if not section.items:
            errors.append(LineError(section.line, f"section '{section.title}' has no items"))
    total = sum(len(section.items) for section in sections)
    if total > MAX_ITEMS:
        errors.append(LineError(0, f"{total} items; the limit is {MAX_ITEMS}"))
    name = name or default_name
    if not name:
        errors.append(LineError(1, "no '# Title' line and no name given"))
    if len(name) > MAX_TITLE:
        errors.append(LineError(1, f"the title is over {MAX_TITLE} characters"))
    if errors:
        raise TemplateImportError(sorted(errors, key=lambda error: error.line))
    return ParsedTemplate(
        name=name,
        introduction=" ".join(introduction),
        sections=tuple(
            ParsedSection(title=s.title, line=s.line, items=tuple(s.items)) for s in sections
        ),
        sign_off_roles=tuple(roles) or SEED_ROLES,
        has_deployment_date=has_deployment_date,
        post_deployment_items=tuple(post_items),
        sha256=content_sha256(source),
    )
