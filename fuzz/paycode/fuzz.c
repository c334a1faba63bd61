/* libFuzzer: arbitrary bytes through the payment-code parser and the webhook URL parser; what parses must round-trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/httpc.h"
#include "plaza/merchant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pz_str_t s = pz_str_n((const char *)data, size);
  pz_paycode_t pc;
  pz_err_t err = {0};
  if (pz_paycode_parse(s, &pc, &err) == 0) {
    /* A code that parses is exactly the code we would write for it. */
    char out[PZ_PAYCODE_MAX + 1];
    size_t n = pc.kind == PZ_PAYCODE_MERCHANT ? pz_paycode_merchant(pc.merchant_id, out)
                                              : pz_paycode_order(pc.order_code, out);
    if (n != size || memcmp(out, data, size) != 0) abort();
  } else if (err.code != PZ_EINVAL) {
    abort();
  }
  pz_httpc_url_t u;
  err = (pz_err_t){0};
  if (pz_httpc_url_parse(s, &u, &err) == 0) {
    if (u.host[0] == '\0' || u.port == 0 || u.path[0] != '/' || strlen(u.path) > PZ_HTTPC_URL_MAX) abort();
    /* A bracketed host is an IPv6 address, never a name. */
    int pub = pz_httpc_host_public(&u);
    if (pub < -1 || pub > 1 || (u.ipv6 && pub == -1)) abort();
  } else if (err.code != PZ_EINVAL) {
    abort();
  }
  return 0;
}
