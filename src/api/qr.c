/* QR codes as SVG: libqrencode gives the modules, we draw each row's runs of dark modules as one compact path. */
#include <errno.h>
#include <qrencode.h>
#include "api/internal.h"

#define QUIET_ZONE 4 /* modules of white around the code, as the standard asks */

int pz__api_qr_svg(pz_str_t text, pz_buf_t *out, pz_err_t *err) {
  int rc = 0;
  QRcode *qr = NULL;
  char *cstr = pz_malloc(text.len + 1);
  memcpy(cstr, text.ptr, text.len);
  cstr[text.len] = '\0';
  if (memchr(text.ptr, '\0', text.len) != NULL) {
    rc = pz_err_set(err, PZ_EINVAL, NULL, "a QR code cannot hold a NUL byte");
    goto out;
  }
  /* Level M restores up to 15% of a damaged or badly lit code: the usual
   * choice for a link shown on a screen or printed. */
  qr = QRcode_encodeString(cstr, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  if (qr == NULL) {
    rc = errno == ENOMEM ? pz_err_set(err, PZ_ENOMEM, NULL, NULL)
                         : pz_err_set(err, PZ_EINVAL, NULL, "the text is too long for a QR code");
    goto out;
  }
  int w = qr->width, size = w + 2 * QUIET_ZONE;
  pz_buf_printf(out,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">"
                "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                size, size, size, size);
  for (int y = 0; y < w; y++) {
    const unsigned char *row = qr->data + (size_t)y * (size_t)w;
    for (int x = 0; x < w;) {
      if (!(row[x] & 1)) {
        x++;
        continue;
      }
      int run = 1;
      while (x + run < w && (row[x + run] & 1))
        run++;
      pz_buf_printf(out, "M%d %dh%dv1h-%dz", x + QUIET_ZONE, y + QUIET_ZONE, run, run);
      x += run;
    }
  }
  pz_buf_append_c(out, "\"/></svg>\n");
out:
  if (qr) QRcode_free(qr);
  pz_free(cstr);
  return rc;
}
