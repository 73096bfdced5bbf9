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

The deadline covers the whole run: writing stdin (through the same loop as the
reads, so a command that never reads its input cannot block it), reading the
output, and waiting for the command to exit after it closed its output. A
command that exits is done even if a process it left behind (``ssh`` with
``ControlPersist``) still holds its pipes: what it wrote is read, for at most
a short grace period, and the result returned.
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
# After the command exits, how long to read what is left in pipes that a
# process it left behind keeps open.
_EXIT_GRACE_NS = 200_000_000
# How often to look whether the command exited, where no pidfd tells.
_POLL_S = 0.05


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
        """Feed stdin, read stdout and stderr until the command exits; kill it at the deadline.

        Returns once the command has exited and its output is read: at once
        when both pipes are at their end, and otherwise when stdout is at its
        end and stderr has nothing more to read, or ``_EXIT_GRACE_NS`` after
        the exit, whichever is first.
        """
        assert proc.stdout is not None
        assert proc.stderr is not None
        deadline_ns = started_ns + int(limit_s * 1e9)
        pending = memoryview(stdin or b"")
        out: list[bytes] = []
        err = bytearray()
        size = 0
        exit_fd = _exit_fd(proc.pid)
        exited_ns = 0  # when the command was seen to have exited; 0 while it runs
        stdout_open = True
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ, "out")
                sel.register(proc.stderr, selectors.EVENT_READ, "err")
                if proc.stdin is not None:
                    if pending:
                        os.set_blocking(proc.stdin.fileno(), False)
                        sel.register(proc.stdin, selectors.EVENT_WRITE, "in")
                    else:
                        _close_stdin(proc, None)
                if exit_fd >= 0:
                    sel.register(exit_fd, selectors.EVENT_READ, "exit")
                pipes = 2
                while True:
                    now = time.monotonic_ns()
                    if exited_ns:
                        if not pipes or now >= exited_ns + _EXIT_GRACE_NS:
                            break
                        # All it wrote is in the pipes: once stdout is at its
                        # end, take what stderr holds but do not wait for more.
                        wait_s = (exited_ns + _EXIT_GRACE_NS - now) / 1e9 if stdout_open else 0.0
                    elif now >= deadline_ns:
                        _kill_group(proc)
                        raise CommandTimeout(command, limit_s)
                    else:
                        wait_s = (deadline_ns - now) / 1e9
                        if exit_fd < 0:
                            wait_s = min(wait_s, _POLL_S)
                    events = sel.select(timeout=wait_s)
                    if exited_ns and not events:
                        break
                    look = exit_fd < 0
                    for key, _ in events:
                        if key.data == "exit":
                            sel.unregister(exit_fd)
                            look = True
                        elif key.data == "in":
                            try:
                                pending = pending[os.write(key.fd, pending[:_CHUNK]) :]
                            except BlockingIOError:
                                continue
                            except BrokenPipeError:  # it will not read the rest
                                pending = pending[:0]
                            if not pending:
                                _close_stdin(proc, sel)
                        else:
                            chunk = os.read(key.fd, _CHUNK)
                            if not chunk:
                                sel.unregister(key.fileobj)
                                pipes -= 1
                                if key.data == "out":
                                    stdout_open = False
                            elif key.data == "out":
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
                    if look and not exited_ns and proc.poll() is not None:
                        exited_ns = time.monotonic_ns()
                        if proc.stdin is not None and not proc.stdin.closed:
                            _close_stdin(proc, sel)
        finally:
            if exit_fd >= 0:
                os.close(exit_fd)
        return b"".join(out), bytes(err)


def _exit_fd(pid: int) -> int:
    """A descriptor that turns readable when ``pid`` exits (a pidfd); -1 where there is none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: poll every _POLL_S
        return -1


def _close_stdin(proc: subprocess.Popen[bytes], sel: selectors.BaseSelector | None) -> None:
    assert proc.stdin is not None
    if sel is not None:
        sel.unregister(proc.stdin)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and every process it started (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.kill()
    proc.wait()


def ssh_argv(
    host: str, argv: Sequence[str], *, ssh: str = "ssh", options: Sequence[str] = ()
) -> list[str]:
    """``argv`` to run on ``host`` through ``ssh -o BatchMode=yes`` (never a password
    prompt), quoted with :func:`shlex.join` for the remote shell."""
    return [ssh, "-o", "BatchMode=yes", *options, host, shlex.join(argv)]


class SshRunner:
    """Runs each command on ``host`` through ``ssh -o BatchMode=yes`` and an inner runner.

    The command is quoted with :func:`shlex.join` for the remote shell. An
    ``ssh`` that cannot connect exits 255, like a ``qstat`` that cannot reach
    its server: either is one failed collection.
    """

    def __init__(
        self,
        host: str,
        *,
        inner: CommandRunner | None = None,
        ssh: str = "ssh",
        options: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.inner: CommandRunner = inner or LocalRunner()
        self.ssh = ssh
        self.options = tuple(options)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        remote = ssh_argv(self.host, argv, ssh=self.ssh, options=self.options)
        return self.inner.run(remote, timeout=timeout, check=check, stdin=stdin)
