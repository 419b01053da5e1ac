"""Ship-to address -> region. The most specific match wins:
postal prefix (longest first) > province > country; no match -> the shop's
default region, else None (the caller raises an exception for a human)."""
from __future__ import annotations

from typing import Iterable, Mapping

from connector.domain.model import Address, Region


def normalise_postcode(postcode: str | None) -> str:
    """Upper case, no spaces or dashes: "sw1a 1aa" -> "SW1A1AA", "10001-1234" -> "100011234"."""
    if not postcode:
        return ""
    return "".join(ch for ch in postcode.upper() if ch.isalnum())


def normalise_province(country: str, province: str | None) -> str:
    """Platforms send "NY" (Shopify province_code, Woo state); config uses "US-NY"."""
    if not province:
        return ""
    province = province.strip().upper()
    if "-" in province:
        return province
    return f"{country}-{province}"


class RegionIndex:
    """Precomputed lookup tables for one shop's regions (built once, used per order)."""

    def __init__(self, regions: Iterable[Region]):
        self._by_prefix: dict[str, dict[str, str]] = {}  # country -> prefix -> region id
        self._by_province: dict[str, str] = {}
        self._by_country: dict[str, str] = {}
        for region in regions:
            for entry in region.postal_prefixes:
                country, _, prefix = entry.partition(":")
                self._by_prefix.setdefault(country, {})[normalise_postcode(prefix)] = region.id
            for province in region.provinces:
                self._by_province[province] = region.id
            for country in region.countries:
                self._by_country[country] = region.id
        self._prefix_lengths = {
            country: sorted({len(p) for p in prefixes}, reverse=True)
            for country, prefixes in self._by_prefix.items()
        }

    def resolve(self, address: Address | None, default_region: str | None = None) -> str | None:
        if address is None or not address.country:
            return default_region
        country = address.country.strip().upper()
        postcode = normalise_postcode(address.postcode)
        if postcode and country in self._by_prefix:
            prefixes = self._by_prefix[country]
            for length in self._prefix_lengths[country]:
                region_id = prefixes.get(postcode[:length])
                if region_id is not None:
                    return region_id
        province = normalise_province(country, address.province)
        if province in self._by_province:
            return self._by_province[province]
        return self._by_country.get(country, default_region)


def resolve_region(
    address: Address | None, regions: Mapping[str, Region], default_region: str | None = None
) -> str | None:
    return RegionIndex(regions.values()).resolve(address, default_region)
