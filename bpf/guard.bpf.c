/* The eBPF second lock, attached to each sandbox's cgroup v2.
 *
 * connect4:  TCP to anything but the enforcer's proxy ports is rewritten to the transparent listener (so the
 *            enforcer decides even without nftables), remembering the original destination and the process.
 *            Loopback stays the sandbox's own, except a host service's port (map services): that goes to the
 *            enforcer too, which forwards it to the service on the host.
 * sendmsg4 / UDP connect4: only DNS, and only to the enforcer (port 53 anywhere is rewritten to it).
 * connect6 / sendmsg6: refused (IPv6 loopback excepted). With IPv6 up, TCP to [::1] on a host service's port
 *            is rewritten to the enforcer as an IPv4-mapped address: the connection then runs over IPv4.
 * sock_ops:  once the source port is known, files the original destination under (agent ip, port).
 * egress:    a packet leaves only for the enforcer's address and ports, or loopback. A DNS datagram files
 *            the sending process (remembered by sendmsg4/connect4) under its source port, for attribution.
 * Return 1 lets the operation/packet pass, 0 refuses it (EPERM for syscalls, drop for packets).
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/in.h>
#include <uapi/linux/if_ether.h>
#include "guard.h"

#define SOCK_STREAM_ 1
#define SOCK_DGRAM_ 2
#define LOOPBACK_NET 0x7f000000

BPF_HASH(config, u64, struct tf_cfg, 4096);
BPF_HASH(counters, u64, struct tf_counters, 4096);
BPF_HASH(services, struct tf_svc, u8, 4096);
BPF_TABLE("lru_hash", u64, struct tf_orig, by_cookie, 65536);
BPF_TABLE("lru_hash", struct tf_conn, struct tf_orig, by_conn, 65536);

static __always_inline struct tf_counters *count(u64 cg) {
	struct tf_counters zero = {};
	counters.insert(&cg, &zero);
	return counters.lookup(&cg);
}

static __always_inline int is_loopback(u32 ip_net) {
	return (bpf_ntohl(ip_net) & 0xff000000) == LOOPBACK_NET;
}

static __always_inline int host_service(u64 cg, u16 port) {
	struct tf_svc key = {.cgroup = cg, .port = port};
	return services.lookup(&key) != NULL;
}

/* Who is calling, filed under the socket's cookie until a source port is known. */
static __always_inline void remember(struct bpf_sock_addr *ctx, u32 ip, u16 port, u16 ip6_loopback) {
	struct tf_orig o = {.ip = ip, .port = port, .ip6_loopback = ip6_loopback};
	u64 id = bpf_get_current_pid_tgid();
	o.pid = id >> 32;
	o.uid = (u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(&o.comm, sizeof(o.comm));
	u64 cookie = bpf_get_socket_cookie(ctx);
	by_cookie.update(&cookie, &o);
}

static __always_inline int udp_to_dns(struct bpf_sock_addr *ctx, struct tf_cfg *c, u64 cg) {
	u16 port = bpf_ntohs(ctx->user_port);
	if (port == 53 || (ctx->user_ip4 == c->enforcer_ip && port == c->dns_port)) {
		remember(ctx, ctx->user_ip4, port, 0);
		ctx->user_ip4 = c->enforcer_ip;
		ctx->user_port = bpf_htons(c->dns_port);
		return 1;
	}
	struct tf_counters *n = count(cg);
	if (n) __sync_fetch_and_add(&n->udp_refused, 1);
	return 0;
}

/* The caller's sandbox settings; NULL (refuse) for a cgroup with none. Sets *pass for loopback. */
static __always_inline struct tf_cfg *sandbox_of(struct bpf_sock_addr *ctx, u64 *cg, int *pass) {
	*cg = bpf_get_current_cgroup_id();
	*pass = is_loopback(ctx->user_ip4);
	return config.lookup(cg);
}

/* A host service's connect: to the transparent listener, the loopback address and port remembered. */
static __always_inline int to_enforcer(struct bpf_sock_addr *ctx, struct tf_cfg *c, u16 port) {
	remember(ctx, ctx->user_ip4, port, 0);
	ctx->user_ip4 = c->enforcer_ip;
	ctx->user_port = bpf_htons(c->transparent_port);
	return 1;
}

int tf_connect4(struct bpf_sock_addr *ctx) {
	u64 cg;
	int loopback;
	struct tf_cfg *c = sandbox_of(ctx, &cg, &loopback);
	if (!c)
		return 0;
	u16 port = bpf_ntohs(ctx->user_port);
	/* 0.0.0.0 dials the local host, like loopback */
	if ((loopback || ctx->user_ip4 == 0) && ctx->type == SOCK_STREAM_ && host_service(cg, port))
		return to_enforcer(ctx, c, port);
	if (loopback)
		return 1;
	if (ctx->type == SOCK_DGRAM_)
		return udp_to_dns(ctx, c, cg);
	if (ctx->type != SOCK_STREAM_)
		return 0;
	remember(ctx, ctx->user_ip4, port, 0);  /* attribution for every connection, the proxy's included */
	if (ctx->user_ip4 == c->enforcer_ip && (port == c->proxy_port || port == c->transparent_port))
		return 1;
	ctx->user_ip4 = c->enforcer_ip;
	ctx->user_port = bpf_htons(c->transparent_port);
	struct tf_counters *n = count(cg);
	if (n) __sync_fetch_and_add(&n->tcp_redirected, 1);
	return 1;
}

int tf_sendmsg4(struct bpf_sock_addr *ctx) {
	u64 cg;
	int loopback;
	struct tf_cfg *c = sandbox_of(ctx, &cg, &loopback);
	if (!c)
		return 0;
	return loopback ? 1 : udp_to_dns(ctx, c, cg);
}

static __always_inline int v6(struct bpf_sock_addr *ctx) {
	if (ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 && ctx->user_ip6[2] == 0 &&
	    ctx->user_ip6[3] == bpf_htonl(1))
		return 1;  /* ::1 stays inside the sandbox */
	u64 cg = bpf_get_current_cgroup_id();
	struct tf_counters *n = count(cg);
	if (n) __sync_fetch_and_add(&n->ipv6_refused, 1);
	return 0;
}

int tf_connect6(struct bpf_sock_addr *ctx) {
	u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2], w3 = ctx->user_ip6[3];
	u16 port = bpf_ntohs(ctx->user_port);
	u64 cg = bpf_get_current_cgroup_id();
	int lo6 = w0 == 0 && w1 == 0 && w2 == 0 && w3 == bpf_htonl(1);
	int mapped_lo = w0 == 0 && w1 == 0 && w2 == bpf_htonl(0xffff) && is_loopback(w3);
	if ((lo6 || mapped_lo) && ctx->type == SOCK_STREAM_ && host_service(cg, port)) {
		struct tf_cfg *c = config.lookup(&cg);
		if (c && (c->ipv6 || mapped_lo)) {
			/* As ::ffff:<enforcer>, the kernel connects over IPv4, from the agent's IPv4 address. */
			remember(ctx, lo6 ? 0 : w3, port, lo6);
			ctx->user_ip6[2] = bpf_htonl(0xffff);
			ctx->user_ip6[3] = c->enforcer_ip;
			ctx->user_port = bpf_htons(c->transparent_port);
			return 1;
		}
	}
	return v6(ctx);
}

int tf_sendmsg6(struct bpf_sock_addr *ctx) { return v6(ctx); }

int tf_sockops(struct bpf_sock_ops *skops) {
	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	u64 cookie = bpf_get_socket_cookie(skops);
	struct tf_orig *o = by_cookie.lookup(&cookie);
	if (!o)
		return 1;
	struct tf_conn key = {.ip = skops->local_ip4, .port = skops->local_port};
	struct tf_orig copy = *o;
	by_conn.update(&key, &copy);
	by_cookie.delete(&cookie);
	return 1;
}

int tf_egress(struct __sk_buff *skb) {
	u64 cg = bpf_skb_cgroup_id(skb);
	struct tf_cfg *c = config.lookup(&cg);
	struct iphdr ip;
	if (!c)
		return 0;
	if (skb->protocol != bpf_htons(ETH_P_IP)) {
		/* IPv6: only loopback, which never leaves the namespace (its packets carry ifindex 1). */
		return skb->ifindex == 1;
	}
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
		return 0;
	if (is_loopback(ip.daddr))
		return 1;
	if (ip.daddr == c->enforcer_ip && (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP)) {
		u16 ports[2];
		if (bpf_skb_load_bytes(skb, ip.ihl * 4, ports, sizeof(ports)) < 0)
			return 0;
		u16 dport = bpf_ntohs(ports[1]);
		if (ip.protocol == IPPROTO_TCP && (dport == c->proxy_port || dport == c->transparent_port))
			return 1;
		if (ip.protocol == IPPROTO_UDP && dport == c->dns_port) {
			u64 cookie = bpf_get_socket_cookie(skb);
			struct tf_orig *o = by_cookie.lookup(&cookie);
			if (o) {
				struct tf_conn key = {.ip = ip.saddr, .port = bpf_ntohs(ports[0])};
				struct tf_orig copy = *o;
				by_conn.update(&key, &copy);
			}
			return 1;
		}
	}
	struct tf_counters *n = count(cg);
	if (n) __sync_fetch_and_add(&n->egress_dropped, 1);
	return 0;
}
