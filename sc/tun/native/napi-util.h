// What every part of the addon (tun.c, udp.c, aead.c) reports errors to JavaScript with: one
// copy, static inline, so each file keeps its own error code for a failed N-API call.
#pragma once

#include <node_api.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

// Throws the last N-API failure as an Error with `code` (unless an exception is already
// pending); returns NULL, what a callback returns after a throw.
static inline napi_value throw_status(napi_env env, const char* code) {
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending)
    napi_throw_error(env, code, info && info->error_message ? info->error_message : "N-API call failed");
  return NULL;
}

static inline napi_value throw_type(napi_env env, const char* msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

// Throws an Error shaped like node's system errors: code ("ENOENT"), errno, syscall.
static inline napi_value throw_errno(napi_env env, int err, const char* syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value m, code, e, no, sc;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &e);
  napi_create_int32(env, err, &no);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, e, "code", code);
  napi_set_named_property(env, e, "errno", no);
  napi_set_named_property(env, e, "syscall", sc);
  napi_throw(env, e);
  return NULL;
}

static inline napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}
