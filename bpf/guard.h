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
	__u16 pad;
};

/* Where a TCP connection was really headed, and who opened it. */
struct tf_orig {
	__u32 ip;                /* network order */
	__u16 port;              /* host order */
	__u16 pad;
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
