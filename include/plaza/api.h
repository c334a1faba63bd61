/* The HTTP API: registers every /v1 route, /healthz, /metrics and /v1/ws on a server. */
#ifndef PLAZA_API_H
#define PLAZA_API_H

#include <stdbool.h>
#include <uv.h>
#include "plaza/net.h"
#include "plaza/store.h"

typedef struct pz_api_s pz_api_t;

typedef struct pz_api_config_s {
  /* Failed log-ins allowed per account and per client address in a window
   * before 429; zero fields take defaults (5 per account, 20 per address,
   * window 15 minutes). */
  unsigned login_fail_per_account;
  unsigned login_fail_per_addr;
  unsigned login_window_s;
  /* Messages a user may send per second (HTTP and WebSocket together),
   * with bursts of 2.5 times that (at least 50); zero takes the default,
   * 20. msg_unlimited lifts the limit, for load tests on loopback. */
  unsigned msg_rate;
  bool msg_unlimited;
  /* The operator's token for /v1/admin (borrowed for pz_api_new only: the
   * api keeps its hash); NULL or empty leaves the admin routes answering 404. */
  const char *admin_token;
  /* The wallet's configuration (borrowed; outlives the api), or NULL to
   * serve no /v1/wallet routes. */
  const struct pz_wallet_config_s *wallet;
  /* Lets merchants' webhooks go to loopback and private addresses (a shop
   * on the same host or network). Off, those are refused: a webhook URL
   * is a user's input, and must not make the server call the services of
   * its own network. */
  bool private_webhooks;
  /* How long events stay in the users' streams (ms); a device that asks
   * for events older than that is told to reload (410 events_expired).
   * 0 keeps them forever. */
  int64_t event_retention_ms;
} pz_api_config_t;

/* Registers the routes on srv's router. loop, srv and st are borrowed and
 * must outlive the api. Loop thread. Caller frees with pz_api_free after the
 * server has shut down and before pz_store_close. */
int pz_api_new(pz_api_t **out, uv_loop_t *loop, pz_server_t *srv, pz_store_t *st,
               const pz_api_config_t *cfg, pz_err_t *err);
void pz_api_free(pz_api_t *api);

#endif
