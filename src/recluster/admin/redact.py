"""What keeps secrets out of everything the admin CLI writes (the support bundle of `report`). Pure.

Two layers, both applied to every file of a bundle:

- by field (`redact_fields`): the value of a field whose name says it holds a secret
  (`authentication_redis_pass`, `password`, `token`, `...private_key`), and the `value` of an
  environment variable so named, whatever it is, even a short one;
- by value (`Scrubber`): every value of the namespace's Secrets (base64-decoded) wherever it appears in
  a text, also as JSON writes it (escaped) and base64-encoded, and each long line of a multi-line
  value (a PEM key's lines). Values shorter than MIN_SCRUBBED characters are not looked for (ports,
  `true`: they would match by chance and carry no secret); a password field of any length is still
  caught by field.

A scrubbed occurrence becomes a marker whose first and last characters appear in no secret, so no
secret can be formed across a marker and the text beside it: what comes out holds no secret in any
of the forms above (tests/unit/admin/test_admin_redact.py checks this with hypothesis)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

MIN_SCRUBBED = 6  # values this long or longer are scrubbed wherever they appear
MIN_LINE = 16  # a line of a multi-line secret this long is scrubbed on its own too
MARKERS = ("<redacted>", "[redacted]", "{redacted}", "(redacted)", "\u00abredacted\u00bb")
# field names whose value is a secret (matched against the field's name, case-insensitively, at its end)
SECRET_FIELD = re.compile(
    r"(?i)(pass|passwd|password|passphrase|secret|token|private_?key|api_?key|auth_?key|credentials?)$"
)


def secret_field(name: str) -> bool:
    """Whether a field of this name holds a secret (its value is redacted, whatever it is)."""
    return bool(SECRET_FIELD.search(name.replace("-", "_")))


def redact_fields(value: Any, marker: str = MARKERS[0]) -> Any:
    """A copy of a JSON-like value with every secret field's scalar value replaced by `marker`, and the
    `value` of every `{"name": <secret-named>, "value": ...}` (an environment variable) too."""
    if isinstance(value, dict):
        envlike = isinstance(value.get("name"), str) and secret_field(value["name"])
        out: dict[Any, Any] = {}
        for key, item in value.items():
            hidden = (isinstance(key, str) and secret_field(key)) or (envlike and key == "value")
            if hidden and item not in (None, "", [], {}) and not isinstance(item, bool | dict | list):
                out[key] = marker
            else:
                out[key] = redact_fields(item, marker)
        return out
    if isinstance(value, list):
        return [redact_fields(item, marker) for item in value]
    return value


def secret_forms(value: str) -> set[str]:
    """The forms in which a secret value may appear in a text: itself, JSON-escaped, base64-encoded,
    and each of its lines of MIN_LINE characters or more."""
    forms = {value, json.dumps(value)[1:-1], base64.b64encode(value.encode()).decode()}
    forms.update(line.strip() for line in value.splitlines() if len(line.strip()) >= MIN_LINE)
    return {form for form in forms if len(form) >= MIN_SCRUBBED}


def secret_data_values(secrets: Iterable[dict[str, Any]]) -> list[str]:
    """Every value of these Secret objects (`data` base64-decoded, `stringData` as is)."""
    values: list[str] = []
    for secret in secrets:
        for encoded in (secret.get("data") or {}).values():
            try:
                values.append(base64.b64decode(encoded).decode(errors="replace"))
            except (ValueError, TypeError):
                values.append(str(encoded))
        values.extend(str(v) for v in (secret.get("stringData") or {}).values())
    return values


def secret_listing(secret: dict[str, Any]) -> dict[str, Any]:
    """What a bundle says of a Secret: its name, type, labels, owners and the names of its keys."""
    meta = secret.get("metadata") or {}
    keys = sorted({*(secret.get("data") or {}), *(secret.get("stringData") or {})})
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "type": secret.get("type"),
        "keys": keys,
        "labels": meta.get("labels") or {},
        "ownerReferences": [
            {"kind": o.get("kind"), "name": o.get("name")} for o in meta.get("ownerReferences") or []
        ],
        "creationTimestamp": meta.get("creationTimestamp"),
    }


class Scrubber:
    """Removes every form of the given secret values from texts (see the module's docstring)."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) >= MIN_SCRUBBED:
                forms |= secret_forms(value)
        self.forms = sorted(forms, key=len, reverse=True)
        self.marker = choose_marker(self.forms)

    def text(self, text: str) -> str:
        if not self.forms:
            return text
        spans = sorted(_occurrences(text, self.forms))
        if not spans:
            return text
        out: list[str] = []
        position = 0
        start, end = spans[0]
        for s, e in spans[1:]:
            if s <= end:  # overlapping or adjacent: one marker for both
                end = max(end, e)
                continue
            out += [text[position:start], self.marker]
            position, (start, end) = end, (s, e)
        out += [text[position:start], self.marker, text[end:]]
        return "".join(out)

    def document(self, value: Any) -> str:
        """A JSON document of `value`, its secret fields redacted and every secret value scrubbed.
        Keys, strings and numbers are scrubbed before the JSON is written, so a secret inside one
        (the digits of a number: '000000' in 1000000) becomes a marker string and the document stays
        JSON; the text is then scrubbed again for a secret that only the writing forms (one spanning
        JSON's own quotes or commas), which comes out even at the cost of the syntax."""
        text = json.dumps(self._scrubbed(redact_fields(value, self.marker)), indent=2, sort_keys=False,
                          default=str)
        return self.text(text) + "\n"

    def _scrubbed(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self.text(str(k)): self._scrubbed(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrubbed(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            written = json.dumps(value)
            scrubbed = self.text(written)
            return value if scrubbed == written else scrubbed
        return value


def _occurrences(text: str, forms: list[str]) -> Iterable[tuple[int, int]]:
    for form in forms:
        index = text.find(form)
        while index != -1:
            yield index, index + len(form)
            index = text.find(form, index + 1)


def choose_marker(forms: Iterable[str]) -> str:
    """A marker no secret form overlaps: its first and last characters appear in none, and none is
    inside it."""
    forms = list(forms)
    used = set("".join(forms))
    for marker in MARKERS:
        if marker[0] not in used and marker[-1] not in used and not any(f in marker for f in forms):
            return marker
    # every candidate clashes: a marker made only of characters no secret holds (there are always some)
    free = (chr(c) for c in range(0x2500, 0x110000) if chr(c) not in used and chr(c).isprintable())
    return "".join(next(free) for _ in range(3))
