"""Reading an upload's multipart form under its competition's size cap (API and pages).

The body-size middleware (:mod:`harness.server.limits`) only knows the outer bound of
every competition; the exact cap, ``max_upload_mb``, is known once the route has checked
the token and found the competition, so it is enforced here while the form streams in.
"""

from __future__ import annotations

from typing import NamedTuple

from fastapi import Request
from starlette.datastructures import UploadFile

from ..errors import SubmissionError, TooLargeError
from ..schemas import UploadForm
from .limits import MULTIPART_SLACK

FILE_FIELD, MESSAGE_FIELD = tuple(UploadForm.model_fields)     # the documented form fields


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
        The form holds no file (HTTP 400).
    """
    limit = cap + MULTIPART_SLACK
    too_large = TooLargeError(f"the upload is over this competition's limit of "
                              f"{cap / 2**20:g} MB (max_upload_mb); submit the plain CSV with "
                              "only the id and target columns")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    seen = 0

    async def counting_receive():
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large
        return message

    form = await Request(request.scope, counting_receive).form(max_files=1, max_fields=4)
    upload = form.get(FILE_FIELD)
    if not isinstance(upload, UploadFile):
        await form.close()
        raise SubmissionError(f"no file in the upload: send multipart/form-data with the CSV "
                              f"in the field `{FILE_FIELD}` (and an optional `{MESSAGE_FIELD}`), "
                              "e.g. `harness submit SLUG -f predictions.csv -m \"first try\"`")
    data = await upload.read()
    await form.close()
    if len(data) > cap:
        raise too_large
    message = form.get(MESSAGE_FIELD)
    return Upload(upload.filename or "submission.csv", data,
                  message if isinstance(message, str) else "",
                  {f: form[f] for f in fields if isinstance(form.get(f), str)})
