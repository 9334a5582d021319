"""Kubernetes' name rules, checked against a character-by-character reading of
k8s.io/apimachinery/pkg/util/validation (no regular expressions in the oracle)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hodei.domain.names import (
    NameRuleError,
    check_config_key,
    check_dns_label,
    check_dns_subdomain,
    check_env_name,
    check_image,
    check_label_key,
    check_label_value,
)

ALNUM = set(string.ascii_letters + string.digits)
LOWER_ALNUM = set(string.ascii_lowercase + string.digits)


def k8s_dns_label(text: str, *, max_len: int = 63) -> bool:
    """IsDNS1123Label: lowercase alphanumerics and '-', alphanumeric at both ends."""
    return (
        0 < len(text) <= max_len
        and set(text) <= LOWER_ALNUM | {"-"}
        and text[0] in LOWER_ALNUM
        and text[-1] in LOWER_ALNUM
    )


def k8s_dns_subdomain(text: str) -> bool:
    """IsDNS1123Subdomain: at most 253 characters of dot-separated DNS labels."""
    return len(text) <= 253 and all(k8s_dns_label(p, max_len=253) for p in text.split("."))


def k8s_name_part(text: str) -> bool:
    return (
        0 < len(text) <= 63
        and set(text) <= ALNUM | set("-_.")
        and text[0] in ALNUM
        and text[-1] in ALNUM
    )


def k8s_qualified_name(key: str) -> bool:
    """IsQualifiedName: NAME or PREFIX/NAME with PREFIX a DNS-1123 subdomain."""
    parts = key.split("/")
    if len(parts) == 1:
        return k8s_name_part(parts[0])
    if len(parts) == 2:
        return bool(parts[0]) and k8s_dns_subdomain(parts[0]) and k8s_name_part(parts[1])
    return False


def k8s_label_value(value: str) -> bool:
    return value == "" or k8s_name_part(value)


def k8s_env_name(name: str) -> bool:
    """IsEnvVarName: [-._a-zA-Z][-._a-zA-Z0-9]*, and not '.', '..' or '..'-prefixed."""
    head = set(string.ascii_letters + "-._")
    return (
        bool(name)
        and name[0] in head
        and set(name) <= head | set(string.digits)
        and name not in (".", "..")
        and not name.startswith("..")
    )


def accepts(check, text: str) -> bool:
    try:
        check(text)
    except NameRuleError:
        return False
    return True


# Characters that matter to the rules, plus some that must always be refused.
TRICKY = st.text(alphabet="aZ9-_./\n\x00é :", max_size=80)
LONG = st.builds(
    lambda part, n: (part * n)[:300], st.sampled_from(["a", "a.", "a-", "A_"]), st.integers(1, 300)
)


@given(st.one_of(TRICKY, LONG))
def test_label_keys_follow_kubernetes(key: str) -> None:
    assert accepts(check_label_key, key) == k8s_qualified_name(key)


@given(
    st.from_regex(
        r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?){0,3}",
        fullmatch=True,
    ),
    st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True),
)
def test_prefixed_label_keys_within_the_rule_are_accepted(prefix: str, name: str) -> None:
    assert check_label_key(f"{prefix}/{name}") == f"{prefix}/{name}"
    assert check_label_key(name) == name


@given(st.one_of(TRICKY, LONG))
def test_label_values_follow_kubernetes(value: str) -> None:
    assert accepts(check_label_value, value) == k8s_label_value(value)


@given(st.one_of(TRICKY, LONG))
def test_dns_names_follow_kubernetes(text: str) -> None:
    assert accepts(check_dns_subdomain, text) == k8s_dns_subdomain(text)
    assert accepts(check_dns_label, text) == k8s_dns_label(text)


@given(st.one_of(TRICKY, st.text(max_size=20)))
def test_env_names_follow_kubernetes(name: str) -> None:
    assert accepts(check_env_name, name) == k8s_env_name(name)


def k8s_config_key(key: str) -> bool:
    """IsConfigMapKey: at most 253 of [-._a-zA-Z0-9], not '.', '..' nor starting '..'."""
    return (
        0 < len(key) <= 253
        and set(key) <= ALNUM | {"-", "_", "."}
        and key not in (".", "..")
        and not key.startswith("..")
    )


@given(st.one_of(TRICKY, LONG))
def test_config_keys_follow_kubernetes(key: str) -> None:
    assert accepts(check_config_key, key) == k8s_config_key(key)


@pytest.mark.parametrize(
    ("check", "text"),
    [
        (check_label_key, "team\n"),
        (check_label_key, "example.com/team\n"),
        (check_label_value, "blue\n"),
        (check_env_name, "PATH\n"),
        (check_dns_label, "hodei-workers\n"),
        (check_dns_subdomain, "hodei.io\n"),
        (check_image, "python:3.12\n"),
        (check_config_key, "password\n"),
    ],
)
def test_a_trailing_newline_is_refused(check, text: str) -> None:
    with pytest.raises(NameRuleError, match="accepted: "):
        check(text)


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("team", True),
        ("example.com/team", True),
        ("a/b/c", False),  # one '/' at most
        ("/team", False),  # empty prefix
        ("Example.com/team", False),  # prefixes are lowercase
        ("example..com/team", False),  # empty DNS label
        ("-x.com/team", False),
        ("x" * 253 + "/a", True),
        ("x" * 254 + "/a", False),
        ("a" * 63, True),
        ("a" * 64, False),
    ],
)
def test_label_key_examples(key: str, ok: bool) -> None:
    assert accepts(check_label_key, key) is ok


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("hodei:latest", True),
        ("localhost/debian-python:bookworm", True),
        ("registry.example.com:5000/team/tool:1.0", True),
        ("python@sha256:" + "a" * 64, True),
        ("[::1]:5000/x", True),
        ("Python:3", False),  # repository names are lowercase
        ("python:3 ", False),
        (" python", False),
        ("", False),
        ("python:" + "t" * 129, False),  # tags are at most 128 characters
        ("a/" * 130 + "b", False),  # names are at most 255 characters
        ("py\x00thon", False),
    ],
)
def test_image_references(image: str, ok: bool) -> None:
    assert accepts(check_image, image) is ok
