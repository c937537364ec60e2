"""What the checklist page's presenter builds once instead of per request renders as the
forms and templates it stands for."""

from django.template import Context, Template

from readiness.checklists.forms import BulkStatusForm
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
