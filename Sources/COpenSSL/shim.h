#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>

/* OpenSSL spells these as macros over SSL_CTX_ctrl, which Swift does not import. */

static inline int copenssl_ctx_set_protocol_range(SSL_CTX *ctx, int min_version, int max_version) {
    return SSL_CTX_set_min_proto_version(ctx, min_version) && SSL_CTX_set_max_proto_version(ctx, max_version);
}

static inline long copenssl_ctx_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

static inline long copenssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

static inline int copenssl_ctx_set_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

static inline long copenssl_ctx_set_dh_auto(SSL_CTX *ctx, int on) {
    return SSL_CTX_set_dh_auto(ctx, on);
}

/* No compression (CRIME), no renegotiation, no session tickets (no ticket key to rotate); the
   server's cipher order, except that a client preferring ChaCha20 (no AES hardware) gets it. */
static inline uint64_t copenssl_server_options(void) {
    return SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET
        | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA;
}

static inline int copenssl_version_tls12(void) { return TLS1_2_VERSION; }
static inline int copenssl_version_tls13(void) { return TLS1_3_VERSION; }

#endif
