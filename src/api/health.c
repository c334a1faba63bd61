/* GET /healthz for load balancers and GET /metrics for Prometheus. */
#include "api/internal.h"
#include "plaza/metrics.h"

static void healthz(pz_req_t *req) {
  static const char body[] = "{\"status\":\"ok\"}";
  pz_req_add_header(req, "Cache-Control", "no-store");
  pz_req_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

static void metrics(pz_req_t *req) {
  pz_buf_t out = {0};
  pz_metrics_render(&out);
  pz_req_add_header(req, "Cache-Control", "no-store");
  pz_req_respond(req, 200, "text/plain; version=0.0.4", out.data, out.len);
  pz_buf_free(&out);
}

void pz__api_health_routes(pz_api_t *api, pz_router_t *r) {
  pz_router_add(r, PZ_HTTP_GET | PZ_HTTP_HEAD, "/healthz", healthz, api);
  pz_router_add(r, PZ_HTTP_GET, "/metrics", metrics, api);
}
