"""Subject ids pasted or uploaded into a dashboard form: one per line, or separated by commas
or spaces; for new subjects a line may give a weight after the id ("42,3" or "42 3"), and
after the weight the targeting key the visitor had before signing in ("42,1,visitor-7f3a"), so
the subject keeps that key's variants (AsyncFlaggery.add_subjects_like_keys)."""

from __future__ import annotations

import re

from starlette.datastructures import FormData, UploadFile

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.engine.targeting import check_targeting_key
from flaggery.errors import InvalidTargetingKey, ValidationError
from flaggery.store.validation import MAX_WEIGHT, MIN_SUBJECT_ID

__all__ = [
    "MAX_UPLOAD_BYTES",
    "PastedSubject",
    "not_members",
    "pasted_ids",
    "pasted_members",
    "pasted_subjects",
    "pasted_text",
]

PastedSubject = tuple[int, int, str | None]
"""(id, weight, targeting key or None)."""

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
    """Every id in ``text`` (any separators), in order. ValidationError names the bad one,
    saying so when it looks like a targeting key (a group's members are subjects)."""
    ids, keys = pasted_members(text)
    if keys:
        raise ValidationError(not_members(keys))
    if not ids:
        raise ValidationError("Paste or upload at least one subject id.")
    return ids


def pasted_members(text: str) -> tuple[list[int], list[str]]:
    """The subject ids in ``text`` and, apart, the tokens that are not ids (targeting keys,
    or typos), each in order."""
    ids, keys = [], []
    for number, line in enumerate(text.splitlines(), 1):
        for token in _SEPARATORS.split(line.strip()):
            if token.lstrip("-").isdecimal():  # a number, if perhaps out of range: an id
                ids.append(_id(token, number))
            elif token:
                keys.append(token)
    return ids, keys


def not_members(keys: list[str]) -> str:
    """Why pasted `keys` (tokens that are not ids) cannot be a group's members."""
    shown = ", ".join(repr(key) for key in keys[:3])
    return (
        f"{shown}{' and more' if len(keys) > 3 else ''}: not subject ids. A group's members "
        "are registered subjects, not targeting keys: register a signed-in visitor first on "
        "Subjects (a line ID,WEIGHT,KEY keeps its key's variants), or give the group a rule."
    )


def pasted_subjects(text: str) -> list[PastedSubject]:
    """(id, weight, key) per line: "ID" (weight 1), "ID,WEIGHT", or "ID,WEIGHT,KEY" (KEY: the
    rest of the line); ValidationError names the line."""
    subjects = []
    for number, line in enumerate(text.splitlines(), 1):
        tokens = [token for token in _SEPARATORS.split(line.strip(), maxsplit=2) if token]
        if tokens:
            subjects.append(_subject(tokens, number))
    if not subjects:
        raise ValidationError("Paste or upload at least one subject id.")
    return subjects


def _subject(tokens: list[str], line: int) -> PastedSubject:
    weight, key = 1, None
    if len(tokens) > 1:
        try:
            weight = parse_decimal(tokens[1], "A weight", low=1, high=MAX_WEIGHT)
        except DecimalTextError as error:
            raise ValidationError(f"Line {line}: {error} (give ID, WEIGHT, KEY)") from None
    if len(tokens) > 2:
        try:
            key = check_targeting_key(tokens[2].strip())
        except InvalidTargetingKey as error:
            raise ValidationError(f"Line {line}: {error.message}") from None
    return _id(tokens[0], line), weight, key
