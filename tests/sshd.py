"""A throw-away OpenSSH server on 127.0.0.1, for the record tests and benchmark.

:class:`ThrowawaySshd` starts the system's ``sshd`` with its own host key,
its own config (two non-default ports, key-only authentication with a key it
generates, ``StrictModes no``, a temporary ``PidFile``) and stops it by the
PID in that file. It also opens a "blackhole" port that accepts TCP
connections and never says a word, and writes an ``ssh_config`` with the
aliases ``h1`` and ``h2`` (the two sshd ports) and ``dead`` (the blackhole),
to be passed with ``ssh -F``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def find_sshd() -> str | None:
    """The sshd binary, or None (with ssh and ssh-keygen also required)."""
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return None
    found = shutil.which("sshd")
    if found:
        return found
    return next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThrowawaySshd:
    """sshd on two ports of 127.0.0.1, a blackhole port, and an ssh_config for them."""

    def __init__(self, root: Path, sshd: str) -> None:
        self.root = root
        self.sshd = sshd
        self.ports = (_free_port(), _free_port())
        self.pid: int | None = None
        self.ssh_config = root / "ssh_config"
        self._proc: subprocess.Popen[bytes] | None = None
        self._blackhole: socket.socket | None = None
        self._log: BinaryIO | None = None

    def __enter__(self) -> ThrowawaySshd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        for key in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)],
                check=True,
                stdin=subprocess.DEVNULL,
            )
        shutil.copyfile(root / "client_key.pub", root / "authorized_keys")
        pid_file = root / "sshd.pid"
        config = root / "sshd_config"
        lines = [
            *(f"Port {port}" for port in self.ports),
            "ListenAddress 127.0.0.1",
            f"HostKey {root / 'host_key'}",
            f"PidFile {pid_file}",
            f"AuthorizedKeysFile {root / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "MaxStartups 100",
            "MaxSessions 100",
            "LogLevel ERROR",
        ]
        config.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            # Debian's sshd wants its privilege separation folder when started as root.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._log = (root / "sshd.log").open("wb")
        self._proc = subprocess.Popen(
            [self.sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        self._blackhole = socket.socket()
        self._blackhole.bind(("127.0.0.1", 0))
        self._blackhole.listen(64)
        blackhole_port = self._blackhole.getsockname()[1]
        self._wait_ready(pid_file)
        aliases = [("h1", self.ports[0]), ("h2", self.ports[1]), ("dead", blackhole_port)]
        ssh_lines = []
        for alias, port in aliases:
            ssh_lines += [f"Host {alias}", "  HostName 127.0.0.1", f"  Port {port}"]
        ssh_lines += [
            "Host *",
            f"  User {getpass.getuser()}",
            f"  IdentityFile {root / 'client_key'}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {root / 'known_hosts'}",
            "  StrictHostKeyChecking no",
            "  LogLevel ERROR",
        ]
        self.ssh_config.write_text("\n".join(ssh_lines) + "\n")

    def _wait_ready(self, pid_file: Path) -> None:
        """Until the PID file is written and both ports accept; RuntimeError if sshd died."""
        assert self._proc is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = (self.root / "sshd.log").read_text(errors="replace").strip()
                raise RuntimeError(f"sshd exited with {self._proc.returncode}: {log}")
            if (
                pid_file.exists()
                and pid_file.read_text().strip()
                and all(_accepts(port) for port in self.ports)
            ):
                self.pid = int(pid_file.read_text().strip())
                return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start listening within 20 s")

    def stop(self) -> None:
        """Stop sshd by the PID in its PidFile, and close the blackhole."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        if self._proc is not None:
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._blackhole is not None:
            self._blackhole.close()
        if self._log is not None:
            self._log.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
