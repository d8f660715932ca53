/* Shared between guard.bpf.c and the loader (bpf/guard.py mirrors these layouts with ctypes). */
#ifndef TRUSTFENCE_GUARD_H
#define TRUSTFENCE_GUARD_H

#define TF_COMM_LEN 16

/* Per-sandbox settings, keyed by the sandbox cgroup's id. No entry: everything is refused. */
struct tf_cfg {
	__u32 enforcer_ip;       /* network order: the host side of the sandbox veth */
	__u16 proxy_port;        /* host order */
	__u16 transparent_port;
	__u16 dns_port;
	__u16 ipv6;              /* 1: IPv6 is up in the sandbox, so [::1] on a host service's port is one too */
};

/* A host service's port in one sandbox: TCP to loopback on it goes to the enforcer. Present: claimed. */
struct tf_svc {
	__u64 cgroup;            /* the sandbox cgroup's id */
	__u32 port;              /* host order */
	__u32 pad;
};

/* Where a TCP connection was really headed, and who opened it. */
struct tf_orig {
	__u32 ip;                /* network order */
	__u16 port;              /* host order */
	__u16 ip6_loopback;      /* 1: the process dialled [::1] (ip is then 0) */
	__u32 pid;
	__u32 uid;
	char comm[TF_COMM_LEN];
};

/* Key of a connection as the enforcer sees it: the agent's source address and port. */
struct tf_conn {
	__u32 ip;                /* network order */
	__u32 port;              /* host order */
};

/* Per-sandbox counters (index into the per-cgroup counter value). */
struct tf_counters {
	__u64 tcp_redirected;
	__u64 udp_refused;
	__u64 ipv6_refused;
	__u64 egress_dropped;
};

#endif
