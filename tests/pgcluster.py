"""A throwaway PostgreSQL cluster for the test run: a temp dir, a free port on 127.0.0.1, stopped at exit.

initdb refuses to run as root (CI runs as root), so there the cluster runs as the unprivileged `nobody`.
"""

import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def bindir() -> Path:
    try:
        path = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(path) / "initdb").exists():
            return Path(path)
    except (OSError, subprocess.CalledProcessError):
        pass
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return Path(candidates[0]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, server_options: str = ""):
        self.server_options = server_options  # more `-c name=value` for the server (a bench's extensions)
        self.bin = bindir()
        self.root = Path(tempfile.mkdtemp(prefix="pbx-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = list(args)
        if self.as_root:
            command = ["runuser", "-u", "nobody", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd=self.root)

    def start(self) -> str:
        if self.as_root:
            shutil.chown(self.root, "nobody", "nogroup")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        self._start_server()
        self._watchdog = self._start_watchdog()
        return self.url()

    def _start_watchdog(self) -> subprocess.Popen:
        """Stops the server and deletes its files if this process dies without doing it (SIGKILL)."""
        stop = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        if self.as_root:
            stop = ["runuser", "-u", "nobody", "--", *stop]
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                  f"{shlex.join(stop)}; rm -rf {shlex.quote(str(self.root))}")
        return subprocess.Popen(["sh", "-c", script], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _start_server(self) -> None:
        # The server's output goes to the log file, never to our pipes (which it would then hold open).
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 " + self.server_options
        )
        result = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                           "-o", options, "-w", "start", check=False)
        if result.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self._watchdog.kill()
        self._watchdog.wait()
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """A fast restart: every client connection is cut, as in a crash or a failover."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self._start_server()
