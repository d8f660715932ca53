"""The daemon's systemd unit, rendered: what it runs, and how far systemd confines it.

``render_unit`` is pure; ``tf install --systemd`` writes its output, and ``systemd/trustfence.service`` is its
output for the Debian package's ``/usr/bin/tf`` (a test keeps the two the same). ``CAPABILITIES`` is the
bounding set with the reason for each one; a system test runs a real sandbox under exactly this set.

Why no ProtectSystem=, ProtectHome=, PrivateTmp= (or any option that gives the service a mount namespace of
its own: PrivateDevices=, ProtectKernelTunables=, ProtectControlGroups=, ProtectHostname=, ...): systemd makes
such a namespace a slave of the host's, so nothing mounted in it propagates back. The daemon names each
sandbox's network namespace by bind-mounting it under /run/netns, and ``tf run`` (outside the service) enters
it from there; in a private mount namespace the name would exist for the daemon only. The daemon also writes
/etc/netns/<sandbox>/ (the agent's resolv.conf and hosts), cgroupfs and /proc/sys/net. What can be confined
without a mount namespace is: capabilities, system calls, socket families, the namespaces it may create
(network only), privilege gain, personality, real-time scheduling and set-uid/set-gid files. Not
MemoryDenyWriteExecute=: the enforcer's TLS (pyOpenSSL) makes cffi callbacks, which need memory both writable
and executable.
"""

from __future__ import annotations

import textwrap

__all__ = ["CAPABILITIES", "CREDENTIAL_PATH", "HARDENING", "SYSCALLS_ALLOWED", "SYSCALLS_DENIED", "render_unit"]

CREDENTIAL_PATH = "/etc/trustfence/vault-key.cred"
"""Where ``tf install --systemd`` puts the vault key, encrypted by ``systemd-creds`` (host key and/or TPM2)."""

CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("CAP_SYS_ADMIN", "create a sandbox's network namespace (unshare, setns), bind-mount its name under "
                      "/run/netns; load the eBPF lock and attach its tracepoint (the kernel grants bpf() and "
                      "perf_event_open to CAP_SYS_ADMIN too, so CAP_BPF and CAP_PERFMON would add nothing)"),
    ("CAP_NET_ADMIN", "veth pairs, addresses, routes and per-namespace sysctls; the nftables rules; attaching "
                      "the eBPF programs to a sandbox's cgroup"),
    ("CAP_NET_BIND_SERVICE", "the enforcer's DNS listener, port 53 on each sandbox's host address"),
    ("CAP_CHOWN", "give the control socket to the trustfence group and a sandbox's home to its agent"),
    ("CAP_DAC_OVERRIDE", "remove a finished sandbox's home (the agent's, mode 0700) and whatever it left there"),
)
"""The capability bounding set: exactly these, each with the work that needs it. Not CAP_KILL: a finished
sandbox's processes are ended through cgroup.kill (Linux >= 5.14)."""

SYSCALLS_ALLOWED = "@system-service @mount bpf perf_event_open"
"""@system-service, plus mount (the /run/netns name), bpf (the lock) and perf_event_open (its tracepoint)."""

SYSCALLS_DENIED = "@clock @cpu-emulation @module @obsolete @raw-io @reboot @swap"

HARDENING: tuple[tuple[str, str], ...] = (
    ("NoNewPrivileges", "yes"),
    ("CapabilityBoundingSet", " ".join(c for c, _ in CAPABILITIES)),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
    ("RestrictNamespaces", "net"),
    ("SystemCallArchitectures", "native"),
    ("SystemCallFilter", SYSCALLS_ALLOWED),
    ("SystemCallFilter", "~" + SYSCALLS_DENIED),
    ("SystemCallErrorNumber", "EPERM"),
    ("LockPersonality", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("KeyringMode", "private"),
    ("UMask", "0077"),
)
"""The confinement directives, in the unit's order; ``tf doctor --production`` checks the installed unit has
each of them."""


def render_unit(tf: str, credential: bool) -> str:
    """The unit running ``tf daemon`` (``tf``: the absolute path of the command); with ``credential``, the vault
    key comes from ``CREDENTIAL_PATH`` as an encrypted systemd credential instead of the state directory."""
    caps = "\n".join(f"#   {c if i == 0 else '':<21} {line}" for c, why in CAPABILITIES
                     for i, line in enumerate(textwrap.wrap(why, 84)))
    key = (f"LoadCredentialEncrypted=trustfence-vault-key:{CREDENTIAL_PATH}" if credential else
           "# The vault key is /var/lib/trustfence/vault.key (root, 0600). Where systemd-creds exists,\n"
           "# tf install --systemd encrypts it instead and loads it with:\n"
           f"#LoadCredentialEncrypted=trustfence-vault-key:{CREDENTIAL_PATH}")
    hardening = "\n".join(f"{k}={v}" for k, v in HARDENING)
    return f"""\
# TrustFence daemon for production hosts, written by `tf install --systemd` (which also enables it).
[Unit]
Description=TrustFence host firewall for AI agents
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={tf} daemon
Environment=TF_HOME=/var/lib/trustfence
{key}
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
# Logs go to the journal (journalctl -u trustfence); the daemon keeps no log file of its own here.
StandardOutput=journal
StandardError=journal

# Confinement. The daemon is root: it builds network namespaces, nftables rules, cgroups and eBPF programs.
# No ProtectSystem=, ProtectHome=, PrivateTmp= or other option that needs a mount namespace of its own:
# the daemon names each sandbox's network namespace by a bind mount under /run/netns that `tf run`, outside
# the service, must see, and systemd never propagates a service's mounts back to the host. It also writes
# /etc/netns, cgroupfs and /proc/sys/net. Capabilities, exactly:
{caps}
{hardening}

[Install]
WantedBy=multi-user.target
"""
