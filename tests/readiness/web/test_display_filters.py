"""How digests and times read on the pages: short digests whose whole value opens in place,
and ISO times turned into the 24-hour UTC every page prints (readiness_tags)."""

from readiness.templatetags.readiness_tags import readable_change, short_hash

DIGEST = "7116216f489ca9816ff3c152c6ebd588d99cd7de9fe579860711d2a634d46a62"


def test_a_digest_shows_its_first_characters_and_opens_to_the_whole_one():
    html = short_hash(DIGEST)
    assert html.startswith('<details class="hash"><summary><code>7116216f489c…</code>')
    assert f'<code class="hash-full">{DIGEST}</code></details>' in html
    assert "<code>7116216f489ca981…</code>" in short_hash(DIGEST, 16)


def test_what_is_not_a_digest_is_shown_escaped_as_it_is():
    assert short_hash("<b>not hex</b>") == "&lt;b&gt;not hex&lt;/b&gt;"
    assert short_hash(None) == ""


def test_a_change_line_shortens_its_digests_and_prints_times_as_24_hour_utc():
    line = readable_change(f"digest: {DIGEST} → {'0' * 64}")
    assert line.startswith('digest: <details class="hash"><summary><code>7116216f489c…</code>')
    assert line.count('<details class="hash">') == 2
    assert DIGEST in line  # whole, inside the details

    afternoon = readable_change("signed_at: 2026-12-05T22:15:17.489845+00:00")
    assert afternoon == (
        'signed_at: <time datetime="2026-12-05T22:15:17.489845+00:00">'
        "2026-12-05 22:15:17 UTC</time>"
    )
    # Another offset is converted to UTC, not shown in its own zone.
    assert "2026-12-05 13:00:00 UTC" in readable_change("at: 2026-12-05T14:00:00+01:00")


def test_a_change_line_is_escaped():
    assert readable_change("note: <script>x</script>") == "note: &lt;script&gt;x&lt;/script&gt;"
