"""Names, keys and references as Kubernetes and the container runtimes define them.

A job's labels become pod labels, its image goes to the kubelet, its env names to
``execve`` (and to a container's env); Hodei checks each of them here, once, before the
job is stored, so what it accepts is exactly what the rest of the path accepts and bad
input is refused with the rule instead of failing later on the API server or the node.

The rules are those of Kubernetes' ``k8s.io/apimachinery/pkg/util/validation``
(``IsQualifiedName``, ``IsValidLabelValue``, ``IsDNS1123Label``, ``IsDNS1123Subdomain``,
``IsEnvVarName``) and of the OCI distribution reference grammar for images. Every
pattern is matched whole (``fullmatch``): a trailing newline never slips through.
Each ``check_*`` function returns its argument or raises :class:`NameRuleError`, whose
text says what is accepted.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CONFIG_KEY_RULE",
    "DNS_LABEL_RULE",
    "DNS_SUBDOMAIN_RULE",
    "ENV_NAME_RULE",
    "IMAGE_RULE",
    "LABEL_KEY_RULE",
    "LABEL_VALUE_RULE",
    "NameRuleError",
    "check_config_key",
    "check_dns_label",
    "check_dns_subdomain",
    "check_env_name",
    "check_image",
    "check_label_key",
    "check_label_value",
]


class NameRuleError(ValueError):
    """A name that breaks its rule; the text says what is accepted."""


_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_QUALIFIED_NAME: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_NAME: Final = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_CONFIG_KEY: Final = re.compile(r"[-._a-zA-Z0-9]+")

# The OCI distribution reference grammar (github.com/distribution/reference, regexp.go).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE: Final = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)
_IMAGE_NAME_MAX: Final = 255
# Name, ":" tag, "@" algorithm ":" hex: checked before the pattern so no input can make
# the matcher backtrack for long.
_IMAGE_MAX: Final = 1024

DNS_LABEL_MAX: Final = 63
DNS_SUBDOMAIN_MAX: Final = 253
LABEL_NAME_MAX: Final = 63

DNS_LABEL_RULE: Final = (
    "a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
    "starting and ending alphanumeric, e.g. hodei-workers"
)
DNS_SUBDOMAIN_RULE: Final = (
    "a DNS-1123 subdomain: at most 253 characters, dot-separated parts of lowercase "
    "letters, digits and '-', each starting and ending alphanumeric, e.g. hodei.io"
)
LABEL_KEY_RULE: Final = (
    "a Kubernetes label key: an optional DNS-1123 subdomain prefix and '/', then a name "
    "of at most 63 characters of [A-Za-z0-9-_.] starting and ending alphanumeric, "
    "e.g. team or example.com/team"
)
LABEL_VALUE_RULE: Final = (
    "a Kubernetes label value: empty, or at most 63 characters of [A-Za-z0-9-_.] "
    "starting and ending alphanumeric"
)
ENV_NAME_RULE: Final = (
    "an environment variable name as Kubernetes accepts it: letters, digits, '_', '-' "
    "and '.', not starting with a digit, not '.' or starting with '..', e.g. MY_VAR"
)
CONFIG_KEY_RULE: Final = (
    "a ConfigMap or Secret key: at most 253 characters of [-._a-zA-Z0-9], "
    "not '.' or starting with '..', e.g. password or tls.crt"
)
IMAGE_RULE: Final = (
    "an image reference: [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST] with a lowercase NAME "
    "of at most 255 characters, e.g. python:3.12 or registry.example.com/team/tool@sha256:…"
)


def check_dns_label(text: str) -> str:
    """Kubernetes ``IsDNS1123Label`` (namespace names, for instance)."""
    if len(text) > DNS_LABEL_MAX or not _DNS_LABEL.fullmatch(text):
        raise NameRuleError(f"accepted: {DNS_LABEL_RULE}")
    return text


def check_dns_subdomain(text: str) -> str:
    """Kubernetes ``IsDNS1123Subdomain`` (most object names, label key prefixes)."""
    if len(text) > DNS_SUBDOMAIN_MAX or not _DNS_SUBDOMAIN.fullmatch(text):
        raise NameRuleError(f"accepted: {DNS_SUBDOMAIN_RULE}")
    return text


def check_label_key(key: str) -> str:
    """Kubernetes ``IsQualifiedName``: ``[prefix/]name``, the prefix a DNS-1123 subdomain."""
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2 and parts[0]:
        prefix, name = parts
        if len(prefix) > DNS_SUBDOMAIN_MAX or not _DNS_SUBDOMAIN.fullmatch(prefix):
            raise NameRuleError(f"accepted: {LABEL_KEY_RULE}")
    else:
        raise NameRuleError(f"accepted: {LABEL_KEY_RULE}")
    if not name or len(name) > LABEL_NAME_MAX or not _QUALIFIED_NAME.fullmatch(name):
        raise NameRuleError(f"accepted: {LABEL_KEY_RULE}")
    return key


def check_label_value(value: str) -> str:
    """Kubernetes ``IsValidLabelValue``."""
    if len(value) > LABEL_NAME_MAX or (value and not _QUALIFIED_NAME.fullmatch(value)):
        raise NameRuleError(f"accepted: {LABEL_VALUE_RULE}")
    return value


def check_env_name(name: str) -> str:
    """Kubernetes ``IsEnvVarName`` (which ``execve`` accepts too: no '=', no NUL)."""
    if not _ENV_NAME.fullmatch(name) or name in (".", "..") or name.startswith(".."):
        raise NameRuleError(f"accepted: {ENV_NAME_RULE}")
    return name


def check_config_key(key: str) -> str:
    """Kubernetes ``IsConfigMapKey`` (the keys of ConfigMaps and Secrets)."""
    if (
        len(key) > DNS_SUBDOMAIN_MAX
        or not _CONFIG_KEY.fullmatch(key)
        or key in (".", "..")
        or key.startswith("..")
    ):
        raise NameRuleError(f"accepted: {CONFIG_KEY_RULE}")
    return key


def check_image(reference: str) -> str:
    """An OCI image reference as container runtimes parse it."""
    match = _IMAGE.fullmatch(reference) if len(reference) <= _IMAGE_MAX else None
    if match is None or len(match["name"]) > _IMAGE_NAME_MAX:
        raise NameRuleError(f"accepted: {IMAGE_RULE}")
    return reference
