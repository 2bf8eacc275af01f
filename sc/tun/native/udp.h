// Batched UDP with GUE decapsulation/encapsulation (udp.c, docs/tun.md "Batched UDP").
#pragma once
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

// Adds the UdpHandle class, gueDecapBatch and the UDP_* constants to the addon's exports.
napi_status sc_udp_register(napi_env env, napi_value exports);

// The GUE decapsulation of one UDP payload (0: valid, else a drop code, see udp.c).
int sc_gue_decap(const uint8_t* p, size_t len, size_t* inner_off, size_t* inner_len);
