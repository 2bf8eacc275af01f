// Batched UDP for the GUE data path (docs/tun.md, "Batched UDP"): a UDP socket owned by the
// addon, read with recvmmsg(2) and written with sendmmsg(2), with GUE taken off and put on
// here so JavaScript sees only inner IPv4 packets.
//
// Reading: the same event-loop integration as tun.c: a level-triggered uv_poll_t on the
// non-blocking fd; on each wake-up ONE recvmmsg of up to maxBatch datagrams into a JS-owned
// ArrayBuffer (one 64 KiB slot per datagram, so nothing is ever truncated), then ONE JS call
// (napi_make_callback) for the whole batch. With UDP_GRO the kernel may hand over several
// datagrams of one flow in one slot (a cmsg gives the segment size); they are split here.
// Per entry, a JS-owned Int32Array gets [offset, length, source address, port | code << 16];
// with decapsulation on, offset/length are those of the inner IPv4 packet and code says why
// the datagram was dropped (0: valid), in the order of sc/gue/receiver.ts GUE_DROP_REASONS.
//
// Writing: JS stages [offset, length, address, port] per packet; one call sends them all with
// sendmmsg. With the encap flag a 4-byte GUE variant-0 header goes in front of each packet
// through the iovec (no copy). With the GSO flag, packets to the same destination are
// grouped (order kept per destination) and runs of equal-sized packets go as one message
// with UDP_SEGMENT: one pass through the kernel's UDP/IP/route code for up to 64 datagrams.
// Failures are counted per packet in a Float64Array, never thrown.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include "napi-util.h"
#include "udp.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

// One read slot per datagram: the largest UDP payload (65507) or GRO train fits.
#define SLOT_BYTES 65536
#define MAX_READ_BATCH 256
// The kernel coalesces at most 64 datagrams into one GRO packet (UDP_GRO_CNT_MAX).
#define GRO_MAX_SEGS 64
// Packets per sendBatch chunk; larger counts are sent in several chunks.
#define SEND_CHUNK 1024
// Segments per GSO message (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
#define GSO_MAX_SEGS 64
#define UDP_MAX_PAYLOAD 65507
// Destinations told apart per chunk for GSO grouping; more fall back to one message each.
#define GSO_MAX_DESTS 64

// Decapsulation codes: 0 valid, then sc/gue/receiver.ts GUE_DROP_REASONS order + 1.
enum {
  DC_OK = 0,
  DC_TRUNCATED = 1,
  DC_BAD_VERSION = 2,
  DC_CONTROL = 3,
  DC_UNSUPPORTED = 4,
  DC_BAD_INNER = 5,
  DC_FRAGMENT = 6,
};

// Slots of the send result array (a Float64Array owned by JS).
enum {
  US_PACKETS = 0,  // datagrams sent
  US_BYTES,        // UDP payload bytes sent (GUE header included)
  US_AGAIN,        // dropped: EAGAIN/ENOBUFS (send buffer full)
  US_INVALID,      // dropped: bad slot, too large, EINVAL
  US_OTHER,        // dropped: any other errno
  US_LAST_ERRNO,   // errno of the last failure
  US_CALLS,        // sendmmsg/sendmsg system calls made
  US_GSO,          // messages sent with UDP_SEGMENT (each carried >= 2 datagrams)
  US_SLOTS
};

// Slots of the read counter array (a Float64Array owned by JS, updated before each callback).
enum {
  UR_DATAGRAMS = 0,  // datagrams received (GRO trains counted per segment)
  UR_CALLS,          // recvmmsg calls that returned data
  UR_GRO_TRAINS,     // slots that held more than one datagram
  UR_OVERFLOW,       // segments dropped because the entry array was full (never expected)
  UR_SLOTS
};

static const uint8_t GUE_V0_IPV4[4] = {0, 4, 0, 0};

typedef struct {
  napi_env env;
  int fd;
  napi_ref self;
  int self_strong;
  uv_poll_t* poll;
  int reading;
  int refed;
  int decap;
  int gro;
  int raw;  // IPPROTO_RAW: payloads are whole IPv4 packets, sent to their destination address
  napi_ref on_batch, rbuf_ref, rmeta_ref, rstat_ref;
  uint8_t* rbuf;
  int32_t* rmeta;
  size_t rmeta_entries;
  double* rstat;
  int max_batch;
  struct mmsghdr rmsgs[MAX_READ_BATCH];
  struct iovec riov[MAX_READ_BATCH];
  struct sockaddr_in raddr[MAX_READ_BATCH];
  char rctrl[MAX_READ_BATCH][CMSG_SPACE(sizeof(int))];
  // Send scratch, sized for one chunk.
  struct mmsghdr smsgs[SEND_CHUNK];
  struct iovec siov[2 * SEND_CHUNK];
  struct sockaddr_in saddr[SEND_CHUNK];
  char sctrl[SEND_CHUNK][CMSG_SPACE(sizeof(uint16_t))];
  int32_t sfirst[SEND_CHUNK];  // index of each message's first packet in sorder
  int32_t scount[SEND_CHUNK];  // packets in each message
  int32_t sorder[SEND_CHUNK];  // packet indices grouped by destination
  napi_async_context async_ctx;
  int cleanup_hook;
} udp_t;

// ---------------------------------------------------------------------------------------
// the pure codecs (also exported for tests)

static uint32_t sum16(const uint8_t* p, size_t len) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < len; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
  if (len & 1) s += (uint32_t)p[len - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

// Finds the inner IPv4 packet of one GUE UDP payload and checks it, exactly as
// sc/gue/receiver.ts decapsulate() (gueInnerOffset + checkIpv4 with checksum, no fragments).
int sc_gue_decap(const uint8_t* p, size_t len, size_t* inner_off, size_t* inner_len) {
  if (len < 1) return DC_TRUNCATED;
  uint8_t b0 = p[0];
  size_t at;
  int version = b0 >> 6;
  if (version == 1) {
    int nibble = b0 >> 4;
    if (nibble == 6) return DC_UNSUPPORTED;
    if (nibble != 4) return DC_BAD_VERSION;
    at = 0;
  } else if (version != 0) {
    return DC_BAD_VERSION;
  } else {
    if (len < 4) return DC_TRUNCATED;
    if (b0 & 0x20) return DC_CONTROL;
    size_t hlen = 4 + (size_t)(b0 & 0x1f) * 4;
    if (hlen > len) return DC_TRUNCATED;
    if (p[1] != 4) return DC_UNSUPPORTED;
    at = hlen;
  }
  const uint8_t* ip = p + at;
  size_t room = len - at;
  if (room < 20) return DC_TRUNCATED;
  if (ip[0] >> 4 != 4) return DC_BAD_INNER;
  size_t ihl = (size_t)(ip[0] & 15) * 4;
  if (ihl < 20) return DC_BAD_INNER;
  if (ihl > room) return DC_TRUNCATED;
  size_t total = (size_t)ip[2] << 8 | ip[3];
  if (total < ihl) return DC_BAD_INNER;
  if (total > room) return DC_TRUNCATED;
  if (sum16(ip, ihl) != 0xffff) return DC_BAD_INNER;
  if (((ip[6] & 0x3f) | ip[7]) != 0) return DC_FRAGMENT;
  *inner_off = at;
  *inner_len = total;
  return DC_OK;
}

// One entry of the read meta: [offset, length, address, port | code << 16].
static void put_entry(int32_t* m, const uint8_t* base, size_t off, size_t len, uint32_t addr,
                      uint16_t port, int decap) {
  int code = DC_OK;
  size_t io = 0, il = len;
  if (decap) code = sc_gue_decap(base + off, len, &io, &il);
  if (code != DC_OK) io = 0, il = len;
  m[0] = (int32_t)(off + io);
  m[1] = (int32_t)il;
  m[2] = (int32_t)addr;
  m[3] = (int32_t)((uint32_t)port | (uint32_t)code << 16);
}

// ---------------------------------------------------------------------------------------
// helpers (as in tun.c)

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) return throw_status(env, "ERR_SC_UDP_NAPI"); \
  } while (0)

static void* typed_data(napi_env env, napi_value v, napi_typedarray_type want, size_t min_len,
                        size_t* len_out) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return NULL;
  napi_typedarray_type type;
  size_t len, off;
  void* data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off) != napi_ok) return NULL;
  if (type != want || len < min_len) return NULL;
  if (len_out) *len_out = len;
  return data;
}

static void* arraybuffer_data(napi_env env, napi_value v, size_t* len) {
  bool is_ab = false;
  napi_is_arraybuffer(env, v, &is_ab);
  if (!is_ab) return NULL;
  void* data;
  if (napi_get_arraybuffer_info(env, v, &data, len) != napi_ok) return NULL;
  return data;
}

static udp_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv,
                     int need_open) {
  napi_value this;
  void* data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &this, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, this, &data) != napi_ok || !data) {
    throw_type(env, "not a UdpHandle");
    return NULL;
  }
  udp_t* u = data;
  if (need_open && u->fd < 0) {
    throw_errno(env, EBADF, "closed");
    return NULL;
  }
  return u;
}

static void set_self_strong(udp_t* u, int strong) {
  if (strong == u->self_strong || !u->self) return;
  uint32_t n;
  if (strong)
    napi_reference_ref(u->env, u->self, &n);
  else
    napi_reference_unref(u->env, u->self, &n);
  u->self_strong = strong;
}

// libc's free as the uv_close callback: see free_poll() in tun.c (worker teardown unmaps us).
static uv_close_cb free_poll(void) {
  union {
    void (*free_fn)(void*);
    uv_close_cb cb;
  } c = {free};
  return c.cb;
}

static void drop_read_refs(udp_t* u) {
  napi_env env = u->env;
  if (u->on_batch) napi_delete_reference(env, u->on_batch);
  if (u->rbuf_ref) napi_delete_reference(env, u->rbuf_ref);
  if (u->rmeta_ref) napi_delete_reference(env, u->rmeta_ref);
  if (u->rstat_ref) napi_delete_reference(env, u->rstat_ref);
  u->on_batch = u->rbuf_ref = u->rmeta_ref = u->rstat_ref = NULL;
  u->rbuf = NULL;
  u->rmeta = NULL;
  u->rstat = NULL;
}

static void stop_reading(udp_t* u) {
  if (u->poll && u->reading) uv_poll_stop(u->poll);
  u->reading = 0;
  set_self_strong(u, 0);
}

static void cleanup_hook(void* arg);

static void close_udp(udp_t* u, int from_teardown) {
  stop_reading(u);
  if (u->poll) {
    uv_close((uv_handle_t*)u->poll, free_poll());
    u->poll = NULL;
  }
  if (u->fd >= 0) {
    close(u->fd);
    u->fd = -1;
  }
  if (!from_teardown) {
    drop_read_refs(u);
    if (u->async_ctx) {
      napi_async_destroy(u->env, u->async_ctx);
      u->async_ctx = NULL;
    }
  }
  if (u->cleanup_hook) {
    napi_remove_env_cleanup_hook(u->env, cleanup_hook, u);
    u->cleanup_hook = 0;
  }
}

static void cleanup_hook(void* arg) {
  udp_t* u = arg;
  u->cleanup_hook = 0;
  close_udp(u, 1);
}

static void finalize(napi_env env, void* data, void* hint) {
  udp_t* u = data;
  close_udp(u, 1);
  drop_read_refs(u);
  if (u->self) napi_delete_reference(env, u->self);
  free(u);
}

// ---------------------------------------------------------------------------------------
// open

// new UdpHandle(address: uint32, port, receiveBuffer, sendBuffer, gro: boolean, raw: boolean)
// Buffer sizes of 0 keep the kernel's default; larger ones are capped by rmem_max/wmem_max.
// raw: an IPPROTO_RAW socket (IP_HDRINCL) that sends whole IPv4 packets and is not bound.
// Reuseport steering (node --workers N): a classic BPF program run on every datagram for
// the socket group (data starts at the UDP payload) returns the index of the socket that
// gets it: a hash of the INNER packet's source address and port, mod N. So every packet of
// a client connection reaches the same socket (the worker that owns the connection) whatever
// the outer header says (the dispatcher's --output udp sends all flows from one port). The
// sockets' indexes are their bind order: worker i binds i-th. JS computes the same function
// (sc/gue/steering.ts steerWorker) to count packets that reach another worker.
// Inner IPv4 header: at 0 for GUE variant 1 (bare IPv4, first nibble 4), else after the
// 4-byte GUE header and its 4*hlen bytes of extensions. Loads past the end return 0 (worker 0).
static int attach_steering(int fd, uint32_t workers) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),         // 0: A = payload[0]
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),        // 1: A >>= 4
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 6, 0),  // 2: variant 1 (IPv4 version)? -> 9
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),         // 3: A = payload[0]
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x1f),     // 4: hlen (4-byte words)
      BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 2),        // 5
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 4),        // 6: + the GUE header itself
      BPF_STMT(BPF_MISC | BPF_TAX, 0),               // 7: X = inner offset
      BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),           // 8: -> 10
      BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0),        // 9: X = 0 (variant 1)
      BPF_STMT(BPF_LD | BPF_W | BPF_IND, 12),        // 10: A = inner source address
      BPF_STMT(BPF_ST, 0),                           // 11: M[0] = A
      BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0),         // 12: A = version/IHL byte
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x0f),     // 13
      BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 2),        // 14: IHL in bytes
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0),        // 15: + inner offset
      BPF_STMT(BPF_MISC | BPF_TAX, 0),               // 16: X = TCP/UDP header offset
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),         // 17: A = source port
      BPF_STMT(BPF_LDX | BPF_MEM, 0),                // 18: X = source address
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),        // 19: A = address ^ port
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1u),  // 20: mix (ports of one client
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),       // 21:   often share their low bit)
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, workers),  // 22
      BPF_STMT(BPF_RET | BPF_A, 0),                  // 23
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) return errno;
  return 0;
}

static napi_value udp_new(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], this;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &this, NULL));
  if (argc < 6) return throw_type(env, "UdpHandle(address, port, rcvbuf, sndbuf, gro, raw)");
  uint32_t addr, port, rcv, snd;
  bool gro = false;
  if (napi_get_value_uint32(env, argv[0], &addr) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535 ||
      napi_get_value_uint32(env, argv[2], &rcv) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &snd) != napi_ok)
    return throw_type(env, "address, port, rcvbuf, sndbuf must be unsigned integers");
  napi_get_value_bool(env, argv[4], &gro);
  bool raw = false;
  napi_get_value_bool(env, argv[5], &raw);
  if (raw) gro = false;
  // 7th (optional): steer over a SO_REUSEPORT group of this many sockets (0: no reuseport).
  uint32_t steer = 0;
  if (argc >= 7 && napi_get_value_uint32(env, argv[6], &steer) != napi_ok) steer = 0;
  if (raw) steer = 0;

  int fd = raw ? socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW)
               : socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int v;
  if (rcv > 0 && rcv <= INT32_MAX) {
    v = (int)rcv;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);  // best effort: capped by rmem_max
  }
  if (snd > 0 && snd <= INT32_MAX) {
    v = (int)snd;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  }
  if (gro) {
    v = 1;
    if (setsockopt(fd, IPPROTO_UDP, UDP_GRO, &v, sizeof v) < 0) gro = false;
  }
  if (steer > 0) {
    v = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, sizeof v) < 0) {
      int err = errno;
      close(fd);
      return throw_errno(env, err, "setsockopt SO_REUSEPORT");
    }
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(addr);
  if (!raw && bind(fd, (struct sockaddr*)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  // After bind: the program belongs to the group (the last one attached serves all).
  if (steer > 1) {
    int err = attach_steering(fd, steer);
    if (err) {
      close(fd);
      return throw_errno(env, err, "setsockopt SO_ATTACH_REUSEPORT_CBPF");
    }
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr*)&sa, &sl);

  udp_t* u = calloc(1, sizeof *u);
  if (!u) {
    close(fd);
    return throw_errno(env, ENOMEM, "calloc");
  }
  u->env = env;
  u->fd = fd;
  u->refed = 1;
  u->gro = gro;
  u->raw = raw;
  if (napi_wrap(env, this, u, finalize, NULL, &u->self) != napi_ok) {
    close(fd);
    free(u);
    return throw_status(env, "ERR_SC_UDP_NAPI");
  }
  napi_value val, resname;
  napi_create_string_utf8(env, "UdpBatchSocket", NAPI_AUTO_LENGTH, &resname);
  napi_async_init(env, this, resname, &u->async_ctx);
  napi_add_env_cleanup_hook(env, cleanup_hook, u);
  u->cleanup_hook = 1;
  napi_create_int32(env, fd, &val);
  napi_set_named_property(env, this, "fd", val);
  napi_create_uint32(env, ntohs(sa.sin_port), &val);
  napi_set_named_property(env, this, "port", val);
  napi_get_boolean(env, gro, &val);
  napi_set_named_property(env, this, "gro", val);
  return this;
}

// ---------------------------------------------------------------------------------------
// reading

static void call_js(udp_t* u, int count, int err) {
  napi_env env = u->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2];
  if (u->on_batch && napi_get_reference_value(env, u->on_batch, &cb) == napi_ok && cb &&
      napi_get_reference_value(env, u->self, &recv) == napi_ok && recv) {
    napi_create_int32(env, count, &argv[0]);
    napi_create_int32(env, err, &argv[1]);
    // make_callback: nextTick and microtasks run right after, so what the handler queued
    // (a stack flush, TUN writes) goes out in this wake-up.
    if (napi_make_callback(env, u->async_ctx, recv, cb, 2, argv, NULL) == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static int gro_segment(struct msghdr* mh) {
  for (struct cmsghdr* c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
      int seg;
      memcpy(&seg, CMSG_DATA(c), sizeof seg);
      return seg;
    }
  }
  return 0;
}

static void on_readable(uv_poll_t* h, int status, int events) {
  (void)events;
  udp_t* u = h->data;
  if (!u || !u->reading || u->fd < 0) return;
  int entries = 0, err = 0;
  if (status < 0) {
    err = -status;
  } else {
    int n = u->max_batch;
    for (int i = 0; i < n; i++) {
      struct msghdr* mh = &u->rmsgs[i].msg_hdr;
      u->riov[i].iov_base = u->rbuf + (size_t)i * SLOT_BYTES;
      u->riov[i].iov_len = SLOT_BYTES;
      mh->msg_name = &u->raddr[i];
      mh->msg_namelen = sizeof u->raddr[i];
      mh->msg_iov = &u->riov[i];
      mh->msg_iovlen = 1;
      mh->msg_control = u->gro ? u->rctrl[i] : NULL;
      mh->msg_controllen = u->gro ? sizeof u->rctrl[i] : 0;
      mh->msg_flags = 0;
    }
    int got;
    do got = recvmmsg(u->fd, u->rmsgs, (unsigned)n, MSG_DONTWAIT, NULL);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
      // ECONNREFUSED and friends (an ICMP error queued on the socket) are not fatal: the
      // next call reads on. Only a dead fd stops the poll.
      if (errno == EBADF || errno == ENOTSOCK) err = errno;
      got = 0;
    } else if (got > 0) {
      u->rstat[UR_CALLS]++;
    }
    size_t cap = u->rmeta_entries;
    for (int i = 0; i < got; i++) {
      struct msghdr* mh = &u->rmsgs[i].msg_hdr;
      size_t len = u->rmsgs[i].msg_len;
      size_t base = (size_t)i * SLOT_BYTES;
      uint32_t addr = ntohl(u->raddr[i].sin_addr.s_addr);
      uint16_t port = ntohs(u->raddr[i].sin_port);
      if (mh->msg_flags & MSG_TRUNC) len = SLOT_BYTES + 1;  // cannot happen: reported as truncated
      int seg = u->gro ? gro_segment(mh) : 0;
      if (seg <= 0 || (size_t)seg >= len) {
        if ((size_t)entries >= cap) {
          u->rstat[UR_OVERFLOW]++;
          continue;
        }
        u->rstat[UR_DATAGRAMS]++;
        if (len > SLOT_BYTES) {
          int32_t* m = u->rmeta + 4 * entries++;
          m[0] = (int32_t)base, m[1] = 0, m[2] = (int32_t)addr;
          m[3] = (int32_t)((uint32_t)port | (uint32_t)DC_TRUNCATED << 16);
          continue;
        }
        put_entry(u->rmeta + 4 * entries++, u->rbuf, base, len, addr, port, u->decap);
        continue;
      }
      u->rstat[UR_GRO_TRAINS]++;
      for (size_t off = 0; off < len; off += (size_t)seg) {
        size_t l = len - off < (size_t)seg ? len - off : (size_t)seg;
        if ((size_t)entries >= cap) {
          u->rstat[UR_OVERFLOW]++;
          continue;
        }
        u->rstat[UR_DATAGRAMS]++;
        put_entry(u->rmeta + 4 * entries++, u->rbuf, base + off, l, addr, port, u->decap);
      }
    }
  }
  if (err) stop_reading(u);
  if (entries > 0 || err) call_js(u, entries, err);
}

// startReading(buf: ArrayBuffer, meta: Int32Array, stats: Float64Array, maxBatch, decap,
//              onBatch(count, errno))
static napi_value udp_start_reading(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  udp_t* u = unwrap(env, info, &argc, argv, 1);
  if (!u) return NULL;
  if (argc < 6) return throw_type(env, "startReading(buffer, meta, stats, maxBatch, decap, onBatch)");
  size_t buf_len;
  void* buf = arraybuffer_data(env, argv[0], &buf_len);
  if (!buf) return throw_type(env, "buffer must be an ArrayBuffer");
  size_t meta_len;
  int32_t* meta = typed_data(env, argv[1], napi_int32_array, 0, &meta_len);
  if (!meta) return throw_type(env, "meta must be an Int32Array");
  double* stats = typed_data(env, argv[2], napi_float64_array, UR_SLOTS, NULL);
  if (!stats) return throw_type(env, "stats must be a Float64Array of 4 slots");
  int32_t max_batch;
  if (napi_get_value_int32(env, argv[3], &max_batch) != napi_ok || max_batch < 1 ||
      max_batch > MAX_READ_BATCH)
    return throw_type(env, "maxBatch must be 1..256");
  bool decap = false;
  napi_get_value_bool(env, argv[4], &decap);
  napi_valuetype ft;
  napi_typeof(env, argv[5], &ft);
  if (ft != napi_function) return throw_type(env, "onBatch must be a function");
  if (buf_len < (size_t)max_batch * SLOT_BYTES)
    return throw_type(env, "buffer must hold maxBatch * 65536 bytes");
  size_t need = (size_t)max_batch * (u->gro ? GRO_MAX_SEGS : 1);
  if (meta_len < 4 * need)
    return throw_type(env, "meta needs 4 slots per datagram (64 datagrams per read with GRO)");

  if (!u->poll) {
    uv_loop_t* loop;
    CHECK(napi_get_uv_event_loop(env, &loop));
    u->poll = calloc(1, sizeof *u->poll);
    if (!u->poll) return throw_errno(env, ENOMEM, "calloc");
    int r = uv_poll_init(loop, u->poll, u->fd);
    if (r < 0) {
      free(u->poll);
      u->poll = NULL;
      return throw_errno(env, -r, "uv_poll_init");
    }
    u->poll->data = u;
    if (!u->refed) uv_unref((uv_handle_t*)u->poll);
  }
  stop_reading(u);
  drop_read_refs(u);
  CHECK(napi_create_reference(env, argv[0], 1, &u->rbuf_ref));
  CHECK(napi_create_reference(env, argv[1], 1, &u->rmeta_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &u->rstat_ref));
  CHECK(napi_create_reference(env, argv[5], 1, &u->on_batch));
  u->rbuf = buf;
  u->rmeta = meta;
  u->rmeta_entries = meta_len / 4;
  u->rstat = stats;
  u->max_batch = max_batch;
  u->decap = decap;
  int r = uv_poll_start(u->poll, UV_READABLE, on_readable);
  if (r < 0) {
    drop_read_refs(u);
    return throw_errno(env, -r, "uv_poll_start");
  }
  u->reading = 1;
  set_self_strong(u, 1);
  return undefined(env);
}

static napi_value udp_stop_reading(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  udp_t* u = unwrap(env, info, &argc, NULL, 0);
  if (!u) return NULL;
  stop_reading(u);
  drop_read_refs(u);
  return undefined(env);
}

static napi_value udp_ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  udp_t* u = unwrap(env, info, &argc, NULL, 0);
  if (!u) return NULL;
  u->refed = 1;
  if (u->poll) uv_ref((uv_handle_t*)u->poll);
  return undefined(env);
}

static napi_value udp_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  udp_t* u = unwrap(env, info, &argc, NULL, 0);
  if (!u) return NULL;
  u->refed = 0;
  if (u->poll) uv_unref((uv_handle_t*)u->poll);
  return undefined(env);
}

// ---------------------------------------------------------------------------------------
// writing

static void count_failure(double* res, int err, int packets) {
  if (err == EAGAIN || err == ENOBUFS)
    res[US_AGAIN] += packets;
  else if (err == EINVAL || err == EMSGSIZE)
    res[US_INVALID] += packets;
  else
    res[US_OTHER] += packets;
  res[US_LAST_ERRNO] = err;
}

typedef struct {
  const uint8_t* base;
  const int32_t* meta;
  int encap;
  int raw;
} send_src_t;

static size_t payload_len(const send_src_t* s, int32_t i) {
  return (size_t)s->meta[4 * i + 1] + (s->encap ? sizeof GUE_V0_IPV4 : 0);
}

static int same_dest(const send_src_t* s, int32_t a, int32_t b) {
  return s->meta[4 * a + 2] == s->meta[4 * b + 2] && s->meta[4 * a + 3] == s->meta[4 * b + 3];
}

// Orders the valid packets of a chunk by destination, keeping their order per destination
// (counting sort over the first GSO_MAX_DESTS destinations; the rest keep their place after
// them). Returns how many indices went to order[].
static int group_by_dest(const send_src_t* s, const int32_t* idx, int n, int32_t* order) {
  int32_t dest_of[SEND_CHUNK];
  int32_t rep[GSO_MAX_DESTS];  // one packet index per destination
  int32_t start[GSO_MAX_DESTS + 1];
  int ndest = 0;
  memset(start, 0, sizeof start);
  for (int k = 0; k < n; k++) {
    int d = 0;
    while (d < ndest && !same_dest(s, rep[d], idx[k])) d++;
    if (d == ndest) {
      if (ndest < GSO_MAX_DESTS)
        rep[ndest++] = idx[k];
      else
        d = GSO_MAX_DESTS;  // overflow bucket: no grouping
    }
    dest_of[k] = d;
    start[d]++;
  }
  // exclusive prefix sums (bucket GSO_MAX_DESTS last)
  int32_t pos = 0;
  for (int d = 0; d <= GSO_MAX_DESTS; d++) {
    int32_t c = start[d];
    start[d] = pos;
    pos += c;
  }
  for (int k = 0; k < n; k++) order[start[dest_of[k]]++] = idx[k];
  return n;
}

static void fill_dest(struct sockaddr_in* sa, const send_src_t* s, int32_t i) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl((uint32_t)s->meta[4 * i + 2]);
  sa->sin_port = s->raw ? 0 : htons((uint16_t)s->meta[4 * i + 3]);
}

static int add_iov(struct iovec* iov, const send_src_t* s, int32_t i) {
  int k = 0;
  if (s->encap) {
    iov[k].iov_base = (void*)GUE_V0_IPV4;
    iov[k++].iov_len = sizeof GUE_V0_IPV4;
  }
  iov[k].iov_base = (void*)(s->base + s->meta[4 * i]);
  iov[k++].iov_len = (size_t)s->meta[4 * i + 1];
  return k;
}

static int send_one(udp_t* u, const send_src_t* s, int32_t i, double* res) {
  struct iovec iov[2];
  struct sockaddr_in sa;
  fill_dest(&sa, s, i);
  struct msghdr mh = {.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = iov};
  mh.msg_iovlen = (size_t)add_iov(iov, s, i);
  ssize_t r;
  do r = sendmsg(u->fd, &mh, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  res[US_CALLS]++;
  if (r < 0) {
    count_failure(res, errno, 1);
    return errno;
  }
  res[US_PACKETS]++;
  res[US_BYTES] += (double)r;
  return 0;
}

// Sends one chunk (n <= SEND_CHUNK valid packet indices).
static void send_chunk(udp_t* u, const send_src_t* s, const int32_t* idx, int n, int gso,
                       int gso_max_seg, double* res) {
  const int32_t* order = idx;
  if (gso && n > 1) {
    group_by_dest(s, idx, n, u->sorder);
    order = u->sorder;
  }
  // Build messages: a GSO message is a run to one destination, every packet the size of the
  // first except a shorter last one, at most GSO_MAX_SEGS and UDP_MAX_PAYLOAD in all.
  int nmsg = 0, niov = 0;
  for (int k = 0; k < n;) {
    int32_t first = order[k];
    size_t seg = payload_len(s, first);
    int cnt = 1;
    size_t total = seg;
    if (gso && seg <= (size_t)gso_max_seg) {
      while (k + cnt < n && cnt < GSO_MAX_SEGS) {
        int32_t nx = order[k + cnt];
        size_t l = payload_len(s, nx);
        if (!same_dest(s, first, nx) || l > seg || total + l > UDP_MAX_PAYLOAD) break;
        total += l;
        cnt++;
        if (l < seg) break;  // a shorter packet ends the run
      }
    }
    struct msghdr* mh = &u->smsgs[nmsg].msg_hdr;
    memset(mh, 0, sizeof *mh);
    fill_dest(&u->saddr[nmsg], s, first);
    mh->msg_name = &u->saddr[nmsg];
    mh->msg_namelen = sizeof u->saddr[nmsg];
    mh->msg_iov = &u->siov[niov];
    for (int j = 0; j < cnt; j++) niov += add_iov(&u->siov[niov], s, order[k + j]);
    mh->msg_iovlen = (size_t)(&u->siov[niov] - mh->msg_iov);
    if (cnt > 1) {
      mh->msg_control = u->sctrl[nmsg];
      mh->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
      struct cmsghdr* c = CMSG_FIRSTHDR(mh);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t g = (uint16_t)seg;
      memcpy(CMSG_DATA(c), &g, sizeof g);
    }
    u->sfirst[nmsg] = k;
    u->scount[nmsg] = cnt;
    nmsg++;
    k += cnt;
  }
  int done = 0;
  while (done < nmsg) {
    int r;
    do r = sendmmsg(u->fd, &u->smsgs[done], (unsigned)(nmsg - done), MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    res[US_CALLS]++;
    if (r > 0) {
      for (int m = done; m < done + r; m++) {
        res[US_PACKETS] += u->scount[m];
        res[US_BYTES] += u->smsgs[m].msg_len;
        if (u->scount[m] > 1) res[US_GSO]++;
      }
      done += r;
      continue;
    }
    // The message at `done` failed. A GSO message the path refuses (EINVAL: segment above
    // the MTU; EIO: no checksum offload) is retried one datagram at a time.
    int err = r < 0 ? errno : EIO;
    int cnt = u->scount[done];
    if (cnt > 1 && (err == EINVAL || err == EIO || err == EMSGSIZE)) {
      for (int j = 0; j < cnt; j++) send_one(u, s, order[u->sfirst[done] + j], res);
    } else {
      count_failure(res, err, cnt);
    }
    done++;
  }
}

// sendBatch(buf: ArrayBuffer, meta: Int32Array, count, flags, gsoMaxSegment, result: Float64Array)
// meta: [offset, length, address (uint32 as int32), port] per packet. flags: 1 = prepend a
// GUE variant-0 header (IPv4 inside), 2 = group by destination and use UDP GSO.
static napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  udp_t* u = unwrap(env, info, &argc, argv, 0);
  if (!u) return NULL;
  if (argc < 6) return throw_type(env, "sendBatch(buffer, meta, count, flags, gsoMaxSegment, result)");
  size_t buf_len, meta_len;
  const uint8_t* buf = arraybuffer_data(env, argv[0], &buf_len);
  if (!buf) return throw_type(env, "buffer must be an ArrayBuffer");
  const int32_t* meta = typed_data(env, argv[1], napi_int32_array, 0, &meta_len);
  if (!meta) return throw_type(env, "meta must be an Int32Array");
  int32_t count, flags, gso_max;
  if (napi_get_value_int32(env, argv[2], &count) != napi_ok || count < 0 ||
      (size_t)count * 4 > meta_len)
    return throw_type(env, "count out of range for meta");
  if (napi_get_value_int32(env, argv[3], &flags) != napi_ok ||
      napi_get_value_int32(env, argv[4], &gso_max) != napi_ok)
    return throw_type(env, "flags and gsoMaxSegment must be integers");
  double* res = typed_data(env, argv[5], napi_float64_array, US_SLOTS, NULL);
  if (!res) return throw_type(env, "result must be a Float64Array of 8 slots");
  // Raw: whole IPv4 packets, no GUE header to add and no GSO (the kernel has none for them).
  send_src_t s = {buf, meta, u->raw ? 0 : flags & 1, u->raw};
  if (u->raw) flags &= ~2;
  int32_t idx[SEND_CHUNK];
  int n = 0;
  for (int32_t i = 0; i < count; i++) {
    int32_t off = meta[4 * i], len = meta[4 * i + 1], port = meta[4 * i + 3];
    int bad = u->raw ? len < 20 || len > 65535
                     : port <= 0 || port > 65535 || payload_len(&s, i) > UDP_MAX_PAYLOAD;
    if (off < 0 || len < 0 || (size_t)off + (size_t)len > buf_len || bad) {
      count_failure(res, EINVAL, 1);
      continue;
    }
    if (u->fd < 0) {
      count_failure(res, EBADF, 1);
      continue;
    }
    idx[n++] = i;
    if (n == SEND_CHUNK) {
      send_chunk(u, &s, idx, n, flags & 2, gso_max, res);
      n = 0;
    }
  }
  if (n > 0) send_chunk(u, &s, idx, n, flags & 2, gso_max, res);
  return undefined(env);
}

// ---------------------------------------------------------------------------------------

static napi_value udp_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  udp_t* u = unwrap(env, info, &argc, NULL, 0);
  if (!u) return NULL;
  close_udp(u, 0);
  return undefined(env);
}

// gueDecapBatch(buf: ArrayBuffer, meta: Int32Array, count): the read path's decapsulation on
// packed datagrams, for tests: meta [offset, length, _, _] in, [offset, length, _, code] out.
static napi_value gue_decap_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "gueDecapBatch(buffer, meta, count)");
  size_t buf_len, meta_len;
  uint8_t* buf = arraybuffer_data(env, argv[0], &buf_len);
  if (!buf) return throw_type(env, "buffer must be an ArrayBuffer");
  int32_t* meta = typed_data(env, argv[1], napi_int32_array, 0, &meta_len);
  if (!meta) return throw_type(env, "meta must be an Int32Array");
  int32_t count;
  if (napi_get_value_int32(env, argv[2], &count) != napi_ok || count < 0 ||
      (size_t)count * 4 > meta_len)
    return throw_type(env, "count out of range for meta");
  for (int32_t i = 0; i < count; i++) {
    int32_t* m = meta + 4 * i;
    if (m[0] < 0 || m[1] < 0 || (size_t)m[0] + (size_t)m[1] > buf_len) {
      m[3] = DC_TRUNCATED;
      continue;
    }
    put_entry(m, buf, (size_t)m[0], (size_t)m[1], (uint32_t)m[2], 0, 1);
    m[3] = (int32_t)((uint32_t)m[3] >> 16);
  }
  return undefined(env);
}

napi_status sc_udp_register(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"startReading", NULL, udp_start_reading, NULL, NULL, NULL, napi_default, NULL},
      {"stopReading", NULL, udp_stop_reading, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, udp_ref, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, udp_unref, NULL, NULL, NULL, napi_default, NULL},
      {"sendBatch", NULL, udp_send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, udp_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, v;
  napi_status st = napi_define_class(env, "UdpHandle", NAPI_AUTO_LENGTH, udp_new, NULL,
                                     sizeof methods / sizeof methods[0], methods, &cls);
  if (st != napi_ok) return st;
  napi_set_named_property(env, exports, "UdpHandle", cls);
  napi_create_function(env, "gueDecapBatch", NAPI_AUTO_LENGTH, gue_decap_batch, NULL, &v);
  napi_set_named_property(env, exports, "gueDecapBatch", v);
  napi_create_uint32(env, SLOT_BYTES, &v);
  napi_set_named_property(env, exports, "UDP_SLOT_BYTES", v);
  napi_create_uint32(env, MAX_READ_BATCH, &v);
  napi_set_named_property(env, exports, "UDP_MAX_READ_BATCH", v);
  napi_create_uint32(env, GRO_MAX_SEGS, &v);
  napi_set_named_property(env, exports, "UDP_GRO_MAX_SEGS", v);
  return napi_ok;
}
