"""Reading objects from PDF object streams in linear time, for pyHanko's reader.

pyHanko 0.38's `PdfFileReader._get_object_from_stream` (inherited from PyPDF2) re-parses an
object stream's whole header for every object it takes from it: O(N²) in the objects of a
stream. WeasyPrint puts every object of a record in one stream, and a tagged record has
thousands (its structure tree), so checking what a B-LTA record appends after its signature
(pyHanko walks the structure tree of each revision) took 45 to 100 s for a 14-page record.
pypdf fixed the same loop in 2026 (py-pdf/pypdf#3676) by indexing a stream's header once;
this does the same for pyHanko: the header of each stream is read once per reader, then each
object is parsed from its offset. Anything unusual (a damaged header, an object missing from
it, a strict reader's index mismatch, a parse error) goes to pyHanko's own code unchanged,
so its error handling and strictness stay exactly as they were.

`install()` is idempotent; signoff.records.signing calls it on import.
"""

from io import BytesIO

from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader

_ORIGINAL = PdfFileReader._get_object_from_stream
_CACHE = "_readiness_object_streams"


def _index(reader: PdfFileReader, stream_number: int) -> tuple[bytes, int, dict] | None:
    """(decoded data, /First, {object number: (position, offset)}) of one object stream,
    read once per reader; None when its header cannot be indexed."""
    cache = reader.__dict__.setdefault(_CACHE, {})
    if stream_number in cache:
        return cache[stream_number]
    entry = None
    stream = generic.Reference(stream_number, 0, reader).get_object()
    if isinstance(stream, generic.StreamObject) and stream.get("/Type") == "/ObjStm":
        data = stream.read_data(DecodePurpose.OBJECT_STREAM)
        header = BytesIO(data)
        offsets: dict[int, tuple[int, int]] = {}
        try:
            for position in range(int(stream["/N"])):
                misc.read_non_whitespace(header, seek_back=True)
                number = generic.NumberObject.read_from_stream(header)
                misc.read_non_whitespace(header, seek_back=True)
                offset = generic.NumberObject.read_from_stream(header)
                # The first entry for a number wins, as in pyHanko's own scan.
                offsets.setdefault(int(number), (position, int(offset)))
            entry = (data, int(stream["/First"]), offsets)
        except (ValueError, KeyError, misc.PdfReadError):
            entry = None
    cache[stream_number] = entry
    return entry


def _get_object_from_stream(self, idnum, stmnum, idx):
    entry = _index(self, stmnum)
    if entry is None:
        return _ORIGINAL(self, idnum, stmnum, idx)
    data, first, offsets = entry
    found = offsets.get(idnum)
    if found is None or (self.strict and found[0] != idx):
        return _ORIGINAL(self, idnum, stmnum, idx)
    source = BytesIO(data)
    source.seek(first + found[1])
    try:
        obj = generic.read_object(source, generic.Reference(idnum, 0, self))
    except (misc.PdfStreamError, misc.PdfReadError):
        return _ORIGINAL(self, idnum, stmnum, idx)
    if isinstance(obj, (generic.StreamObject, generic.IndirectObject)):
        return _ORIGINAL(self, idnum, stmnum, idx)
    return obj


def install() -> None:
    PdfFileReader._get_object_from_stream = _get_object_from_stream
