{
  "targets": [
    {
      "target_name": "sc_tun",
      "sources": ["tun.c", "sockopt.c", "udp.c", "aead.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
