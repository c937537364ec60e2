"""What the checklist page's presenter builds once instead of per request renders as the
forms and templates it stands for."""

import itertools
from types import SimpleNamespace

from django.template import Context, Template

from readiness.checklists.forms import ITEM_FILTERS, BulkStatusForm
from readiness.checklists.models import ItemStatus
from signoff import presenters


def test_blank_bulk_form_renders_as_the_unbound_form():
    blank, unbound = presenters.blank_bulk_form(), BulkStatusForm(item_ids=())
    for name in ("status", "reason"):
        assert str(getattr(blank, name)) == str(unbound[name])
        assert getattr(blank, name).label == unbound[name].label
        assert getattr(blank, name).id_for_label == unbound[name].id_for_label
    assert not blank.errors


def test_rendered_field_is_not_escaped_again_in_a_template():
    html = Template("{{ form.status }}").render(Context({"form": presenters.blank_bulk_form()}))
    assert html == str(BulkStatusForm(item_ids=())["status"])
    assert html.startswith('<select name="status"')


def test_filter_counts_count_the_rows_each_filter_lists():
    rows = [
        SimpleNamespace(
            status=status, mine=mine, probe_conflict=conflict, overridden=overridden, waiver=waiver
        )
        for status, mine, conflict, overridden, waiver in itertools.product(
            ItemStatus.values,
            (True, False),
            ("", "The latest probe run failed it"),
            (True, False),
            (None, object()),
        )
    ]
    counts = presenters.filter_counts(rows)
    assert list(counts) == list(ITEM_FILTERS)
    for key in ITEM_FILTERS:
        assert counts[key] == sum(presenters.row_matches(row, show=key) for row in rows), key
    assert counts["open"] and counts["waived"]


def test_page_url_is_the_url_tags_under_each_urlconf_and_script_prefix(settings):
    from django.urls import set_script_prefix

    def both() -> tuple[str, str]:
        page = Template("{% load readiness_tags %}{% page_url 'dashboard' %}")
        return page.render(Context()), Template("{% url 'dashboard' %}").render(Context())

    first, expected = both()
    assert first == expected == "/"
    set_script_prefix("/readiness/")
    try:
        assert both() == ("/readiness/", "/readiness/")
    finally:
        set_script_prefix("/")
    settings.ROOT_URLCONF = "tests.readiness.web.moved_urls"
    assert both() == ("/moved/", "/moved/")
