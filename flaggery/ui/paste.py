"""Subject ids pasted or uploaded into a dashboard form: one per line, or separated by commas
or spaces; for new subjects a line may give a weight after the id ("42,3" or "42 3")."""

from __future__ import annotations

import re

from starlette.datastructures import FormData, UploadFile

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.errors import ValidationError
from flaggery.store.validation import MAX_WEIGHT, MIN_SUBJECT_ID

__all__ = ["MAX_UPLOAD_BYTES", "pasted_ids", "pasted_subjects", "pasted_text"]

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
_SEPARATORS = re.compile(r"[\s,;]+")


def pasted_text(form: FormData, field: str) -> str:
    """The field's text followed by the uploaded file's (``file``), if any: one text, so the
    confirmation page carries both in one hidden field."""
    text = form.get(field)
    parts = [text if isinstance(text, str) else ""]
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = upload.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValidationError(f"The file is over {MAX_UPLOAD_BYTES // 2**20} MiB: split it.")
        try:
            parts.append(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text: give one id a line.") from None
    return "\n".join(part for part in parts if part.strip())


def _id(token: str, line: int) -> int:
    try:
        return parse_decimal(token, "A subject id", low=MIN_SUBJECT_ID)
    except DecimalTextError as error:
        raise ValidationError(f"Line {line}: {error}") from None


def pasted_ids(text: str) -> list[int]:
    """Every id in ``text`` (any separators), in order. ValidationError names the bad one."""
    ids = []
    for number, line in enumerate(text.splitlines(), 1):
        ids += [_id(token, number) for token in _SEPARATORS.split(line.strip()) if token]
    if not ids:
        raise ValidationError("Paste or upload at least one subject id.")
    return ids


def pasted_subjects(text: str) -> list[tuple[int, int]]:
    """(id, weight) per line: "ID" (weight 1) or "ID,WEIGHT"; ValidationError names the line."""
    subjects = []
    for number, line in enumerate(text.splitlines(), 1):
        tokens = [token for token in _SEPARATORS.split(line.strip()) if token]
        if not tokens:
            continue
        if len(tokens) > 2:
            raise ValidationError(f"Line {number}: give an id, or an id and a weight.")
        weight = 1
        if len(tokens) == 2:
            try:
                weight = parse_decimal(tokens[1], "A weight", low=1, high=MAX_WEIGHT)
            except DecimalTextError as error:
                raise ValidationError(f"Line {number}: {error}") from None
        subjects.append((_id(tokens[0], number), weight))
    if not subjects:
        raise ValidationError("Paste or upload at least one subject id.")
    return subjects
