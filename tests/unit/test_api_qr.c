/* Unit tests of the QR code SVG: the path drawn must be exactly libqrencode's dark modules, inside a quiet zone. */
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/internal.h"
#include "test.h"

/* Parses our path ("M<x> <y>h<n>v1h-<n>z"...) into a size x size grid of
 * dark cells; returns the number of runs, or -1 on anything else. */
static int parse_svg(const char *svg, int *size, unsigned char **grid) {
  int s1, s2, consumed = 0;
  if (sscanf(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\"%n", &s1, &s2, &consumed) != 2 ||
      s1 != s2 || s1 <= 0 || consumed == 0)
    return -1;
  *size = s1;
  *grid = calloc((size_t)s1 * (size_t)s1, 1);
  const char *d = strstr(svg, " d=\"");
  if (d == NULL) return -1;
  d += 4;
  int runs = 0;
  while (*d == 'M') {
    int x, y, n, n2, used = 0;
    if (sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &n, &n2, &used) != 4 || used == 0 || n != n2 || n <= 0) return -1;
    if (x < 0 || y < 0 || x + n > s1 || y >= s1) return -1;
    for (int i = 0; i < n; i++) {
      if ((*grid)[y * s1 + x + i]) return -1; /* drawn twice */
      (*grid)[y * s1 + x + i] = 1;
    }
    d += used;
    runs++;
  }
  return strcmp(d, "\"/></svg>\n") == 0 ? runs : -1;
}

static void check_text(const char *text) {
  pz_buf_t out = {0};
  pz_err_t err = {0};
  CHECK_EQ_INT(pz__api_qr_svg(pz_str(text), &out, &err), 0);
  pz_buf_append(&out, "", 1); /* NUL for the parser */
  QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  CHECK(qr != NULL);
  int size = 0;
  unsigned char *grid = NULL;
  int runs = parse_svg(out.data, &size, &grid);
  CHECK(runs > 0);
  if (qr && runs > 0) {
    CHECK_EQ_INT(size, qr->width + 8);
    int wrong = 0;
    for (int y = 0; y < size; y++)
      for (int x = 0; x < size; x++) {
        bool inside = x >= 4 && y >= 4 && x < 4 + qr->width && y < 4 + qr->width;
        bool dark = inside && (qr->data[(y - 4) * qr->width + (x - 4)] & 1);
        if (grid[y * size + x] != dark) wrong++;
      }
    CHECK_EQ_INT(wrong, 0);
  }
  free(grid);
  if (qr) QRcode_free(qr);
  pz_buf_free(&out);
}

static void test_matches_libqrencode(void) {
  check_text("http://127.0.0.1:8080/join/AbCdEfGhIjKlMnOpQrStUv");
  check_text("https://plaza.example.org/join/0123456789-_abcdefghijk");
  check_text("x");
}

static void test_refuses_what_does_not_fit(void) {
  pz_buf_t out = {0};
  pz_err_t err = {0};
  char *big = malloc(4000);
  memset(big, 'a', 3999);
  big[3999] = '\0';
  CHECK_EQ_INT(pz__api_qr_svg(pz_str(big), &out, &err), PZ_EINVAL);
  CHECK_EQ_INT(out.len, 0);
  CHECK_EQ_INT(pz__api_qr_svg(pz_str_n("a\0b", 3), &out, &err), PZ_EINVAL);
  free(big);
  pz_buf_free(&out);
}

int main(void) {
  RUN(test_matches_libqrencode);
  RUN(test_refuses_what_does_not_fit);
  TEST_EXIT();
}
