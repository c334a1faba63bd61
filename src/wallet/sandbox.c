/* The sandbox funding provider: answers every top-up and withdrawal on the loop, at once or after a delay, or fails
 * them. */
#include <stdio.h>
#include "plaza/wallet.h"

typedef struct {
  pz_wallet_provider_t base;
  uv_loop_t *loop;
  unsigned delay_ms;
  bool fail;
} sandbox_t;

typedef struct {
  uv_timer_t timer;
  pz_wallet_funding_req_t *req;
  bool fail;
} call_t;

static void call_free(uv_handle_t *h) { pz_free(h->data); }

static void answer(uv_timer_t *t) {
  call_t *c = t->data;
  pz_wallet_funding_req_t *req = c->req;
  if (c->fail) {
    req->rc = PZ_EUNAVAIL;
    snprintf(req->reason, sizeof(req->reason), "the sandbox provider was told to fail");
  } else {
    req->rc = 0;
    /* The funding id is the provider's idempotency key: asking again
     * after a crash gives the same reference. */
    snprintf(req->provider_ref, sizeof(req->provider_ref), "sandbox-%lld", (long long)req->id);
  }
  uv_close((uv_handle_t *)t, call_free);
  req->done(req);
}

/* Answers later, never from inside the call, as the interface promises. */
static int start(void *state, pz_wallet_funding_req_t *req) {
  sandbox_t *s = state;
  call_t *c = pz_calloc(1, sizeof(*c));
  c->req = req;
  c->fail = s->fail;
  uv_timer_init(s->loop, &c->timer);
  c->timer.data = c;
  uv_timer_start(&c->timer, answer, s->delay_ms, 0);
  return 0;
}

pz_wallet_provider_t *pz_wallet_sandbox_new(uv_loop_t *loop, unsigned delay_ms, bool fail) {
  sandbox_t *s = pz_calloc(1, sizeof(*s));
  s->base.name = "sandbox";
  s->base.state = s;
  s->base.topup = start;
  s->base.withdraw = start;
  s->loop = loop;
  s->delay_ms = delay_ms;
  s->fail = fail;
  return &s->base;
}

void pz_wallet_sandbox_free(pz_wallet_provider_t *p) {
  if (p) pz_free(p->state);
}
