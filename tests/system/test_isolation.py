"""Process and filesystem isolation, as root, with the agent playing the hostile part: it tries to trace and
signal processes outside its sandbox, read the state directory, reach a host Unix socket, write the invoking
user's ~/.bashrc and read their keys. Every verdict rests on evidence outside the agent: what a victim process
wrote, the host file's content afterwards, the bytes a listener received, the owner of a file on the host.
"""

from __future__ import annotations

import ctypes
import os
import platform
import pwd
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.conftest import TF, Host, new_host, running_host
from trustfence.agent.sandbox import uids

pytestmark = pytest.mark.system

PY = "/usr/bin/python3"  # Debian's: the agent's uid cannot run root's interpreters
PULLS = "https://api.github.com/repos/acme/widgets/pulls"

# Notes every signal it gets and whether anything traces it, in the file named by argv[1], for 60 s.
VICTIM = """
import os, signal, sys, time
out = sys.argv[1]
def note(text):
    with open(out, "a") as f:
        f.write(text + "\\n")
for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP, signal.SIGINT):
    signal.signal(s, lambda n, _: note(f"signal {n}"))
note("ready")
end = time.time() + 60
while time.time() < end:
    with open("/proc/self/status") as f:
        if any(ln.startswith("TracerPid:") and ln.split()[1] != "0" for ln in f):
            note("traced")
    time.sleep(0.05)
"""

# Signals and attaches to every pid given, then to everything it may signal at all.
ATTACK = """
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
for pid in map(int, sys.argv[1:]):
    for s in (signal.SIGUSR1, signal.SIGTERM):
        try:
            os.kill(pid, s); print("kill", pid, "sent")
        except OSError as e:
            print("kill", pid, e.errno)
    print("ptrace", pid, libc.ptrace(16, pid, None, None), ctypes.get_errno())  # PTRACE_ATTACH
try:
    os.kill(-1, signal.SIGUSR1)
except OSError as e:
    print("kill -1", e.errno)
time.sleep(1)
"""


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    """State outside /tmp (which every sandbox has private anyway), its files world-readable as an old
    installation left them: only the sandbox's own view can keep them from the agent."""
    with running_host(parent="/var/lib") as h:
        for f in h.home.iterdir():
            if f.is_file():
                os.chmod(f, 0o644)
        yield h


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory any agent uid may write: the agent's working directory in these tests."""
    d = Path(tempfile.mkdtemp(prefix="tf-iso-"))
    os.chmod(d, 0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_in(host: Host, *cmd: str, name: str = "Bot", cwd: Path | None = None, user: str | None = None,
           env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TF, "run", "--name", name, *(["--user", user] if user else []), "--", *cmd],
                          env={**host.env, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


def start_in(host: Host, *cmd: str, name: str, cwd: Path, user: str | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([*TF, "run", "--name", name, *(["--user", user] if user else []), "--", *cmd],
                            env=host.env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never said {text!r}")


def pid_of(marker: str) -> int:
    """The host pid of the process whose command line names ``marker``, running as a non-root uid."""
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and marker in (d / "cmdline").read_bytes().decode(errors="replace") \
                    and (d / "status").read_text().split("Uid:")[1].split()[0] != "0":
                return int(d.name)
        except (OSError, IndexError):
            continue
    raise AssertionError(f"no process for {marker}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("attacker", ["nobody", "dynamic"])
def test_an_agent_can_neither_signal_nor_trace_another_sandbox_or_a_host_process(host: Host, work: Path,
                                                                                  attacker: str) -> None:
    """The victims run as nobody: one in a sandbox of gateway Acc, one on the host outside any sandbox. The
    agent of gateway Low (nobody too, then a uid of its own) gets their host pids and tries everything."""
    acc_log, host_log = work / "acc.log", work / "host.log"
    on_host = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY, "-c", VICTIM,
                                str(host_log)])
    in_acc = start_in(host, PY, "-c", VICTIM, str(acc_log), name="Acc", cwd=work, user="nobody")
    try:
        wait_for(host_log, "ready")
        wait_for(acc_log, "ready")
        targets = [pid_of(str(acc_log)), on_host.pid]
        r = run_in(host, PY, "-c", ATTACK, *map(str, targets), name="Low",
                   user=None if attacker == "dynamic" else "nobody")
        assert r.returncode == 0, r.stderr
        time.sleep(0.5)
        assert all(alive(p) for p in targets)
        assert acc_log.read_text() == "ready\n", acc_log.read_text()
        assert host_log.read_text() == "ready\n", host_log.read_text()
    finally:
        on_host.kill()
        in_acc.kill()
        on_host.wait(10)
        in_acc.wait(10)


def test_proc_shows_only_the_sandbox_s_own_processes(host: Host, work: Path) -> None:
    out = work / "procs"
    code = f"import os; open('{out}', 'w').write(' '.join(sorted(p for p in os.listdir('/proc') if p.isdigit())))"
    r = run_in(host, PY, "-c", code, cwd=work)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == "1 2"  # its init and itself: nothing of the host's hundreds


def test_the_state_directory_is_not_there_for_the_agent(host: Host, work: Path) -> None:
    h = host.home
    assert (h / "config.toml").stat().st_mode & 0o004 and (h / "daemon.log").stat().st_mode & 0o004
    r = run_in(host, "sh", "-c", f"for f in config.toml daemon.log traffic.duckdb permissions.toml; do "
               f"cp {h}/$f {work}/leak-$f; done; ls -a {h} > {work}/listing; "
               f"cp $SSL_CERT_FILE {work}/bundle; true", cwd=work)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in work.glob("leak-*")) == []
    assert (work / "listing").read_text() == ""  # an empty directory the agent cannot even list
    assert (work / "bundle").read_text() == (h / "public" / "ca-bundle.pem").read_text()  # at its fixed path


def test_a_world_connectable_host_unix_socket_receives_nothing(host: Host, work: Path) -> None:
    token = secrets.token_hex(4)
    d = Path(f"/run/tf-iso-{token}")
    d.mkdir(mode=0o755)
    received: list[bytes] = []
    listeners = []
    for address in (str(d / "sock"), f"\0tf-iso-{token}"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(address)
        s.listen()
        s.settimeout(0.2)
        listeners.append(s)
    os.chmod(d / "sock", 0o777)
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            for s in listeners:
                try:
                    conn, _ = s.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(1)
                    try:
                        received.append(conn.recv(100) or b"<connected>")
                    except TimeoutError:
                        received.append(b"<connected>")

    t = threading.Thread(target=listen)
    t.start()
    try:
        code = ("import socket\n"
                f"for a in ['{d}/sock', '/var/run/tf-iso-{token}/sock', '\\0tf-iso-{token}']:\n"
                "    try:\n"
                "        s = socket.socket(socket.AF_UNIX); s.connect(a); s.sendall(b'leak'); print('sent', a)\n"
                "    except OSError as e:\n"
                "        print('refused', a, e)\n")
        r = run_in(host, PY, "-c", code)
        assert r.returncode == 0, r.stderr
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
        for s in listeners:
            s.close()
        shutil.rmtree(d)
    assert received == [], r.stdout


@pytest.fixture(scope="module")
def person() -> Iterator[pwd.struct_passwd]:
    """A real account with a home: .bashrc, an SSH key, notes, a project directory, all its own."""
    name = "tfi" + secrets.token_hex(3)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True, capture_output=True)
    pw = pwd.getpwnam(name)
    home = Path(pw.pw_dir)
    try:
        (home / ".ssh").mkdir(mode=0o700)
        (home / "project").mkdir()
        for f, text in ((".bashrc", "# original\n"), (".ssh/id_ed25519", "SECRET-KEY\n"), ("notes.txt", "notes\n")):
            (home / f).write_text(text)
        for p in (home, *home.rglob("*")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        yield pw
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


ATTEMPTS = ("echo evil >> ~/.bashrc; echo evil >> ~/notes.txt; echo x > ~/.ssh/authorized_keys; "
            "cat ~/.ssh/id_ed25519 > /tmp/key && cp /tmp/key ./leak-key; ls -a ~/.ssh > ./ssh-listing; "
            "echo ok > ./written; echo roundtrip > /tmp/t-$TF_SANDBOX && cp /tmp/t-$TF_SANDBOX ./tmp-copy; "
            "touch /etc/tf-iso-probe /usr/tf-iso-probe; true")


def test_the_invoking_user_s_files_are_read_only_or_hidden_and_the_project_is_writable(
        host: Host, person: pwd.struct_passwd) -> None:
    """As `sudo tf run` started by that user, in their project directory."""
    home = Path(person.pw_dir)
    sudo = {"SUDO_UID": str(person.pw_uid), "SUDO_GID": str(person.pw_gid)}
    r = run_in(host, "sh", "-c", ATTEMPTS, cwd=home / "project", env=sudo)
    assert r.returncode == 0, r.stderr
    assert "Permission denied" in r.stderr or "Read-only" in r.stderr
    assert (home / ".bashrc").read_text() == "# original\n" and (home / "notes.txt").read_text() == "notes\n"
    assert not (home / ".ssh" / "authorized_keys").exists()
    assert sorted(p.name for p in (home / ".ssh").iterdir()) == ["id_ed25519"]
    project = home / "project"
    assert not (project / "leak-key").exists() or (project / "leak-key").read_text() == ""
    assert "id_ed25519" not in (project / "ssh-listing").read_text()  # covered by an empty, closed directory
    assert (project / "written").read_text() == "ok\n" and (project / "written").stat().st_uid == person.pw_uid
    assert (project / "tmp-copy").read_text() == "roundtrip\n"  # its private /tmp works ...
    assert not list(Path("/tmp").glob(f"t-{host.tag}-*"))  # ... and is not the host's
    assert not Path("/etc/tf-iso-probe").exists() and not Path("/usr/tf-iso-probe").exists()


def test_started_in_the_home_itself_the_home_stays_read_only(host: Host, person: pwd.struct_passwd) -> None:
    home = Path(person.pw_dir)
    sudo = {"SUDO_UID": str(person.pw_uid), "SUDO_GID": str(person.pw_gid)}
    r = run_in(host, "sh", "-c", "echo evil >> .bashrc; echo new > ./new-file; true", cwd=home, env=sudo)
    assert r.returncode == 0, r.stderr
    assert "holds" in r.stderr and "stays read-only" in r.stderr
    assert (home / ".bashrc").read_text() == "# original\n" and not (home / "new-file").exists()


def test_two_sandboxes_have_their_own_tmp_home_and_uid_each_leased_and_released(host: Host, work: Path) -> None:
    script = ("echo $TF_SANDBOX > /tmp/probe; echo $TF_SANDBOX > $HOME/probe; touch ./$TF_SANDBOX.id; "
              "echo written; read go; cat /tmp/probe $HOME/probe > ./$TF_SANDBOX.seen; whoami > ./$TF_SANDBOX.who")
    agents = [start_in(host, "sh", "-c", script, name=n, cwd=work) for n in ("One", "Two")]
    try:
        for a in agents:
            assert a.stdout is not None and a.stdout.readline().strip() == "written"
        ids = {p.stem: p.stat().st_uid for p in work.glob("*.id")}
        assert len(ids) == 2 and len(set(ids.values())) == 2, ids
        for name, uid in ids.items():
            assert uids.FIRST <= uid <= uids.LAST
            with pytest.raises(KeyError):
                pwd.getpwuid(uid)
            assert (uids.LEASES / str(uid)).read_text() == name  # leased to that sandbox while it runs
        for a in agents:
            assert a.stdin is not None
            a.stdin.write("go\n")
            a.stdin.flush()
        for a in agents:
            assert a.wait(30) == 0, a.stderr.read() if a.stderr else ""
    finally:
        for a in agents:
            a.kill()
    for name, uid in ids.items():
        assert (work / f"{name}.seen").read_text() == f"{name}\n{name}\n"  # each saw only its own
        assert (work / f"{name}.who").read_text() == f"tf-{uid}\n"  # an account inside, none on the host
    assert not any((uids.LEASES / str(uid)).exists() for uid in ids.values())  # released at teardown
    assert not Path("/tmp/probe").exists() or Path("/tmp/probe").read_text() not in {f"{n}\n" for n in ids}


def test_tls_works_with_the_state_directory_under_a_0700_directory(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_host(parent="/var/lib") as h:
        os.chmod(h.home.parent, 0o700)
        os.chmod(h.home, 0o700)
        before = len(h.outside.received())
        r = h.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", PULLS)
        assert r.returncode == 0 and r.stdout == "200", r.stdout + r.stderr
        assert [(x["method"], x["path"]) for x in h.outside.received()[before:]] == [
            ("GET", "/repos/acme/widgets/pulls")]
        os.chmod(h.home.parent, 0o711)


def _without_landlock() -> None:
    """In the daemon's process before exec: a seccomp filter that answers landlock_create_ruleset with ENOSYS,
    as a kernel built without Landlock does."""
    audit_arch_x86_64, nr, enosys = 0xC000003E, 444, 38
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    prog = [(ld_abs, 0, 0, 4), (jeq, 0, 3, audit_arch_x86_64), (ld_abs, 0, 0, 0), (jeq, 0, 1, nr),
            (ret, 0, 0, 0x00050000 | enosys), (ret, 0, 0, 0x7FFF0000)]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "seccomp")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp filter checks the x86_64 syscall ABI")
def test_without_landlock_tf_run_refuses_with_the_fix_and_doctor_says_so(tmp_path_factory: pytest.TempPathFactory
                                                                         ) -> None:
    tmp = tmp_path_factory.mktemp("nolandlock")
    os.chmod(tmp, 0o711)
    h = new_host(tmp)
    log = open(h.home / "daemon.log", "ab")  # noqa: SIM115 - the daemon's, open as long as it runs
    daemon = subprocess.Popen([*TF, "daemon"], env=h.env, stdout=log, stderr=log, start_new_session=True,
                              preexec_fn=_without_landlock)  # noqa: PLW1509 - the filter must be in place before exec
    try:
        deadline = time.monotonic() + 60
        while not (h.home / "daemon.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        before = len(h.outside.received())
        r = h.run("curl", "-sS", PULLS)
        assert r.returncode == 2 and "Landlock is not available" in r.stderr and "lsm=" in r.stderr, r.stderr
        assert h.outside.received()[before:] == [] and h.leftovers() == []
        doctor = subprocess.run([*TF, "doctor"], env=h.env, capture_output=True, text=True, timeout=60,
                                preexec_fn=_without_landlock, check=False)
        assert doctor.returncode == 1 and "FAIL landlock" in doctor.stdout and "lsm=" in doctor.stdout
    finally:
        h.stop_daemon()
        daemon.wait(30)
        h.outside.stop()
    assert h.leftovers() == []


def test_a_working_directory_under_the_host_s_tmp_is_shown_without_what_it_hides() -> None:
    """`cd /tmp/x && tf run -- python3 agent.py` with the state directory in /tmp/x: the agent finds its script
    and may write there, and the state directory inside stays hidden."""
    with running_host() as h:
        work = h.home.parent
        os.chmod(work, 0o777)
        (work / "agent.py").write_text("open('wrote', 'w').write('ok')\n")
        r = run_in(h, "sh", "-c", f"{PY} agent.py; cp state/config.toml leak; cp {h.home}/daemon.log leak2; true",
                   cwd=work)
        assert r.returncode == 0, r.stderr
        assert (work / "wrote").read_text() == "ok"
        assert not (work / "leak").exists() and not (work / "leak2").exists()
        os.chmod(work, 0o711)
