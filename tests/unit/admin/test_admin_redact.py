"""Nothing the admin CLI writes holds a secret (recluster.admin.redact): every value of the Secrets,
in any of the forms it may take in a text (itself, JSON-escaped, base64, a long line of it), is gone
from any text and any JSON document, wherever it sat (hypothesis); fields that hold a secret are
redacted whatever their value; what is not secret is kept."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recluster.admin.redact import (
    MIN_SCRUBBED,
    Scrubber,
    choose_marker,
    redact_fields,
    secret_data_values,
    secret_field,
    secret_forms,
    secret_listing,
)

pytestmark = pytest.mark.unit

secret_text = st.text(min_size=MIN_SCRUBBED, max_size=40)
printable_secret = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=MIN_SCRUBBED,
                           max_size=30)


def leaks(output: str, secrets: list[str]) -> list[str]:
    return [form for value in secrets for form in secret_forms(value) if form in output]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(secrets=st.lists(secret_text, min_size=1, max_size=4),
       pieces=st.lists(st.text(max_size=30), max_size=6), data=st.data())
def test_no_form_of_any_secret_survives_in_a_text(secrets: list[str], pieces: list[str], data: Any) -> None:
    """Secrets (raw, JSON-escaped, base64) spliced anywhere into any text, overlapping or touching."""
    parts: list[str] = []
    for piece in pieces:
        parts.append(piece)
        secret = data.draw(st.sampled_from(secrets))
        form = data.draw(st.sampled_from(sorted(secret_forms(secret))))
        cut = data.draw(st.integers(0, len(form)))  # sometimes only a part, then the rest later
        parts += [form[:cut], form[cut:]]
    text = "".join(parts)
    out = Scrubber(secrets).text(text)
    assert leaks(out, secrets) == []


@settings(max_examples=200)
@given(secrets=st.lists(printable_secret, min_size=1, max_size=3),
       doc=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                        lambda children: st.lists(children, max_size=4)
                        | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12),
       data=st.data())
def test_no_secret_survives_in_a_json_document(secrets: list[str], doc: Any, data: Any) -> None:
    """A document with secrets as values, inside strings and as keys: none left in its JSON."""
    secret = data.draw(st.sampled_from(secrets))
    planted = {"a": doc, secret: [f"x{secret}y", {"authentication_redis_pass": secret}],
               "env": [{"name": "REDIS_PASSWORD", "value": secret[:3]}], "note": f"pass={secret}"}
    out = Scrubber(secrets).document(planted)
    assert leaks(out, secrets) == []
    if not set("".join(secrets)) & set('"\\{}[],: '):  # no secret can span JSON's own syntax
        json.loads(out)  # still JSON


@example(number=1000000, secret="000000")  # found by hypothesis: the digits of a number
@given(number=st.integers(), secret=st.text("0123456789", min_size=MIN_SCRUBBED, max_size=8))
def test_a_secret_in_the_digits_of_a_number_leaves_the_document_json(number: int, secret: str) -> None:
    out = Scrubber([secret]).document({"n": number, "m": [number, -number]})
    assert leaks(out, [secret]) == []
    json.loads(out)


@given(secrets=st.lists(st.text(min_size=1, max_size=12), max_size=6))
def test_the_marker_meets_no_secret(secrets: list[str]) -> None:
    forms = [f for s in secrets for f in secret_forms(s)]
    marker = choose_marker(forms)
    used = set("".join(forms))
    assert marker[0] not in used and marker[-1] not in used
    assert not any(form in marker for form in forms)


def test_secret_fields_are_redacted_whatever_their_length_and_references_are_kept() -> None:
    pod = {
        "env": [
            {"name": "REDIS_PASSWORD", "value": "ab"},
            {"name": "LOG_LEVEL", "value": "debug"},
            {"name": "PASSWORD_FROM_SECRET",
             "valueFrom": {"secretKeyRef": {"name": "rec", "key": "password"}}},
        ],
        "bdb": {"authentication_redis_pass": "x", "port": 12000, "name": "db"},
        "automountServiceAccountToken": True,
        "volumes": [{"secret": {"secretName": "rec-tls"}}],
    }
    out = redact_fields(pod)
    assert out["env"][0]["value"] == "<redacted>"
    assert out["env"][1]["value"] == "debug"
    assert out["env"][2]["valueFrom"] == {"secretKeyRef": {"name": "rec", "key": "password"}}
    assert out["bdb"] == {"authentication_redis_pass": "<redacted>", "port": 12000, "name": "db"}
    assert out["automountServiceAccountToken"] is True
    assert out["volumes"] == [{"secret": {"secretName": "rec-tls"}}]
    assert pod["env"][0]["value"] == "ab"  # a copy: the input is untouched


@pytest.mark.parametrize(("name", "secret"), [
    ("authentication_redis_pass", True), ("password", True), ("REDIS_PASSWORD", True), ("token", True),
    ("bearerToken", True), ("tls-private-key", True), ("client_secret", True), ("secretName", False),
    ("key", False), ("port", False), ("username", False), ("passive", False),
])
def test_which_fields_hold_secrets(name: str, secret: bool) -> None:
    assert secret_field(name) is secret


def test_short_values_are_not_scrubbed_and_the_rest_of_the_text_is_kept() -> None:
    key = "line one of a key that is long\nline two of a key that is long"
    scrubber = Scrubber(["12000", "s3cr3t-value", key])
    out = scrubber.text("port 12000, password s3cr3t-value; key line two of a key that is long; b64 "
                        + base64.b64encode(b"s3cr3t-value").decode())
    assert out == "port 12000, password <redacted>; key <redacted>; b64 <redacted>"


def test_a_secret_inside_the_usual_marker_gets_another_marker() -> None:
    scrubber = Scrubber(["redacted", "hunter22<"])
    out = scrubber.text("pw redacted hunter22<")
    assert scrubber.marker != "<redacted>" and "redacted" not in out and "hunter22" not in out


def test_secrets_are_listed_by_name_and_keys_only() -> None:
    secret = {"metadata": {"name": "rec", "namespace": "ns", "labels": {"a": "b"},
                           "ownerReferences": [{"kind": "RedisEnterpriseCluster", "name": "rec",
                                                "uid": "u"}]},
              "type": "Opaque", "data": {"password": base64.b64encode(b"hunter22").decode()},
              "stringData": {"username": "admin@example.com"}}
    listing = secret_listing(secret)
    assert listing["keys"] == ["password", "username"]
    assert "hunter22" not in json.dumps(listing) and "aHVudGVy" not in json.dumps(listing)
    assert secret_data_values([secret]) == ["hunter22", "admin@example.com"]
