/* SHA-1 for the WebSocket handshake: FIPS 180 vectors, every padding boundary, and RFC 6455's accept key. */
#include <sodium.h>
#include "net/net_internal.h"
#include "test.h"

static void hex(const uint8_t d[20], char out[41]) {
  for (int i = 0; i < 20; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void sha1_hex(const void *data, size_t len, char out[41]) {
  uint8_t d[20];
  pz__sha1(data, len, d);
  hex(d, out);
}

static void test_fips_vectors(void) {
  char h[41];
  sha1_hex("", 0, h);
  CHECK_EQ_STR(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  sha1_hex("abc", 3, h);
  CHECK_EQ_STR(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha1_hex(two, strlen(two), h);
  CHECK_EQ_STR(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  char *million = malloc(1000000);
  memset(million, 'a', 1000000);
  sha1_hex(million, 1000000, h);
  CHECK_EQ_STR(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  free(million);
}

/* Lengths around 55/56 and 64 bytes change how the padding is laid out. */
static void test_padding_boundaries(void) {
  static const struct {
    size_t n;
    const char *want;
  } cases[] = {
      {55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},  {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
      {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},  {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
      {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},  {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"},
      {120, "f34c1488385346a55709ba056ddd08280dd4c6d6"}, {128, "ad5b3fdbcb526778c2839d2f151ea753995e26a0"},
  };
  char buf[128], h[41];
  memset(buf, 'a', sizeof(buf));
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    sha1_hex(buf, cases[i].n, h);
    CHECK_EQ_STR(h, cases[i].want);
  }
}

/* RFC 6455 section 1.3 works this example through: its SHA-1 bytes are
 * b3 7a 4f 2c ... c4 ea and the accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=. */
static void test_rfc6455_accept(void) {
  const char *in = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  uint8_t d[20];
  pz__sha1(in, strlen(in), d);
  char b64[sodium_base64_ENCODED_LEN(20, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(b64, sizeof(b64), d, sizeof(d), sodium_base64_VARIANT_ORIGINAL);
  CHECK_EQ_STR(b64, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

int main(void) {
  RUN(test_fips_vectors);
  RUN(test_padding_boundaries);
  RUN(test_rfc6455_accept);
  TEST_EXIT();
}
