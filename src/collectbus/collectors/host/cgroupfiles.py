"""Reading a cgroup v2 directory each sample: its files kept open, as the /proc files are."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.cgroup import (
    CGROUP_FILES,
    cgroup_row,
    parse_cpu_max,
    parse_cpu_stat,
    parse_io_stat,
    parse_memory_stat,
    parse_single_value,
)
from collectbus.collectors.host.procfile import ProcFile
from collectbus.errors import CollectError
from collectbus.records import CgroupRow

__all__ = ["CgroupReader"]

T = TypeVar("T")


class CgroupReader:
    """The files of :data:`~.cgroup.CGROUP_FILES` under one cgroup directory.

    ``name`` is what the rows carry in ``cgroup`` (the cgroup's path). A file
    that is missing (its controller not enabled) or malformed is reported and
    named in the errors; its columns stay None and the rest is read. A file
    that does not exist when the reader is made is not read at all: the root
    cgroup has no ``cpu.max`` nor ``memory.max``, and a controller that is not
    enabled has no files (cgroup-v2.rst, "Controlling Controllers").
    """

    def __init__(self, directory: str, name: str, *, only_existing: bool = True) -> None:
        self.directory = directory
        self.name = name
        paths = {f: os.path.join(directory, f) for f in CGROUP_FILES}
        self._files = {
            f: ProcFile(path)
            for f, path in paths.items()
            if not only_existing or os.path.exists(path)
        }

    def _read(
        self,
        file: str,
        parse: Callable[[bytes, str, list[str]], T],
        ctx: CollectContext,
        errors: list[str],
        replaced: list[str],
    ) -> T | None:
        proc_file = self._files.get(file)
        if proc_file is None:
            return None
        try:
            return parse(proc_file.read(), proc_file.path, replaced)
        except CollectError as err:
            ctx.report(err)
            errors.append(str(err))
            return None

    def read(
        self, ctx: CollectContext, errors: list[str], replaced: list[str] | None = None
    ) -> CgroupRow | None:
        """One row, or None when not one file could be read.

        Values out of range are None, named in ``replaced``.
        """
        before = len(errors)
        names: list[str] = [] if replaced is None else replaced
        row = cgroup_row(
            self.name,
            cpu_stat=self._read("cpu.stat", parse_cpu_stat, ctx, errors, names),
            cpu_max=self._read("cpu.max", parse_cpu_max, ctx, errors, names),
            memory_current=self._read("memory.current", parse_single_value, ctx, errors, names),
            memory_max=self._read("memory.max", _parse_max, ctx, errors, names),
            memory_stat=self._read("memory.stat", parse_memory_stat, ctx, errors, names),
            io_stat=self._read("io.stat", parse_io_stat, ctx, errors, names),
            pids_current=self._read("pids.current", parse_single_value, ctx, errors, names),
        )
        return None if len(errors) - before == len(self._files) else row

    @property
    def paths(self) -> list[str]:
        """The files read each sample."""
        return [f.path for f in self._files.values()]

    def close(self) -> None:
        for file in self._files.values():
            file.close()


def _parse_max(data: bytes, source: str, replaced: list[str]) -> int | None:
    return parse_single_value(data, source, replaced, allow_max=True)
