/* Session tokens: 256 random bits for the client, a BLAKE2b hash of them for the database. */
#include <sodium.h>
#include "plaza/auth.h"

#define TOKEN_RAW_BYTES 32

_Static_assert(sodium_base64_ENCODED_LEN(TOKEN_RAW_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                   PZ_TOKEN_LEN + 1,
               "PZ_TOKEN_LEN must fit 32 bytes of base64url");

static void hash_token(const char *token, size_t len, uint8_t hash[PZ_TOKEN_HASH_LEN]) {
  /* A plain hash is enough: the token has 256 bits of entropy, so unlike
   * a password it cannot be guessed from its hash by trying candidates. */
  crypto_generichash(hash, PZ_TOKEN_HASH_LEN, (const unsigned char *)token, len, NULL, 0);
}

void pz_auth_token_new(char token[PZ_TOKEN_LEN + 1], uint8_t hash[PZ_TOKEN_HASH_LEN]) {
  unsigned char raw[TOKEN_RAW_BYTES];
  randombytes_buf(raw, sizeof(raw));
  sodium_bin2base64(token, PZ_TOKEN_LEN + 1, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof(raw));
  hash_token(token, PZ_TOKEN_LEN, hash);
}

int pz_auth_token_hash(pz_str_t token, uint8_t hash[PZ_TOKEN_HASH_LEN]) {
  if (token.len != PZ_TOKEN_LEN) return PZ_EUNAUTH;
  for (size_t i = 0; i < token.len; i++) {
    char c = token.ptr[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return PZ_EUNAUTH;
  }
  hash_token(token.ptr, token.len, hash);
  return 0;
}
