"""Pure parsers of the host inventory: what the host is made of, not what it does.

Read every 5 minutes (the ``inventory`` tier), never per sample: cpuinfo alone
costs about 40 us (docs/architecture.md, "Host sample"). Bytes in, plain values
out; malformed content raises :class:`~collectbus.errors.ParseError` naming the
source and line.

- ``/proc/cpuinfo`` (``man 5 proc``; x86 and arm64 layouts);
- ``os-release`` (``man 5 os-release``);
- ``/proc/sys/kernel/osrelease``;
- ``/proc/self/mounts`` (``man 5 fstab`` fields, octal escapes as in
  ``getmntent(3)``), real filesystems only.
"""

from __future__ import annotations

import re
import shlex

from collectbus.errors import ParseError

__all__ = [
    "PSEUDO_FILESYSTEMS",
    "parse_cpuinfo",
    "parse_mounts",
    "parse_os_release",
    "parse_osrelease",
    "parse_partitions",
    "parse_proc_version",
]

JsonScalar = str | int | float | bool | None

# node_exporter's filesystem collector default fs-types-exclude, plus tmpfs,
# ramfs and the other in-memory filesystems that hold no disk.
PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "procfs",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "sysfs",
        "tmpfs",
        "tracefs",
    }
)


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 60 else raw[:60] + "...")


def parse_cpuinfo(data: bytes, source: str = "cpuinfo") -> dict[str, JsonScalar]:
    """Model, vendor, sockets, cores, threads and the count of CPU flags.

    ``threads`` counts the ``processor`` blocks (the online CPUs); ``sockets``
    the distinct ``physical id``; ``cores`` the distinct (``physical id``,
    ``core id``) pairs. A kernel that prints no topology (arm64, some VMs)
    gives one socket and one core per thread.
    """
    text = data.decode("utf-8", "backslashreplace")
    threads = 0
    model: str | None = None
    vendor: str | None = None
    flags: int | None = None
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    package = core = None
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            if package is not None and core is not None:
                cores.add((package, core))
            package = core = None
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise ParseError(source, number, f"not a 'key : value' line: {_shown(line)}")
        key, value = key.strip(), value.strip()
        if key == "processor":
            threads += 1
        elif key in ("model name", "Processor") and model is None:
            model = value
        elif key in ("vendor_id", "CPU implementer") and vendor is None:
            vendor = value
        elif key in ("flags", "Features") and flags is None:
            flags = len(value.split())
        elif key == "physical id":
            package = value
            packages.add(value)
        elif key == "core id":
            core = value
    if package is not None and core is not None:
        cores.add((package, core))
    if threads == 0:
        raise ParseError(source, None, "no 'processor' line")
    return {
        "model": model,
        "vendor": vendor,
        "sockets": len(packages) or 1,
        "cores": len(cores) or threads,
        "threads": threads,
        "flags_count": flags,
    }


_OS_RELEASE_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_OS_RELEASE_KEYS = ("ID", "NAME", "VERSION_ID", "PRETTY_NAME", "VERSION_CODENAME")


def parse_os_release(data: bytes, source: str = "os-release") -> dict[str, JsonScalar]:
    """``ID``, ``NAME``, ``VERSION_ID``, ``PRETTY_NAME``, ``VERSION_CODENAME``, lower-cased keys.

    Values may be quoted with shell quoting (``man 5 os-release``); comments and
    blank lines are skipped.
    """
    found: dict[str, JsonScalar] = {}
    for number, line in enumerate(data.decode("utf-8", "backslashreplace").split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _OS_RELEASE_LINE.match(stripped)
        if match is None:
            raise ParseError(source, number, f"not a KEY=value line: {_shown(stripped)}")
        key, raw = match.groups()
        try:
            words = shlex.split(raw)
        except ValueError as err:
            raise ParseError(source, number, f"{key}: bad quoting: {_shown(raw)}") from err
        if key in _OS_RELEASE_KEYS:
            found[key.lower()] = " ".join(words)
    return found


def parse_osrelease(data: bytes, source: str = "sys/kernel/osrelease") -> str:
    """The kernel release (``6.18.44-fc``): one line."""
    text = data.decode("utf-8", "backslashreplace").strip()
    if not text or "\n" in text or " " in text:
        raise ParseError(source, 1, f"expected one kernel release: {_shown(text)}")
    return text


def _unescape(field: str) -> str:
    r"""``getmntent(3)`` escapes: ``\040`` is a space, ``\011`` a tab, ``\134`` a backslash."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(data: bytes, source: str = "self/mounts") -> list[dict[str, JsonScalar]]:
    """Mounted real filesystems: device, mount point, type and whether read-only.

    Pseudo filesystems (:data:`PSEUDO_FILESYSTEMS`) are left out, and so is a
    mount point seen twice but the last (a bind mount over it hides the rest).
    """
    mounts: dict[str, dict[str, JsonScalar]] = {}
    for number, line in enumerate(data.decode("utf-8", "backslashreplace").split("\n"), 1):
        if not line:
            continue
        fields = line.split()
        if len(fields) != 6:
            raise ParseError(source, number, f"expected 6 fields, got {len(fields)}")
        device, mountpoint, fstype, options = (_unescape(f) for f in fields[:4])
        if fstype in PSEUDO_FILESYSTEMS:
            continue
        mounts.pop(mountpoint, None)
        mounts[mountpoint] = {
            "device": device,
            "mountpoint": mountpoint,
            "fstype": fstype,
            "read_only": "ro" in options.split(","),
        }
    return list(mounts.values())


def parse_proc_version(data: bytes, source: str = "version") -> str:
    """The kernel release from /proc/version (``Linux version 6.18.44 (...) #1 SMP ...``)."""
    fields = data.split()
    if len(fields) < 3 or fields[:2] != [b"Linux", b"version"]:
        raise ParseError(
            source,
            1,
            f"expected 'Linux version RELEASE ...': {_shown(data[:60].decode('utf-8', 'replace'))}",
        )
    return fields[2].decode("utf-8", "backslashreplace")


def parse_partitions(data: bytes, source: str = "partitions") -> list[dict[str, JsonScalar]]:
    """/proc/partitions: name, major, minor and size in bytes (``#blocks`` are 1 KiB)."""
    lines = data.decode("utf-8", "backslashreplace").split("\n")
    if not lines or lines[0].split() != ["major", "minor", "#blocks", "name"]:
        raise ParseError(source, 1, "expected the header 'major minor #blocks name'")
    out: list[dict[str, JsonScalar]] = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise ParseError(source, number, f"expected 4 fields, got {len(fields)}")
        try:
            major, minor, blocks = int(fields[0]), int(fields[1]), int(fields[2])
        except ValueError as err:
            raise ParseError(source, number, f"not an integer: {_shown(line)}") from err
        out.append({"name": fields[3], "major": major, "minor": minor, "size_bytes": blocks * 1024})
    return out
