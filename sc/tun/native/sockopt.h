// Socket marking for sc/net/priority.ts: DSCP (IP_TOS / IPV6_TCLASS) and SO_PRIORITY on a
// socket fd that node:net or node:dgram owns (docs/deployment.md, "SC traffic first").
#pragma once
#include <node_api.h>

// Adds setSocketPriority and getSocketPriority to the addon's exports.
napi_status sc_sockopt_register(napi_env env, napi_value exports);
