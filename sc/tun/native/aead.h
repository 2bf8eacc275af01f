// AEAD contexts kept per key for the SC links (aead.c, docs/sc-protocol.md "Encryption").
#pragma once
#include <node_api.h>

// Adds the AeadHandle class to the addon's exports.
napi_status sc_aead_register(napi_env env, napi_value exports);
