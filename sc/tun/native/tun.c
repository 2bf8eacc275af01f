// sc_tun: a dependency-free N-API addon that opens Linux TUN devices and moves packets
// in batches. Only node_api.h and libuv (both ship with node's headers).
//
// Reading: a uv_poll_t on the non-blocking fd; on each wake-up up to `maxBatch` packets
// are read into one JS-owned ArrayBuffer (packed, 8-byte aligned) and ONE JS callback
// reports the batch; offsets and lengths go into a JS-owned Int32Array. The views are
// valid only during that callback: the next wake-up overwrites the buffer.
//
// With io_uring (reading): a wake-up submits several reads of the fd in ONE io_uring_enter
// (they run inline, in order, and a read that finds the queue empty completes with EAGAIN),
// instead of one read(2) per packet; each read gets a fixed slot of MTU + 1 bytes (or 2048),
// so it is used only when the reader takes no offloads (every packet fits the MTU). A read
// that fills its slot may have been cut short (the MTU grew): it is dropped and counted, and
// the slot size is refreshed. Without io_uring (kernel.io_uring_disabled, old kernel, or
// SC_TUN_IO_URING=0 in JS) reading falls back to the read(2) loop.
//
// Writing: JS stages packets in its own ArrayBuffer and one call writes them all
// (a loop of write(2); TUN has no multi-packet write). Failures are counted per
// packet, never thrown, so one bad packet cannot lose the rest of a batch.
//
// Lifetime: close() stops the poll and closes the fd; the poll handle is the only thing
// that can keep the event loop alive, and it can be unref'd. Reads never block, so a
// pending read can never hold up process exit.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/io_uring.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include "aead.h"
#include "napi-util.h"
#include "sockopt.h"
#include "udp.h"

// Largest packet a read can return: an IPv4/IPv6 packet is at most 65535 bytes, a GSO
// packet handed over with a virtio header too. Every read gets this much room, so a
// packet is never truncated whatever the MTU is.
#define MAX_PACKET (65535 + sizeof(struct virtio_net_hdr))
#define MAX_BATCH 1024

// Slots of the write result array (a Float64Array owned by JS).
enum {
  WR_PACKETS = 0,  // packets written
  WR_BYTES,        // bytes written (IP bytes, without virtio header)
  WR_AGAIN,        // dropped: EAGAIN/ENOBUFS (the TUN socket's send buffer is full)
  WR_INVALID,      // dropped: EINVAL (not IPv4/IPv6, bad GSO header) or out-of-bounds slot
  WR_OTHER,        // dropped: any other errno (EIO when down, EBADFD after deletion, ...)
  WR_LAST_ERRNO,   // errno of the last failure, 0 if none
  WR_SLOTS
};

// A minimal io_uring (no liburing): only what a batch of reads needs.
typedef struct {
  int fd;
  unsigned entries;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe* sqes;
  struct io_uring_cqe* cqes;
  void* sq_ptr;
  size_t sq_len;
  void* cq_ptr;
  size_t cq_len;
  size_t sqes_len;
} uring_t;

typedef struct {
  napi_env env;
  int fd;
  char name[IFNAMSIZ];
  int vnet_hdr;  // IFF_VNET_HDR: every packet is preceded by a struct virtio_net_hdr
  napi_ref self;  // weak while idle, strong while reading (the poll needs the object)
  int self_strong;

  uv_poll_t* poll;  // allocated on first read; freed in its uv_close callback
  int reading;
  int refed;  // whether the poll keeps the event loop alive
  napi_ref on_batch;
  napi_ref rbuf_ref;
  uint8_t* rbuf;
  size_t rbuf_len;
  napi_ref rmeta_ref;
  int32_t* rmeta;
  int max_batch;
  napi_async_context async_ctx;
  int cleanup_hook;
  // io_uring reads (use_uring: asked for by JS and the ring works)
  uring_t* ring;
  int use_uring;
  size_t slot;       // bytes per read: MTU + 1 (+ virtio header), at least 2048, 8-aligned
  int uring_next;    // reads to submit next time (adapts to the last batch)
  double uring_truncated;  // reads that filled their slot (dropped)
} tun_t;

static int uring_setup(uring_t* r, unsigned entries) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  memset(r, 0, sizeof *r);
  r->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
  if (r->fd < 0) return errno;
  r->entries = p.sq_entries;
  r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && r->cq_len > r->sq_len) r->sq_len = r->cq_len;
  r->sq_ptr = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                   IORING_OFF_SQ_RING);
  if (r->sq_ptr == MAP_FAILED) goto fail;
  if (single) {
    r->cq_ptr = r->sq_ptr;
  } else {
    r->cq_ptr = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                     IORING_OFF_CQ_RING);
    if (r->cq_ptr == MAP_FAILED) goto fail;
  }
  r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                 IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) goto fail;
  uint8_t* sq = r->sq_ptr;
  uint8_t* cq = r->cq_ptr;
  r->sq_head = (unsigned*)(sq + p.sq_off.head);
  r->sq_tail = (unsigned*)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned*)(sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned*)(sq + p.sq_off.array);
  r->cq_head = (unsigned*)(cq + p.cq_off.head);
  r->cq_tail = (unsigned*)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned*)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe*)(cq + p.cq_off.cqes);
  return 0;
fail : {
  int err = errno;
  if (r->sqes && r->sqes != MAP_FAILED) munmap(r->sqes, r->sqes_len);
  if (r->cq_ptr && r->cq_ptr != MAP_FAILED && r->cq_ptr != r->sq_ptr) munmap(r->cq_ptr, r->cq_len);
  if (r->sq_ptr && r->sq_ptr != MAP_FAILED) munmap(r->sq_ptr, r->sq_len);
  close(r->fd);
  r->fd = -1;
  return err;
}
}

static void uring_free(uring_t* r) {
  if (!r) return;
  munmap(r->sqes, r->sqes_len);
  if (r->cq_ptr != r->sq_ptr) munmap(r->cq_ptr, r->cq_len);
  munmap(r->sq_ptr, r->sq_len);
  close(r->fd);
  free(r);
}

// ---------------------------------------------------------------------------------------
// helpers

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) return throw_status(env, "ERR_SC_TUN_NAPI"); \
  } while (0)

static tun_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv,
                     int need_open) {
  napi_value this;
  void* data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &this, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, this, &data) != napi_ok || !data) {
    throw_type(env, "not a TunHandle");
    return NULL;
  }
  tun_t* t = data;
  if (need_open && t->fd < 0) {
    throw_errno(env, EBADF, "closed");
    return NULL;
  }
  return t;
}

static void set_self_strong(tun_t* t, int strong) {
  if (strong == t->self_strong || !t->self) return;
  uint32_t n;
  if (strong)
    napi_reference_ref(t->env, t->self, &n);
  else
    napi_reference_unref(t->env, t->self, &n);
  t->self_strong = strong;
}

// The close callback of the poll handle is libc's free(), not a function of this library:
// when a worker thread ends, node unloads the addon before the worker's loop runs the
// close callbacks, so a callback living in this .so would be called after it is unmapped.
// (free(void*) and uv_close_cb(uv_handle_t*) have the same calling convention.)
static uv_close_cb free_poll(void) {
  union {
    void (*free_fn)(void*);
    uv_close_cb cb;
  } u = {free};
  return u.cb;
}

static void drop_read_refs(tun_t* t) {
  napi_env env = t->env;
  if (t->on_batch) napi_delete_reference(env, t->on_batch);
  if (t->rbuf_ref) napi_delete_reference(env, t->rbuf_ref);
  if (t->rmeta_ref) napi_delete_reference(env, t->rmeta_ref);
  t->on_batch = t->rbuf_ref = t->rmeta_ref = NULL;
  t->rbuf = NULL;
  t->rmeta = NULL;
}

static void stop_reading(tun_t* t) {
  if (t->poll && t->reading) uv_poll_stop(t->poll);
  t->reading = 0;
  set_self_strong(t, 0);
}

static void cleanup_hook(void* arg);

// Stops the poll (it must stop before the fd closes), closes the handle and the fd.
// Safe to call twice and from the finalizer or the env cleanup hook.
static void close_tun(tun_t* t, int from_teardown) {
  stop_reading(t);
  if (t->poll) {
    uv_close((uv_handle_t*)t->poll, free_poll());
    t->poll = NULL;
  }
  if (t->fd >= 0) {
    close(t->fd);
    t->fd = -1;
  }
  uring_free(t->ring);
  t->ring = NULL;
  t->use_uring = 0;
  if (!from_teardown) {
    drop_read_refs(t);
    if (t->async_ctx) {
      napi_async_destroy(t->env, t->async_ctx);
      t->async_ctx = NULL;
    }
  }
  if (t->cleanup_hook) {
    napi_remove_env_cleanup_hook(t->env, cleanup_hook, t);
    t->cleanup_hook = 0;
  }
}

// Runs when the environment (main thread or worker) shuts down with the device open.
static void cleanup_hook(void* arg) {
  tun_t* t = arg;
  t->cleanup_hook = 0;  // being run: removing it now is not allowed
  close_tun(t, 1);
}

// Garbage-collected while open (close() was never called): release the fd anyway. The
// async context is left alone: destroying it from a finalizer is not safe at teardown.
static void finalize(napi_env env, void* data, void* hint) {
  tun_t* t = data;
  close_tun(t, 1);
  drop_read_refs(t);
  if (t->self) napi_delete_reference(env, t->self);
  free(t);
}

// ---------------------------------------------------------------------------------------
// open

static int ctl_socket(void) { return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }

// new TunHandle(name: string, multiQueue: boolean, vnetHdr: boolean, exclusive: boolean)
static napi_value tun_new(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], this;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &this, NULL));
  if (argc < 4) return throw_type(env, "TunHandle(name, multiQueue, vnetHdr, exclusive)");
  char name[IFNAMSIZ + 1];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok)
    return throw_type(env, "name must be a string");
  if (len >= IFNAMSIZ) return throw_errno(env, EINVAL, "interface name longer than 15 bytes");
  bool mq = false, vnet = false, excl = false;
  napi_get_value_bool(env, argv[1], &mq);
  napi_get_value_bool(env, argv[2], &vnet);
  napi_get_value_bool(env, argv[3], &excl);

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (mq) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (vnet) ifr.ifr_flags |= IFF_VNET_HDR;
  if (excl) ifr.ifr_flags |= IFF_TUN_EXCL;
  memcpy(ifr.ifr_name, name, len);  // empty name: the kernel picks tunN
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "ioctl TUNSETIFF");
  }

  tun_t* t = calloc(1, sizeof *t);
  if (!t) {
    close(fd);
    return throw_errno(env, ENOMEM, "calloc");
  }
  t->env = env;
  t->fd = fd;
  t->vnet_hdr = vnet;
  t->refed = 1;
  memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
  t->name[IFNAMSIZ - 1] = 0;
  if (napi_wrap(env, this, t, finalize, NULL, &t->self) != napi_ok) {
    close(fd);
    free(t);
    return throw_status(env, "ERR_SC_TUN_NAPI");
  }
  napi_value v, resname;
  napi_create_string_utf8(env, "TunDevice", NAPI_AUTO_LENGTH, &resname);
  napi_async_init(env, this, resname, &t->async_ctx);
  napi_add_env_cleanup_hook(env, cleanup_hook, t);
  t->cleanup_hook = 1;
  napi_create_string_utf8(env, t->name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, this, "name", v);
  napi_create_int32(env, fd, &v);
  napi_set_named_property(env, this, "fd", v);
  return this;
}

// ---------------------------------------------------------------------------------------
// link settings (ioctl on a control socket of this process's network namespace, which is
// the namespace the device was created in)

static napi_value ifreq_get(napi_env env, tun_t* t, unsigned long req, const char* what,
                            struct ifreq* ifr) {
  int s = ctl_socket();
  if (s < 0) return throw_errno(env, errno, "socket");
  memset(ifr, 0, sizeof *ifr);
  memcpy(ifr->ifr_name, t->name, IFNAMSIZ);
  int r = ioctl(s, req, ifr);
  int err = errno;
  close(s);
  if (r < 0) return throw_errno(env, err, what);
  return undefined(env);
}

// The interface's MTU, index and flags (IFF_UP, IFF_RUNNING, ...): one SIOCGIF* query each.
typedef int (*ifreq_field)(const struct ifreq* ifr);
static int field_mtu(const struct ifreq* ifr) { return ifr->ifr_mtu; }
static int field_ifindex(const struct ifreq* ifr) { return ifr->ifr_ifindex; }
static int field_flags(const struct ifreq* ifr) { return (uint16_t)ifr->ifr_flags; }

static napi_value ifreq_query(napi_env env, napi_callback_info info, unsigned long req, const char* what,
                              ifreq_field field) {
  size_t argc = 0;
  tun_t* t = unwrap(env, info, &argc, NULL, 1);
  if (!t) return NULL;
  struct ifreq ifr;
  if (!ifreq_get(env, t, req, what, &ifr)) return NULL;
  napi_value v;
  napi_create_int32(env, field(&ifr), &v);
  return v;
}

static napi_value tun_get_mtu(napi_env env, napi_callback_info info) {
  return ifreq_query(env, info, SIOCGIFMTU, "ioctl SIOCGIFMTU", field_mtu);
}

static napi_value tun_get_ifindex(napi_env env, napi_callback_info info) {
  return ifreq_query(env, info, SIOCGIFINDEX, "ioctl SIOCGIFINDEX", field_ifindex);
}

static napi_value tun_get_flags(napi_env env, napi_callback_info info) {
  return ifreq_query(env, info, SIOCGIFFLAGS, "ioctl SIOCGIFFLAGS", field_flags);
}

// setMtu(mtu): a no-op when the MTU already matches, so attaching to a persistent device
// that is already configured needs no CAP_NET_ADMIN.
static napi_value tun_set_mtu(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  tun_t* t = unwrap(env, info, &argc, argv, 1);
  if (!t) return NULL;
  int32_t mtu;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &mtu) != napi_ok)
    return throw_type(env, "mtu must be a number");
  struct ifreq ifr;
  if (!ifreq_get(env, t, SIOCGIFMTU, "ioctl SIOCGIFMTU", &ifr)) return NULL;
  if (ifr.ifr_mtu == mtu) return undefined(env);
  int s = ctl_socket();
  if (s < 0) return throw_errno(env, errno, "socket");
  ifr.ifr_mtu = mtu;
  int r = ioctl(s, SIOCSIFMTU, &ifr);
  int err = errno;
  close(s);
  if (r < 0) return throw_errno(env, err, "ioctl SIOCSIFMTU");
  return undefined(env);
}

// setUp(up: boolean): sets or clears IFF_UP; a no-op when already in that state.
static napi_value tun_set_up(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  tun_t* t = unwrap(env, info, &argc, argv, 1);
  if (!t) return NULL;
  bool up = true;
  if (argc >= 1) napi_get_value_bool(env, argv[0], &up);
  struct ifreq ifr;
  if (!ifreq_get(env, t, SIOCGIFFLAGS, "ioctl SIOCGIFFLAGS", &ifr)) return NULL;
  if (((ifr.ifr_flags & IFF_UP) != 0) == up) return undefined(env);
  int s = ctl_socket();
  if (s < 0) return throw_errno(env, errno, "socket");
  if (up)
    ifr.ifr_flags |= IFF_UP;
  else
    ifr.ifr_flags &= ~IFF_UP;
  int r = ioctl(s, SIOCSIFFLAGS, &ifr);
  int err = errno;
  close(s);
  if (r < 0) return throw_errno(env, err, "ioctl SIOCSIFFLAGS");
  return undefined(env);
}

// setOffload(flags): TUNSETOFFLOAD with TUN_F_* bits; tells the kernel which offloads this
// reader handles (0: every packet read is complete and checksummed).
static napi_value tun_set_offload(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  tun_t* t = unwrap(env, info, &argc, argv, 1);
  if (!t) return NULL;
  uint32_t flags;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &flags) != napi_ok)
    return throw_type(env, "flags must be a number");
  if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)flags) < 0)
    return throw_errno(env, errno, "ioctl TUNSETOFFLOAD");
  return undefined(env);
}

// setQueueAttached(attached: boolean): TUNSETQUEUE on a multi-queue device's fd. A detached
// queue receives nothing (the kernel spreads packets over the attached ones only) but keeps
// the device alive: the dispatcher's control thread holds one while its workers read.
static napi_value tun_set_queue_attached(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  tun_t* t = unwrap(env, info, &argc, argv, 1);
  if (!t) return NULL;
  bool attached = true;
  if (argc < 1 || napi_get_value_bool(env, argv[0], &attached) != napi_ok)
    return throw_type(env, "attached must be a boolean");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = attached ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
  if (ioctl(t->fd, TUNSETQUEUE, &ifr) < 0) return throw_errno(env, errno, "ioctl TUNSETQUEUE");
  return undefined(env);
}

// ---------------------------------------------------------------------------------------
// reading

static void call_js(tun_t* t, int count, int err) {
  napi_env env = t->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2];
  if (t->on_batch && napi_get_reference_value(env, t->on_batch, &cb) == napi_ok && cb &&
      napi_get_reference_value(env, t->self, &recv) == napi_ok && recv) {
    napi_create_int32(env, count, &argv[0]);
    napi_create_int32(env, err, &argv[1]);
    // make_callback (not call_function): runs the nextTick and microtask queues after the
    // callback, so writes queued "until the end of the tick" are flushed right here.
    if (napi_make_callback(env, t->async_ctx, recv, cb, 2, argv, NULL) == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);  // -> process 'uncaughtException', like any callback
    }
  }
  napi_close_handle_scope(env, scope);
}

// Refreshes the read slot from the device's MTU (io_uring reads have a fixed size).
static void update_slot(tun_t* t) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, t->name, IFNAMSIZ);
  int s = ctl_socket();
  int mtu = 65535;
  if (s >= 0) {
    if (ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0) mtu = ifr.ifr_mtu;
    close(s);
  }
  size_t slot = (size_t)mtu + 1 + (t->vnet_hdr ? sizeof(struct virtio_net_hdr) : 0);
  if (slot < 2048) slot = 2048;
  t->slot = (slot + 7) & ~(size_t)7;
}

// One io_uring round: up to `want` reads into consecutive slots from `off`, submitted and
// completed by one io_uring_enter. Returns how many packets it added at *count (in order);
// *more is set when every read returned a packet (the queue may hold more).
static int uring_round(tun_t* t, size_t* off, int* count, int want, int* more) {
  uring_t* r = t->ring;
  const size_t base = *off;
  const size_t slot = t->slot;  // fixed for the round (update_slot may change t->slot)
  int n = 0;
  unsigned tail = *r->sq_tail;
  while (n < want && *count + n < t->max_batch && t->rbuf_len - base >= (size_t)(n + 1) * slot &&
         (unsigned)n < r->entries) {
    unsigned idx = tail & *r->sq_mask;
    struct io_uring_sqe* sqe = &r->sqes[idx];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_READ;
    sqe->fd = t->fd;
    sqe->addr = (uint64_t)(uintptr_t)(t->rbuf + base + (size_t)n * slot);
    sqe->len = (uint32_t)slot;
    sqe->off = (uint64_t)-1;  // the file position, as read(2) (a TUN fd has none)
    // RWF_NOWAIT: an empty queue completes the read with EAGAIN at once; without it io_uring
    // would park the read until a packet comes (and io_uring_enter would wait for it).
    sqe->rw_flags = RWF_NOWAIT;
    sqe->user_data = (uint64_t)n;
    r->sq_array[idx] = idx;
    tail++;
    n++;
  }
  *more = 0;
  if (n == 0) return 0;
  __atomic_store_n(r->sq_tail, tail, __ATOMIC_RELEASE);
  int ret;
  do ret = (int)syscall(__NR_io_uring_enter, r->fd, (unsigned)n, (unsigned)n, IORING_ENTER_GETEVENTS,
                        NULL, 0);
  while (ret < 0 && errno == EINTR);
  if (ret < 0) {
    // The ring itself failed (not a read): read(2) from now on; the poll fires again.
    t->use_uring = 0;
    return 0;
  }
  // Completions may come in any order in principle: place them by user_data.
  int32_t lens[MAX_BATCH];
  for (int i = 0; i < n; i++) lens[i] = -EAGAIN;
  unsigned head = *r->cq_head;
  int got = 0;
  while (got < n) {
    unsigned ctail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    if (head == ctail) break;  // all n were asked to complete: not expected
    struct io_uring_cqe* cqe = &r->cqes[head & *r->cq_mask];
    if (cqe->user_data < (uint64_t)n) lens[cqe->user_data] = cqe->res;
    head++;
    got++;
  }
  __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
  int err = 0, filled = 0, cut = 0;
  for (int i = 0; i < n; i++) {
    int32_t len = lens[i];
    if (len < 0) {
      if (len != -EAGAIN && !err) err = -len;
      continue;
    }
    filled++;
    if ((size_t)len >= slot) {  // filled the slot: maybe cut short (the MTU grew)
      t->uring_truncated++;
      cut = 1;
      continue;
    }
    // Packed like the read(2) path: move down over the unused room of earlier slots.
    size_t src = base + (size_t)i * slot;
    if (*off != src) memmove(t->rbuf + *off, t->rbuf + src, (size_t)len);
    t->rmeta[2 * *count] = (int32_t)*off;
    t->rmeta[2 * *count + 1] = len;
    (*count)++;
    *off += ((size_t)len + 7) & ~(size_t)7;
  }
  if (cut) update_slot(t);
  *more = filled == n;
  return err;
}

static void on_readable(uv_poll_t* h, int status, int events) {
  (void)events;
  tun_t* t = h->data;
  if (!t || !t->reading || t->fd < 0) return;
  int count = 0, err = 0;
  if (status < 0) {
    err = -status;
  } else if (t->use_uring) {
    size_t off = 0;
    int more = 1;
    int want = t->uring_next;
    while (more && !err && count < t->max_batch) {
      err = uring_round(t, &off, &count, want, &more);
      if (t->rbuf_len - off < t->slot) break;
      want *= 2;
    }
    // Next wake-up: about as many as this one found (at least 4).
    int next = count < 4 ? 4 : count;
    t->uring_next = next > t->max_batch ? t->max_batch : next;
    if (err == EAGAIN) err = 0;
  } else {
    size_t off = 0;
    while (count < t->max_batch && t->rbuf_len - off >= MAX_PACKET) {
      ssize_t n = read(t->fd, t->rbuf + off, MAX_PACKET);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) err = errno;
        break;
      }
      t->rmeta[2 * count] = (int32_t)off;
      t->rmeta[2 * count + 1] = (int32_t)n;
      count++;
      off += ((size_t)n + 7) & ~(size_t)7;  // keep every packet 8-byte aligned
    }
  }
  // A read error other than EAGAIN is fatal for this fd (EBADFD: the device was deleted;
  // the fd would stay readable forever): stop polling before telling JS, never spin.
  if (err) stop_reading(t);
  if (count > 0 || err) call_js(t, count, err);
}

// startReading(buf: ArrayBuffer, meta: Int32Array, maxBatch: number, onBatch(count, errno),
//              ioUring?: boolean): ioUring asks for batched reads through io_uring (only
//              valid when no offloads are taken: every packet fits the MTU).
static napi_value tun_start_reading(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  tun_t* t = unwrap(env, info, &argc, argv, 1);
  if (!t) return NULL;
  if (argc < 4) return throw_type(env, "startReading(buffer, meta, maxBatch, onBatch)");
  bool is_ab = false;
  napi_is_arraybuffer(env, argv[0], &is_ab);
  if (!is_ab) return throw_type(env, "buffer must be an ArrayBuffer");
  void* buf;
  size_t buf_len;
  CHECK(napi_get_arraybuffer_info(env, argv[0], &buf, &buf_len));
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) return throw_type(env, "meta must be an Int32Array");
  napi_typedarray_type type;
  size_t meta_len, meta_off;
  void* meta;
  napi_value meta_ab;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &meta_len, &meta, &meta_ab, &meta_off));
  if (type != napi_int32_array) return throw_type(env, "meta must be an Int32Array");
  int32_t max_batch;
  if (napi_get_value_int32(env, argv[2], &max_batch) != napi_ok || max_batch < 1 ||
      max_batch > MAX_BATCH)
    return throw_type(env, "maxBatch must be 1..1024");
  if (meta_len < 2 * (size_t)max_batch) return throw_type(env, "meta needs 2*maxBatch slots");
  if (buf_len < MAX_PACKET) return throw_type(env, "buffer must hold at least 65545 bytes");
  napi_valuetype ft;
  napi_typeof(env, argv[3], &ft);
  if (ft != napi_function) return throw_type(env, "onBatch must be a function");

  if (!t->poll) {
    uv_loop_t* loop;
    CHECK(napi_get_uv_event_loop(env, &loop));
    t->poll = calloc(1, sizeof *t->poll);
    if (!t->poll) return throw_errno(env, ENOMEM, "calloc");
    int r = uv_poll_init(loop, t->poll, t->fd);
    if (r < 0) {
      free(t->poll);
      t->poll = NULL;
      return throw_errno(env, -r, "uv_poll_init");
    }
    t->poll->data = t;
    if (!t->refed) uv_unref((uv_handle_t*)t->poll);
  }
  stop_reading(t);
  drop_read_refs(t);
  CHECK(napi_create_reference(env, argv[0], 1, &t->rbuf_ref));
  CHECK(napi_create_reference(env, argv[1], 1, &t->rmeta_ref));
  CHECK(napi_create_reference(env, argv[3], 1, &t->on_batch));
  t->rbuf = buf;
  t->rbuf_len = buf_len;
  t->rmeta = meta;
  t->max_batch = max_batch;
  bool want_uring = false;
  if (argc >= 5) napi_get_value_bool(env, argv[4], &want_uring);
  t->use_uring = 0;
  if (want_uring) {
    if (!t->ring) {
      t->ring = calloc(1, sizeof *t->ring);
      if (t->ring && uring_setup(t->ring, 256) != 0) {
        free(t->ring);
        t->ring = NULL;
      }
    }
    if (t->ring) {
      update_slot(t);
      t->use_uring = 1;
      t->uring_next = 4;
    }
  }
  int r = uv_poll_start(t->poll, UV_READABLE, on_readable);
  if (r < 0) {
    drop_read_refs(t);
    return throw_errno(env, -r, "uv_poll_start");
  }
  t->reading = 1;
  set_self_strong(t, 1);
  return undefined(env);
}

// readStats(): [io_uring in use (0/1), reads dropped for filling their slot].
static napi_value tun_read_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t* t = unwrap(env, info, &argc, NULL, 0);
  if (!t) return NULL;
  napi_value arr, v;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_int32(env, t->use_uring, &v);
  napi_set_element(env, arr, 0, v);
  napi_create_double(env, t->uring_truncated, &v);
  napi_set_element(env, arr, 1, v);
  return arr;
}

static napi_value tun_stop_reading(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t* t = unwrap(env, info, &argc, NULL, 0);
  if (!t) return NULL;
  stop_reading(t);
  drop_read_refs(t);
  return undefined(env);
}

static napi_value tun_ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t* t = unwrap(env, info, &argc, NULL, 0);
  if (!t) return NULL;
  t->refed = 1;
  if (t->poll) uv_ref((uv_handle_t*)t->poll);
  return undefined(env);
}

static napi_value tun_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t* t = unwrap(env, info, &argc, NULL, 0);
  if (!t) return NULL;
  t->refed = 0;
  if (t->poll) uv_unref((uv_handle_t*)t->poll);
  return undefined(env);
}

// ---------------------------------------------------------------------------------------
// writing

static void count_failure(double* res, int err) {
  if (err == EAGAIN || err == ENOBUFS)
    res[WR_AGAIN]++;
  else if (err == EINVAL)
    res[WR_INVALID]++;
  else
    res[WR_OTHER]++;
  res[WR_LAST_ERRNO] = err;
}

// Fills the virtio header for one packet. gso_size > 0 asks the kernel to cut an IPv4/TCP
// packet into gso_size-byte segments and to finish the TCP checksums (NEEDS_CSUM): the
// caller leaves the pseudo-header sum over the whole segment in the checksum field.
static int vnet_header(struct virtio_net_hdr* h, const uint8_t* p, size_t len, int gso_size) {
  memset(h, 0, sizeof *h);
  if (gso_size <= 0) return 0;
  if (len < 20 || (p[0] >> 4) != 4 || p[9] != 6) return EINVAL;  // IPv4/TCP only
  size_t ihl = (size_t)(p[0] & 15) * 4;
  if (ihl < 20 || len < ihl + 20) return EINVAL;
  size_t thl = (size_t)(p[ihl + 12] >> 4) * 4;
  if (thl < 20 || len < ihl + thl) return EINVAL;
  h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
  h->hdr_len = (uint16_t)(ihl + thl);
  h->gso_size = (uint16_t)gso_size;
  h->csum_start = (uint16_t)ihl;
  h->csum_offset = 16;  // offsetof(struct tcphdr, check)
  return 0;
}

static int write_one(tun_t* t, const uint8_t* p, size_t len, int gso_size) {
  ssize_t n;
  if (t->vnet_hdr) {
    struct virtio_net_hdr h;
    int bad = vnet_header(&h, p, len, gso_size);
    if (bad) return bad;
    struct iovec iov[2] = {{&h, sizeof h}, {(void*)p, len}};
    do n = writev(t->fd, iov, 2);
    while (n < 0 && errno == EINTR);
  } else {
    if (gso_size > 0) return EINVAL;
    do n = write(t->fd, p, len);
    while (n < 0 && errno == EINTR);
  }
  return n < 0 ? errno : 0;
}

static double* result_array(napi_env env, napi_value v) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return NULL;
  napi_typedarray_type type;
  size_t len, off;
  void* data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off) != napi_ok) return NULL;
  if (type != napi_float64_array || len < WR_SLOTS) return NULL;
  return data;
}

// writePackets(buf: ArrayBuffer, meta: Int32Array, count, result: Float64Array)
// meta holds 4 ints per packet: offset, length, gsoSize (0: plain packet), reserved.
// Adds to result[]: packets, bytes, and the drop counters; never throws per packet.
static napi_value tun_write_packets(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  tun_t* t = unwrap(env, info, &argc, argv, 0);
  if (!t) return NULL;
  if (argc < 4) return throw_type(env, "writePackets(buffer, meta, count, result)");
  void* buf;
  size_t buf_len;
  bool is_ab = false;
  napi_is_arraybuffer(env, argv[0], &is_ab);
  if (!is_ab) return throw_type(env, "buffer must be an ArrayBuffer");
  CHECK(napi_get_arraybuffer_info(env, argv[0], &buf, &buf_len));
  napi_typedarray_type type;
  size_t meta_len, meta_off;
  void* meta_p;
  napi_value meta_ab;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) return throw_type(env, "meta must be an Int32Array");
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &meta_len, &meta_p, &meta_ab, &meta_off));
  if (type != napi_int32_array) return throw_type(env, "meta must be an Int32Array");
  int32_t count;
  if (napi_get_value_int32(env, argv[2], &count) != napi_ok || count < 0 ||
      (size_t)count * 4 > meta_len)
    return throw_type(env, "count out of range for meta");
  double* res = result_array(env, argv[3]);
  if (!res) return throw_type(env, "result must be a Float64Array of 6 slots");
  const int32_t* meta = meta_p;
  const uint8_t* base = buf;
  for (int32_t i = 0; i < count; i++) {
    int32_t off = meta[4 * i], len = meta[4 * i + 1], gso = meta[4 * i + 2];
    if (off < 0 || len <= 0 || (size_t)off + (size_t)len > buf_len) {
      count_failure(res, EINVAL);
      continue;
    }
    if (t->fd < 0) {
      count_failure(res, EBADF);
      continue;
    }
    int err = write_one(t, base + off, (size_t)len, gso);
    if (err) {
      count_failure(res, err);
      continue;
    }
    res[WR_PACKETS]++;
    res[WR_BYTES] += len;
  }
  return undefined(env);
}

// writeList(packets: Uint8Array[], result: Float64Array): writes caller-owned packets
// without copying them (plain packets only).
static napi_value tun_write_list(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  tun_t* t = unwrap(env, info, &argc, argv, 0);
  if (!t) return NULL;
  if (argc < 2) return throw_type(env, "writeList(packets, result)");
  bool is_arr = false;
  napi_is_array(env, argv[0], &is_arr);
  if (!is_arr) return throw_type(env, "packets must be an array of Uint8Array");
  double* res = result_array(env, argv[1]);
  if (!res) return throw_type(env, "result must be a Float64Array of 6 slots");
  uint32_t n;
  CHECK(napi_get_array_length(env, argv[0], &n));
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    CHECK(napi_get_element(env, argv[0], i, &el));
    bool is_ta = false;
    napi_is_typedarray(env, el, &is_ta);
    napi_typedarray_type type;
    size_t len = 0, off;
    void* data = NULL;
    napi_value ab;
    if (!is_ta || napi_get_typedarray_info(env, el, &type, &len, &data, &ab, &off) != napi_ok ||
        type != napi_uint8_array || len == 0) {
      count_failure(res, EINVAL);
      continue;
    }
    if (t->fd < 0) {
      count_failure(res, EBADF);
      continue;
    }
    int err = write_one(t, data, len, 0);
    if (err) {
      count_failure(res, err);
      continue;
    }
    res[WR_PACKETS]++;
    res[WR_BYTES] += (double)len;
  }
  return undefined(env);
}

// ---------------------------------------------------------------------------------------

static napi_value tun_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t* t = unwrap(env, info, &argc, NULL, 0);
  if (!t) return NULL;
  close_tun(t, 0);
  return undefined(env);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"getMtu", NULL, tun_get_mtu, NULL, NULL, NULL, napi_default, NULL},
      {"setMtu", NULL, tun_set_mtu, NULL, NULL, NULL, napi_default, NULL},
      {"getFlags", NULL, tun_get_flags, NULL, NULL, NULL, napi_default, NULL},
      {"setUp", NULL, tun_set_up, NULL, NULL, NULL, napi_default, NULL},
      {"getIfindex", NULL, tun_get_ifindex, NULL, NULL, NULL, napi_default, NULL},
      {"setOffload", NULL, tun_set_offload, NULL, NULL, NULL, napi_default, NULL},
      {"setQueueAttached", NULL, tun_set_queue_attached, NULL, NULL, NULL, napi_default, NULL},
      {"startReading", NULL, tun_start_reading, NULL, NULL, NULL, napi_default, NULL},
      {"stopReading", NULL, tun_stop_reading, NULL, NULL, NULL, napi_default, NULL},
      {"readStats", NULL, tun_read_stats, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, tun_ref, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, tun_unref, NULL, NULL, NULL, napi_default, NULL},
      {"writePackets", NULL, tun_write_packets, NULL, NULL, NULL, napi_default, NULL},
      {"writeList", NULL, tun_write_list, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, tun_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, v;
  if (napi_define_class(env, "TunHandle", NAPI_AUTO_LENGTH, tun_new, NULL,
                        sizeof methods / sizeof methods[0], methods, &cls) != napi_ok)
    return NULL;
  napi_set_named_property(env, exports, "TunHandle", cls);
  napi_create_uint32(env, (uint32_t)MAX_PACKET, &v);
  napi_set_named_property(env, exports, "MAX_PACKET", v);
  napi_create_uint32(env, MAX_BATCH, &v);
  napi_set_named_property(env, exports, "MAX_BATCH", v);
  napi_create_uint32(env, (uint32_t)sizeof(struct virtio_net_hdr), &v);
  napi_set_named_property(env, exports, "VNET_HDR_LEN", v);
  napi_create_uint32(env, TUN_F_CSUM, &v);
  napi_set_named_property(env, exports, "TUN_F_CSUM", v);
  napi_create_uint32(env, TUN_F_TSO4, &v);
  napi_set_named_property(env, exports, "TUN_F_TSO4", v);
  if (sc_sockopt_register(env, exports) != napi_ok) return NULL;
  if (sc_udp_register(env, exports) != napi_ok) return NULL;
  if (sc_aead_register(env, exports) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
