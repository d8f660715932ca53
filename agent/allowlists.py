"""Allow-list files (``[connectors.NAME] allow_list``): read, validated, and reloaded when edited.

The file holds one package name per line; ``#`` starts a comment (a whole line or the rest of one); blank
lines are ignored. Each name is checked and normalised by the connector's own rule (``Foo_Bar`` and
``foo-bar`` are one PyPI name), so a listed name matches what requests name. A name the registry would refuse
is an error with the file and line. What a list decides, and how it composes with permissions and policies,
is in ``policy.allowlist``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from trustfence.agent.config import Config, ConfigError
from trustfence.connectors import ConnectorSet
from trustfence.connectors.packages import PackageConnector
from trustfence.policy.allowlist import AllowList

__all__ = ["MAX_BYTES", "describe", "load", "parse", "stamp"]

MAX_BYTES = 16 * 1024 * 1024
"""Largest allow-list file read: a bound on what one edit can cost the daemon."""


def parse(text: str, path: Path, connector: PackageConnector) -> AllowList:
    """The list in ``text`` for ``connector``, as if read from ``path``; ConfigError with the line of the
    first name the registry would refuse."""
    names: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            names.add(connector.normalise_name(entry))
        except ValueError as e:
            raise ConfigError(path, number, f"{e} (connector {connector.name}, type {connector.type_name})") from None
    return AllowList(connector.name, str(path), frozenset(names), connector.download_actions)


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError(path, None, f"allow list cannot be read: {e.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(path, None, f"allow list is larger than {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(path, line, "allow list is not UTF-8 text") from None


def load(cfg: Config, connectors: ConnectorSet) -> dict[str, AllowList]:
    """Connector name -> its allow list, for every connector configured with one; ConfigError naming the
    file and line of the first problem (the caller keeps the lists it was running)."""
    out: dict[str, AllowList] = {}
    for c in cfg.connectors:
        if not c.allow_list:
            continue
        conn = connectors.by_name[c.name]
        assert isinstance(conn, PackageConnector)  # parse_config accepts allow_list for these types only
        path = Path(c.allow_list)
        out[c.name] = parse(_read(path), path, conn)
    return out


def stamp(cfg: Config) -> tuple[tuple[int, int], ...]:
    """What changes when a configured list is edited, replaced or removed (mtime, size); polled every second."""
    out = []
    for c in cfg.connectors:
        if c.allow_list:
            try:
                st = Path(c.allow_list).stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((0, -1))
    return tuple(out)


def describe(lists: Mapping[str, AllowList]) -> dict[str, int]:
    """How a set of lists is named in the audit log: connector -> number of names."""
    return {name: len(al.names) for name, al in sorted(lists.items())}
