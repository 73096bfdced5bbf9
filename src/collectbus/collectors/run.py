"""Running commands for collectors: ``qstat``, ``squeue``, ``ssh``.

Collectors never call :mod:`subprocess` themselves; they are given a
:class:`CommandRunner`, so tests can swap in recorded output and production can
run the same commands locally or on a login node over SSH.

:class:`LocalRunner` runs a command in its own process group with a deadline
and a cap on the output kept, and maps every failure to one clear error:

- the program is missing or not executable: :class:`~collectbus.errors.CollectError`;
- it runs past the timeout: the whole group is killed, :class:`~collectbus.errors.CommandTimeout`;
- it exits non-zero (``check=True``): :class:`~collectbus.errors.CommandFailed`
  with the exit code and the last lines of stderr;
- it prints more than ``max_output`` bytes: it is killed, :class:`~collectbus.errors.CollectError`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from collectbus.errors import CollectError, CommandFailed, CommandTimeout

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024
STDERR_TAIL_BYTES = 4096
_CHUNK = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr_tail: str
    duration_ns: int

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


class CommandRunner(Protocol):
    """Runs a command and returns its output, or raises a CollectError."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult: ...


class LocalRunner:
    """Runs commands on this machine."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_output: int = DEFAULT_MAX_OUTPUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_output = max_output
        self.env = dict(env) if env is not None else None

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        argv = tuple(argv)
        command = shlex.join(argv)
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic_ns()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                start_new_session=True,
            )
        except FileNotFoundError as err:
            raise CollectError(
                command, "command not found", hint="check the binaries' folder"
            ) from err
        except PermissionError as err:
            raise CollectError(command, "permission denied") from err
        except OSError as err:
            raise CollectError(command, f"cannot start: {err.strerror}") from err
        with proc:  # closes the pipes whatever happens
            try:
                stdout, stderr = self._communicate(proc, command, stdin, started, limit)
            except BaseException:
                _kill_group(proc)
                raise
            returncode = proc.wait()
        tail = stderr[-STDERR_TAIL_BYTES:].decode("utf-8", errors="replace")
        result = CommandResult(
            argv=argv,
            returncode=returncode,
            stdout=stdout,
            stderr_tail=tail,
            duration_ns=time.monotonic_ns() - started,
        )
        if check and returncode != 0:
            if returncode < 0:
                tail = f"killed by signal {-returncode}. {tail}"
            raise CommandFailed(command, returncode, tail)
        return result

    def _communicate(
        self,
        proc: subprocess.Popen[bytes],
        command: str,
        stdin: bytes | None,
        started_ns: int,
        limit_s: float,
    ) -> tuple[bytes, bytes]:
        deadline_ns = started_ns + int(limit_s * 1e9)
        assert proc.stdout is not None
        assert proc.stderr is not None
        if proc.stdin is not None:
            # Inputs are small (a job id list, a script); writing before reading
            # cannot dead-lock below the pipe buffer size.
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin or b"")
            proc.stdin.close()
        out: list[bytes] = []
        err = bytearray()
        size = 0
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, "out")
            sel.register(proc.stderr, selectors.EVENT_READ, "err")
            while sel.get_map():
                left = (deadline_ns - time.monotonic_ns()) / 1e9
                if left <= 0:
                    _kill_group(proc)
                    raise CommandTimeout(command, limit_s)
                for key, _ in sel.select(timeout=left):
                    chunk = os.read(key.fd, _CHUNK)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    if key.data == "out":
                        size += len(chunk)
                        if size > self.max_output:
                            _kill_group(proc)
                            raise CollectError(
                                command,
                                f"printed more than {self.max_output} bytes; killed",
                                hint="raise the output cap, or narrow the query",
                            )
                        out.append(chunk)
                    else:
                        err += chunk
                        if len(err) > 2 * STDERR_TAIL_BYTES:
                            del err[:-STDERR_TAIL_BYTES]
        return b"".join(out), bytes(err)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and every process it started (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.kill()
    proc.wait()
