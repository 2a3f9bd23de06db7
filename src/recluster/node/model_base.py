"""The two kinds of model the node uses: what a client sends (strict: unknown fields and wrong types
refused, text must be Unicode) and what the configuration store keeps (tolerant: a field a newer
version added is ignored by an older one). Pure."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _unicode_text(cls, value: object) -> object:
        # JSON may carry an unpaired UTF-16 surrogate ("\ud800"); such a string cannot be stored
        # (the state is UTF-8 JSON), so it is refused here, naming the field
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise ValueError("must be Unicode text (it holds an unpaired surrogate)") from None
        return value


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
