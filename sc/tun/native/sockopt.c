// setSocketPriority(fd, tos, priority) -> 0 or an errno; getSocketPriority(fd) -> [tos, priority]
// or a negative errno in slot 0. Errors are returned, never thrown: marking is best effort and
// the caller counts a failure once (sc/net/priority.ts). The fd belongs to node (libuv); we only
// set options on it, never close it.
#define _GNU_SOURCE
#include "sockopt.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

// IPv4 sockets take IP_TOS, IPv6 ones IPV6_TCLASS (the same byte: DSCP << 2 | ECN).
static int tos_level(int fd, int* level, int* name) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return errno;
  if (domain == AF_INET) {
    *level = IPPROTO_IP;
    *name = IP_TOS;
  } else if (domain == AF_INET6) {
    *level = IPPROTO_IPV6;
    *name = IPV6_TCLASS;
  } else {
    return EAFNOSUPPORT;
  }
  return 0;
}

static int get_int_arg(napi_env env, napi_value v, int32_t* out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static napi_value set_socket_priority(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  int32_t fd, tos, prio;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      !get_int_arg(env, argv[0], &fd) || !get_int_arg(env, argv[1], &tos) ||
      !get_int_arg(env, argv[2], &prio)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setSocketPriority(fd, tos, priority): integers");
    return NULL;
  }
  int err = 0, level = 0, name = 0;
  if (fd < 0) err = EBADF;
  if (!err) err = tos_level(fd, &level, &name);
  if (!err && setsockopt(fd, level, name, &tos, sizeof tos) != 0) err = errno;
  // After IP_TOS: the kernel derives sk_priority from the TOS byte when it is set.
  if (!err && setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio) != 0) err = errno;
  napi_create_int32(env, err, &result);
  return result;
}

static napi_value get_socket_priority(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr, v;
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      !get_int_arg(env, argv[0], &fd)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getSocketPriority(fd): an integer");
    return NULL;
  }
  int tos = 0, prio = 0, err = 0, level = 0, name = 0;
  socklen_t len = sizeof tos;
  err = fd < 0 ? EBADF : tos_level(fd, &level, &name);
  if (!err && getsockopt(fd, level, name, &tos, &len) != 0) err = errno;
  len = sizeof prio;
  if (!err && getsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, &len) != 0) err = errno;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_int32(env, err ? -err : tos, &v);
  napi_set_element(env, arr, 0, v);
  napi_create_int32(env, err ? 0 : prio, &v);
  napi_set_element(env, arr, 1, v);
  return arr;
}

napi_status sc_sockopt_register(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"setSocketPriority", NULL, set_socket_priority, NULL, NULL, NULL, napi_default, NULL},
      {"getSocketPriority", NULL, get_socket_priority, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
