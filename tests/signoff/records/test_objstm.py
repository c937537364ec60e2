"""Objects in a PDF object stream are read in linear time by pyHanko's reader (see
signoff.records.objstm): the same objects as pyHanko's own loop, each stream's header read
once, not once per object."""

import io

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.xref import ObjStreamRef

from signoff.records import objstm, pdf
from signoff.records.snapshot import record_snapshot
from tests.signoff_helpers import approve_all, signers_for


@pytest.fixture
def tagged_record(deployment, team):
    """A record as the server renders one: tagged, PDF/A, every object in one stream."""
    approve_all(deployment, signers_for(team))
    return pdf.render_record(record_snapshot(deployment, record_id="objstm"), draft=False)


def stream_refs(reader: PdfFileReader) -> list[tuple[int, ObjStreamRef]]:
    """(object number, its place) of every object the first revision keeps in a stream."""
    found = []
    for ref in sorted(reader.xrefs.explicit_refs_in_revision(0), key=lambda r: r.idnum):
        marker = reader.xrefs.get_historical_ref(ref, 0)
        if isinstance(marker, ObjStreamRef):
            found.append((ref.idnum, marker))
    return found


def read_all(data: bytes, method) -> tuple[dict, int]:
    """Every object-stream object read with `method`, and how many numbers were parsed."""
    reader = PdfFileReader(io.BytesIO(data))
    parsed = 0
    original = generic.NumberObject.read_from_stream

    def counting(stream):
        nonlocal parsed
        parsed += 1
        return original(stream)

    objects = {}
    generic.NumberObject.read_from_stream = staticmethod(counting)
    try:
        for idnum, marker in stream_refs(reader):
            objects[idnum] = method(reader, idnum, marker.obj_stream_id, marker.ix_in_stream)
    finally:
        generic.NumberObject.read_from_stream = staticmethod(original)
    return objects, parsed


@pytest.mark.django_db
def test_every_object_reads_as_pyhankos_own_loop_reads_it_in_linear_time(tagged_record):
    linear, linear_parsed = read_all(tagged_record, objstm._get_object_from_stream)
    quadratic, quadratic_parsed = read_all(tagged_record, objstm._ORIGINAL)
    assert len(linear) > 1000, "a tagged record keeps thousands of objects in its stream"
    assert {k: repr(v) for k, v in linear.items()} == {k: repr(v) for k, v in quadratic.items()}
    # Two numbers per header entry, once, plus what the objects themselves hold.
    assert linear_parsed < 20 * len(linear)
    assert quadratic_parsed > 100 * len(linear)


@pytest.mark.django_db
def test_the_reader_uses_it(tagged_record):
    objstm.install()
    assert PdfFileReader._get_object_from_stream is objstm._get_object_from_stream
