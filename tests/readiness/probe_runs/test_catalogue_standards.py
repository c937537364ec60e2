"""The probe catalogue shows what each probe maps to in Security Hub, Prowler, AWS Config and
the Well-Architected Framework."""

from html import unescape

import pytest
from django.urls import reverse

from readiness.probes.standards import standards_of


@pytest.mark.django_db
def test_the_catalogue_shows_each_probes_standards(outsider_client):
    html = unescape(outsider_client.get(reverse("probe_catalogue")).content.decode())
    block = html.split('id="probe-network.security_groups"', 1)[1].split('class="catalogue-probe"')[
        0
    ]
    assert "<dt>Security Hub</dt>" in block
    for control in ("EC2.18", "EC2.19", "EC2.53", "EC2.54"):
        assert f"<code>{control}</code>" in block
    assert "<code>ec2_securitygroup_allow_ingress_from_internet_to_all_ports</code>" in block
    assert "<code>vpc-sg-open-only-to-authorized-ports</code>" in block
    assert "<code>sec_network_protection_layered</code>" in block
    trail = html.split('id="probe-cloudtrail.trail"', 1)[1].split('class="catalogue-probe"')[0]
    partial = next(c for c in standards_of("cloudtrail.trail").security_hub if c.note)
    assert f"<code>{partial.id}</code> (partial: {partial.note})" in trail
