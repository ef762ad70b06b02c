"""Reading an upload's multipart form under its competition's size cap (API and pages).

The body-size middleware (:mod:`harness.server.limits`) only knows the outer bound of
every competition; the exact cap, ``max_upload_mb``, is known once the route has checked
the token and found the competition, so it is enforced here while the form streams in.

The form is parsed by python-multipart straight into memory (the cap bounds it): no
temporary file on disk for a large upload, no thread hop per chunk written.
"""

from __future__ import annotations

from typing import NamedTuple

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import SubmissionError, TooLargeError
from ..schemas import UploadForm
from .limits import MULTIPART_SLACK

FILE_FIELD, MESSAGE_FIELD = tuple(UploadForm.model_fields)     # the documented form fields
MAX_FILES, MAX_FIELDS = 1, 4         # a form holds the file, a message and a baseline's name
TEXT_FIELD_LIMIT = 2**20             # bytes of one text field (a message is cut to 2,000)
HOW_TO = (f"send multipart/form-data with the CSV in the field `{FILE_FIELD}` (and an "
          f"optional `{MESSAGE_FIELD}`), e.g. `harness submit SLUG -f predictions.csv -m "
          "\"first try\"`")


class Upload(NamedTuple):
    """One uploaded prediction file."""

    filename: str
    data: bytes
    message: str
    fields: dict = {}           # the other text fields asked for (a baseline's name)


async def read_upload(request: Request, cap: int, fields: tuple[str, ...] = ()) -> Upload:
    """The upload in ``request``'s multipart form, refusing with 413 once it passes ``cap``.

    Content-Length is checked before anything is read; the bytes are counted while they
    stream in too, since a chunked upload has no length and a header can lie.

    Parameters
    ----------
    request : fastapi.Request
        A request whose body has not been read yet.
    cap : int
        The competition's largest file, in bytes (``rules.max_upload_bytes``).
    fields : tuple of str
        Other text fields of the form to return (in ``Upload.fields``).

    Returns
    -------
    Upload

    Raises
    ------
    TooLargeError
        The body or the file is over the cap (HTTP 413).
    SubmissionError
        The form holds no file, more parts than a form of an upload has, or is not
        multipart/form-data (HTTP 400).
    """
    limit = cap + MULTIPART_SLACK
    too_large = TooLargeError(f"the upload is over this competition's limit of "
                              f"{cap / 2**20:g} MB (max_upload_mb); submit the plain CSV with "
                              "only the id and target columns")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        raise SubmissionError(f"no file in the upload: {HOW_TO}")
    if not options.get(b"boundary"):
        raise SubmissionError("the upload is not valid multipart/form-data: its Content-Type "
                              f"names no boundary; {HOW_TO}")
    form = _Form()
    parser = MultipartParser(options[b"boundary"], form.callbacks())
    seen = 0
    try:
        # the bytes are counted as they stream in: a chunked upload has no length, and a
        # header can lie
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise SubmissionError(f"the upload is not valid multipart/form-data; {HOW_TO}") from None
    upload = form.last(FILE_FIELD)
    if upload is None or upload.filename is None:
        raise SubmissionError(f"no file in the upload: {HOW_TO}")
    data = b"".join(upload.chunks)
    if len(data) > cap:
        raise too_large
    return Upload(upload.filename or "submission.csv", data, form.text(MESSAGE_FIELD) or "",
                  {f: form.text(f) for f in fields if form.text(f) is not None})


class _Part(NamedTuple):
    name: str
    filename: str | None            # None: a text field
    chunks: list[bytes]


class _Form:
    """python-multipart's callbacks, keeping the parts of one form in memory.

    At most :data:`MAX_FILES` file parts and :data:`MAX_FIELDS` text fields, each text
    field at most :data:`TEXT_FIELD_LIMIT` bytes (the body's cap bounds the file).
    """

    def __init__(self):
        self.parts: list[_Part] = []
        self._header: list[bytes] = [b"", b""]         # the header being read: name, value
        self._disposition = b""
        self._size = 0

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_part_data": self._data,
                "on_header_field": self._header_name, "on_header_value": self._header_value,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done}

    def last(self, name: str) -> _Part | None:
        """The last part named ``name`` (as a form's ``get`` answers), or None."""
        return next((p for p in reversed(self.parts) if p.name == name), None)

    def text(self, name: str) -> str | None:
        """The text field ``name`` (the last one), or None (missing, or a file)."""
        part = self.last(name)
        return None if part is None or part.filename is not None else \
            _decode(b"".join(part.chunks))

    def _begin(self) -> None:
        self._disposition, self._size = b"", 0

    def _header_name(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def _header_end(self) -> None:
        name, value = self._header
        if name.lower() == b"content-disposition":
            self._disposition = value
        self._header = [b"", b""]

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise SubmissionError("the upload is not valid multipart/form-data: a part has no "
                                  f"name; {HOW_TO}")
        is_file = b"filename" in options
        if sum((p.filename is not None) == is_file for p in self.parts) >= \
                (MAX_FILES if is_file else MAX_FIELDS):
            raise SubmissionError(
                f"the upload holds more than one file; {HOW_TO}" if is_file else
                f"the upload's form has more than {MAX_FIELDS} fields; {HOW_TO}")
        self.parts.append(_Part(_decode(options[b"name"]),
                                _decode(options[b"filename"]) if is_file else None, []))

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        if part.filename is None:
            self._size += end - start
            if self._size > TEXT_FIELD_LIMIT:
                raise SubmissionError(f"a text field of the upload is over "
                                      f"{TEXT_FIELD_LIMIT / 2**20:g} MB; keep the message short")
        part.chunks.append(data[start:end])


def _decode(raw: bytes) -> str:
    """Form text as UTF-8, else Latin-1 (which decodes any bytes), as browsers send it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
