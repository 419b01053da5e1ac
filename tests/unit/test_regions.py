from __future__ import annotations

import pytest

from connector.domain.model import Address, Region
from connector.domain.regions import RegionIndex, normalise_postcode, resolve_region

REGIONS = {
    "nyc": Region("nyc", "NYC", 1, postal_prefixes=frozenset({"US:100", "US:112"})),
    "nyc-core": Region("nyc-core", "Lower Manhattan", 0, postal_prefixes=frozenset({"US:1001"})),
    "ny": Region("ny", "New York State", 2, provinces=frozenset({"US-NY"})),
    "us": Region("us", "US", 5, countries=frozenset({"US"})),
    "london": Region("london", "London", 1, postal_prefixes=frozenset({"GB:E1", "GB:SW1A"})),
    "uk": Region("uk", "UK", 2, countries=frozenset({"GB"})),
}


@pytest.mark.parametrize(
    "address, expected",
    [
        (Address("US", "NY", "10012"), "nyc-core"),  # longest prefix wins
        (Address("US", "NY", "10099"), "nyc"),  # prefix beats province
        (Address("US", "NY", "11211-4401"), "nyc"),
        (Address("US", "NY", "14604"), "ny"),  # province beats country
        (Address("us", "ny", "14604"), "ny"),  # case-insensitive
        (Address("US", "US-NY", None), "ny"),  # already ISO 3166-2
        (Address("US", "TX", "78704"), "us"),
        (Address("US", None, None), "us"),
        (Address("GB", None, "sw1a 1aa"), "london"),  # spaces and case normalised
        (Address("GB", None, "E16AN"), "london"),
        (Address("GB", None, "BS1 4DJ"), "uk"),
        (Address("DE", "BE", "10115"), None),  # "10115" is not a US prefix in Germany
    ],
)
def test_most_specific_match_wins(address, expected):
    assert resolve_region(address, REGIONS) == expected


def test_no_match_falls_back_to_the_default_region():
    index = RegionIndex(REGIONS.values())
    assert index.resolve(Address("FR", None, "75011"), default_region="us") == "us"
    assert index.resolve(None, default_region="us") == "us"
    assert index.resolve(Address(None, None, None)) is None


def test_postcode_normalisation():
    assert normalise_postcode(" sw1a-1aa ") == "SW1A1AA"
    assert normalise_postcode(None) == ""
