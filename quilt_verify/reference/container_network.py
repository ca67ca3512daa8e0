"""A container's network view and its injected routes (stored per container)."""

from __future__ import annotations

import ipaddress
import sqlite3
from typing import Any

from .containers import IP_POOL
from .errors import ApiError, invalid
from .validation import Body

GATEWAY = str(IP_POOL.network_address + 1)


def parse_destination(value: Any, field: str = "destination") -> str:
    """A strict CIDR (`a.b.c.d/n` or `x::/n`, host bits zero), normalized; 400 otherwise."""
    if not isinstance(value, str):
        raise invalid(field, "must be a CIDR string", ["CIDR such as 10.0.0.0/8"], type(value).__name__,
                      status=422)
    text = value.strip()
    try:
        if "/" not in text or text != value:
            raise ValueError("not a CIDR")
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise invalid(field, "must be a CIDR with zero host bits",
                      ["IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/64"], value[:64]) from None
    return str(network)


def destination_of(data: Any, query: dict[str, str]) -> str:
    """The route to delete: JSON body `{destination}`, else query `?destination=`."""
    if data is not None:
        body = Body(data)
        if body.raw("destination") is not None:
            return parse_destination(body.raw("destination"))
    if "destination" in query:
        return parse_destination(query["destination"])
    raise invalid("destination", "is required (JSON body or ?destination=)", status=422)


def routes(db: sqlite3.Connection, container_id: str) -> list[dict[str, str]]:
    rows = db.execute(
        "SELECT destination FROM container_routes WHERE container_id = ? ORDER BY seq",
        (container_id,),
    )
    return [{"destination": row["destination"]} for row in rows]


def view(db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    return {
        "container_id": row["id"],
        "ip_address": row["ip_address"],
        "network": str(IP_POOL),
        "gateway": GATEWAY,
        "routes": routes(db, row["id"]),
    }


def add_route(db: sqlite3.Connection, container_id: str, destination: str, now: float) -> None:
    try:
        db.execute(
            "INSERT INTO container_routes (container_id, destination, created_at) VALUES (?, ?, ?)",
            (container_id, destination, now),
        )
    except sqlite3.IntegrityError:
        raise ApiError(409, "CONFLICT", f"route {destination} already exists",
                       {"field": "destination", "received": destination}) from None


def remove_route(db: sqlite3.Connection, container_id: str, destination: str) -> None:
    removed = db.execute(
        "DELETE FROM container_routes WHERE container_id = ? AND destination = ?",
        (container_id, destination),
    ).rowcount
    if not removed:
        raise ApiError(404, "NOT_FOUND", f"route {destination} not found",
                       {"resource": "route", "id": destination})
