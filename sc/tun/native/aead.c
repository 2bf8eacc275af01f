// AEAD with a context kept per key (docs/sc-protocol.md "Encryption"): node:crypto builds a
// new cipher object for every message (createCipheriv: ~11 us for a 600-byte SC message here,
// most of it object set-up, not AES), and an SC link seals and opens several small messages
// per clone. An AeadHandle holds one OpenSSL EVP_CIPHER_CTX with its key schedule; each
// message only sets the nonce. The OpenSSL is node's own (its symbols are exported to addons),
// so the bytes are those node:crypto makes (sc/auth/aead.test.ts compares them).
//
// new AeadHandle(cipher, key, encrypt, tagLength)
//   cipher: "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305"; nonces are 12 bytes.
// seal(nonce, aadLength, message, tag): encrypts message[aadLength..] in place, with
//   message[0..aadLength) as associated data, and writes the tag (encrypting handles only).
// open(nonce, aadLength, message, tag) -> boolean: decrypts message[aadLength..] in place if
//   the tag verifies; false leaves the message as it was (decrypting handles only).
// destroy(): frees the context (and with it the key schedule) now rather than at GC.
#include "aead.h"
#include "napi-util.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN 12

typedef struct {
  EVP_CIPHER_CTX* ctx;
  int encrypt;
  int tag_len;
  // Where open() decrypts before the tag is known to be good (grown on demand).
  uint8_t* scratch;
  size_t scratch_len;
} aead_t;

static void aead_free(aead_t* a) {
  if (a->ctx) EVP_CIPHER_CTX_free(a->ctx);  // cleanses the key schedule
  a->ctx = NULL;
  if (a->scratch) {
    memset(a->scratch, 0, a->scratch_len);
    free(a->scratch);
  }
  a->scratch = NULL;
  a->scratch_len = 0;
}

static void finalize(napi_env env, void* data, void* hint) {
  aead_t* a = data;
  aead_free(a);
  free(a);
}

static napi_value throw_crypto(napi_env env, const char* what) {
  napi_throw_error(env, "ERR_SC_AEAD", what);
  return NULL;
}

// A Uint8Array's bytes (any length), or NULL.
static uint8_t* bytes_of(napi_env env, napi_value v, size_t* len) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return NULL;
  napi_typedarray_type type;
  size_t n, off;
  void* data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &n, &data, &ab, &off) != napi_ok) return NULL;
  if (type != napi_uint8_array) return NULL;
  *len = n;
  // An empty array may have no backing store; callers never read from an empty one.
  return data != NULL ? data : (uint8_t*)"";
}

static const EVP_CIPHER* cipher_named(const char* name) {
  if (strcmp(name, "aes-128-gcm") == 0) return EVP_aes_128_gcm();
  if (strcmp(name, "aes-256-gcm") == 0) return EVP_aes_256_gcm();
  if (strcmp(name, "chacha20-poly1305") == 0) return EVP_chacha20_poly1305();
  return NULL;
}

static napi_value aead_new(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], this;
  if (napi_get_cb_info(env, info, &argc, argv, &this, NULL) != napi_ok) return NULL;
  if (argc < 4) return throw_type(env, "AeadHandle(cipher, key, encrypt, tagLength)");
  char name[32];
  size_t name_len;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok)
    return throw_type(env, "cipher: a string");
  const EVP_CIPHER* cipher = cipher_named(name);
  if (!cipher) return throw_type(env, "cipher: aes-128-gcm, aes-256-gcm or chacha20-poly1305");
  size_t key_len = 0;
  const uint8_t* key = bytes_of(env, argv[1], &key_len);
  if (!key || (int)key_len != EVP_CIPHER_key_length(cipher))
    return throw_type(env, "key: a Uint8Array of the cipher's key length");
  bool encrypt;
  if (napi_get_value_bool(env, argv[2], &encrypt) != napi_ok) return throw_type(env, "encrypt: a boolean");
  int32_t tag_len;
  if (napi_get_value_int32(env, argv[3], &tag_len) != napi_ok || tag_len < 4 || tag_len > 16)
    return throw_type(env, "tagLength: 4..16");

  aead_t* a = calloc(1, sizeof *a);
  if (!a) return throw_crypto(env, "out of memory");
  a->encrypt = encrypt;
  a->tag_len = tag_len;
  a->ctx = EVP_CIPHER_CTX_new();
  int enc = encrypt ? 1 : 0;
  if (!a->ctx || EVP_CipherInit_ex(a->ctx, cipher, NULL, NULL, NULL, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
      EVP_CipherInit_ex(a->ctx, NULL, NULL, key, NULL, enc) != 1) {
    aead_free(a);
    free(a);
    return throw_crypto(env, "EVP cipher set-up failed");
  }
  if (napi_wrap(env, this, a, finalize, NULL, NULL) != napi_ok) {
    aead_free(a);
    free(a);
    return NULL;
  }
  return this;
}

static aead_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value this;
  void* data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &this, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, this, &data) != napi_ok || !data) {
    throw_type(env, "not an AeadHandle");
    return NULL;
  }
  aead_t* a = data;
  if (!a->ctx) {
    throw_crypto(env, "AeadHandle destroyed");
    return NULL;
  }
  return a;
}

typedef struct {
  const uint8_t* nonce;
  uint8_t* message;
  size_t message_len;
  size_t aad_len;
  uint8_t* tag;
} aead_args_t;

static bool read_args(napi_env env, napi_value* argv, size_t argc, int tag_len, aead_args_t* out) {
  size_t nonce_len = 0, tag_buf_len = 0;
  int32_t aad;
  if (argc < 4) return false;
  out->nonce = bytes_of(env, argv[0], &nonce_len);
  out->message = bytes_of(env, argv[2], &out->message_len);
  out->tag = bytes_of(env, argv[3], &tag_buf_len);
  if (!out->nonce || nonce_len != NONCE_LEN || !out->message || !out->tag ||
      tag_buf_len != (size_t)tag_len)
    return false;
  if (napi_get_value_int32(env, argv[1], &aad) != napi_ok || aad < 0 || (size_t)aad > out->message_len)
    return false;
  // OpenSSL's lengths are ints.
  if (out->message_len > INT32_MAX) return false;
  out->aad_len = (size_t)aad;
  return true;
}

static napi_value aead_seal(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  aead_t* a = unwrap(env, info, &argc, argv);
  if (!a) return NULL;
  if (!a->encrypt) return throw_crypto(env, "seal() on a decrypting AeadHandle");
  aead_args_t m;
  if (!read_args(env, argv, argc, a->tag_len, &m))
    return throw_type(env, "seal(nonce: 12 bytes, aadLength, message, tag: tagLength bytes)");
  int n;
  uint8_t* body = m.message + m.aad_len;
  int body_len = (int)(m.message_len - m.aad_len);
  if (EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, m.nonce, 1) != 1 ||
      (m.aad_len > 0 && EVP_CipherUpdate(a->ctx, NULL, &n, m.message, (int)m.aad_len) != 1) ||
      (body_len > 0 && EVP_CipherUpdate(a->ctx, body, &n, body, body_len) != 1) ||
      EVP_CipherFinal_ex(a->ctx, body + body_len, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, a->tag_len, m.tag) != 1)
    return throw_crypto(env, "EVP seal failed");
  return undefined(env);
}

static napi_value aead_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  aead_t* a = unwrap(env, info, &argc, argv);
  if (!a) return NULL;
  if (a->encrypt) return throw_crypto(env, "open() on an encrypting AeadHandle");
  aead_args_t m;
  if (!read_args(env, argv, argc, a->tag_len, &m))
    return throw_type(env, "open(nonce: 12 bytes, aadLength, message, tag: tagLength bytes)");
  size_t body_len = m.message_len - m.aad_len;
  if (body_len > a->scratch_len) {
    uint8_t* grown = malloc(body_len);
    if (!grown) return throw_crypto(env, "out of memory");
    if (a->scratch) {
      memset(a->scratch, 0, a->scratch_len);
      free(a->scratch);
    }
    a->scratch = grown;
    a->scratch_len = body_len;
  }
  int n;
  bool ok = EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, m.nonce, 0) == 1 &&
            (m.aad_len == 0 || EVP_CipherUpdate(a->ctx, NULL, &n, m.message, (int)m.aad_len) == 1) &&
            (body_len == 0 ||
             EVP_CipherUpdate(a->ctx, a->scratch, &n, m.message + m.aad_len, (int)body_len) == 1) &&
            EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, a->tag_len, m.tag) == 1 &&
            EVP_CipherFinal_ex(a->ctx, a->scratch + body_len, &n) == 1;
  // Only verified plaintext reaches the caller's buffer.
  if (ok && body_len > 0) memcpy(m.message + m.aad_len, a->scratch, body_len);
  if (body_len > 0) memset(a->scratch, 0, body_len);
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value aead_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value this;
  void* data = NULL;
  if (napi_get_cb_info(env, info, &argc, NULL, &this, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, this, &data) != napi_ok || !data) return throw_type(env, "not an AeadHandle");
  aead_free(data);
  return undefined(env);
}

napi_status sc_aead_register(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"seal", NULL, aead_seal, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, aead_open, NULL, NULL, NULL, napi_default, NULL},
      {"destroy", NULL, aead_destroy, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  napi_status s = napi_define_class(env, "AeadHandle", NAPI_AUTO_LENGTH, aead_new, NULL,
                                    sizeof methods / sizeof methods[0], methods, &cls);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, "AeadHandle", cls);
}
