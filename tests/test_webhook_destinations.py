"""The rules for where webhooks may go: every spelling of an internal address, the allow-list, bad URLs."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from loopline.core.errors import AppError
from loopline.integration.destinations import AddressRefused, WebhookDestinations, refusal

ANYWHERE_PUBLIC = WebhookDestinations()


def refused(url: str, destinations: WebhookDestinations = ANYWHERE_PUBLIC) -> tuple[str, str]:
    with pytest.raises(AppError) as error:
        destinations.checked_url(url)
    return error.value.code, error.value.details["reason"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://017700000001/", "loopback"),
        ("http://127.0.0.1./", "loopback"),
        ("http://127.254.0.9:8000/api/v1/admin/users", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[64:ff9b::7f00:1]/", "loopback"),
        ("http://[2002:7f00:1::1]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://2852039166/", "link-local"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fc00::1]/", "private"),
        ("http://[fd00:ec2::254]/", "private"),
        ("http://100.100.100.200/", "non-public"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "reserved"),
        ("http://localhost/", "internal_name"),
        ("http://LocalHost./", "internal_name"),
        ("http://admin.localhost/", "internal_name"),
        ("http://metadata.google.internal/computeMetadata/v1/", "internal_name"),
    ],
)
def test_internal_addresses_are_refused_in_every_spelling(url: str, reason: str) -> None:
    assert refused(url) == ("address_not_allowed", reason)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:secret@hooks.example.com/", "credentials"),
        ("https://token@hooks.example.com/", "credentials"),
        ("https://hooks.example.com:0/", "port"),
        ("https://hooks.example.com:65536/", "port"),
        ("ftp://hooks.example.com/", "syntax"),
        ("file:///etc/passwd", "syntax"),
        ("//hooks.example.com/", "syntax"),
        ("http://", "syntax"),
        ("http://%31%32%37.0.0.1/", "host"),
        ("http://1.2.3.4.5/", "host"),
        ("http://0x100000000/", "host"),
        ("http://hooks.example.123/", "host"),
        ("http://[fe80::1%25eth0]/", "host"),
        ("http://-hooks.example.com/", "host"),
    ],
)
def test_urls_that_are_not_plain_http_are_invalid(url: str, reason: str) -> None:
    assert refused(url) == ("invalid_url", reason)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/loopline?tenant=7",
        "https://Hooks.Example.COM.:8443/x",
        "https://bücher.example/",
        "http://8.8.8.8/",
        "http://[2001:4860:4860::8888]/",
        "http://[64:ff9b::808:808]/",
        "http://[2002:808:808::1]/",
    ],
)
def test_public_destinations_are_accepted_as_given(url: str) -> None:
    assert ANYWHERE_PUBLIC.checked_url(url) == url


def test_the_allow_list_names_a_host_for_every_port_or_for_one() -> None:
    destinations = WebhookDestinations.from_setting(" 127.0.0.1 , hooks.internal:8443, [::1]:9000 ,")
    for url in ("http://127.0.0.1:5000/", "http://127.1/", "http://2130706433:80/", "http://127.0.0.1./"):
        assert destinations.checked_url(url) == url
    assert destinations.checked_url("https://HOOKS.internal.:8443/") == "https://HOOKS.internal.:8443/"
    assert destinations.checked_url("http://[::1]:9000/") == "http://[::1]:9000/"
    assert refused("http://[::1]:9001/", destinations) == ("address_not_allowed", "loopback")
    assert refused("http://127.0.0.2/", destinations) == ("address_not_allowed", "loopback")
    assert refused("https://user:pw@hooks.internal:8443/", destinations) == ("invalid_url", "credentials")
    destinations.check_addresses("hooks.internal", 8443, [ip_address("10.0.0.5")])
    with pytest.raises(AddressRefused, match=r"hooks\.internal leads to an address that is not public"):
        destinations.check_addresses("hooks.internal", 443, [ip_address("10.0.0.5")])


@pytest.mark.parametrize("entry", ["user@host", "host/path", "host:0", "host:99999", "[::1", "a b"])
def test_a_malformed_allow_list_entry_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ValueError, match="LOOPLINE_WEBHOOK_ALLOWED_HOSTS"):
        WebhookDestinations.from_setting(f"hooks.example.com,{entry}")


def test_every_resolved_address_must_be_public() -> None:
    ANYWHERE_PUBLIC.check_addresses("hooks.example.com", 443, [ip_address("93.184.216.34"), ip_address("2606::1")])
    with pytest.raises(AddressRefused, match=r"\(private\)"):
        ANYWHERE_PUBLIC.check_addresses("hooks.example.com", 443, [ip_address("93.184.216.34"), ip_address("10.9.8.7")])
    assert refusal(ip_address("93.184.216.34")) is None
