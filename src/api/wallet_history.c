/* /v1/wallet/limits, the filtered history (JSON and a CSV export) and monthly statements. */
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"

/* Rows in one CSV export: about 15 MB of text at most, built in memory. */
#define PZ_WALLET_CSV_MAX_ROWS 100000
/* The longest type filter: every kind name, comma-separated, fits with room to spare. */
#define PZ_WALLET_TYPE_FILTER_MAX 512

/* ---- CSV ---- */

void pz__api_csv_field(pz_buf_t *b, const char *s, size_t len) {
  /* A spreadsheet runs a cell that starts with = + - @ (or a tab or CR
   * before one) as a formula: such text written by someone else gets a
   * leading ' and shows as typed (OWASP's advice on CSV injection). */
  bool formula = len > 0 && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
  bool quote = false;
  for (size_t i = 0; i < len && !quote; i++)
    quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
  if (quote) pz_buf_append(b, "\"", 1);
  if (formula) pz_buf_append(b, "'", 1);
  size_t from = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '"') continue;
    /* RFC 4180: a quote inside a quoted field is doubled. */
    pz_buf_append(b, s + from, i + 1 - from);
    pz_buf_append(b, "\"", 1);
    from = i + 1;
  }
  pz_buf_append(b, s + from, len - from);
  if (quote) pz_buf_append(b, "\"", 1);
}

static void csv_text(pz_buf_t *b, const char *s) { pz__api_csv_field(b, s, strlen(s)); }

static void csv_amount(pz_buf_t *b, int64_t amount, const char *currency) {
  char num[32];
  /* Our own digits: a leading minus is a negative number, not a formula. */
  pz_buf_append(b, num, pz_wallet_amount_format(amount, currency, num));
}

static void csv_id(pz_buf_t *b, int64_t id) {
  char num[24];
  if (id) pz_buf_append(b, num, pz_id_format(id, num));
}

/* ---- the request context ---- */

typedef struct {
  pz__api_ctx_t base;
  const pz_wallet_config_t *cfg;
  int64_t me, now;
  pz_wallet_history_q_t q;
  json_t *list;
  unsigned n_listed;
  int64_t last_id;
  pz_buf_t csv;  /* the CSV answer, built in the job */
  pz_buf_t rows; /* statement rows (pz_wallet_statement_row_t), in store order */
  char filename[80];
  int64_t start_ms, end_ms;
  char month[8];
} hist_ctx_t;

static void hist_ctx_release(void *data) {
  hist_ctx_t *c = data;
  pz_buf_free(&c->csv);
  pz_buf_free(&c->rows);
}

static hist_ctx_t *hist_ctx_new(pz_req_t *req, pz_store_run_fn run) {
  hist_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->cfg = c->base.api->wallet;
  c->me = req->user_id;
  c->now = pz_now_ms();
  pz_arena_on_reset(req->arena, hist_ctx_release, c);
  return c;
}

/* Answers with the CSV the job built, as a download. */
static void csv_done(pz__api_ctx_t *base) {
  hist_ctx_t *c = (hist_ctx_t *)base;
  pz_req_t *req = base->req;
  if (base->job.rc < 0) {
    pz__api_fail(req, &base->job.err);
    return;
  }
  char disposition[128];
  snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s\"", c->filename);
  pz_req_add_header(req, "Content-Disposition", disposition);
  pz_req_add_header(req, "Cache-Control", "no-store");
  pz_req_respond(req, 200, "text/csv; charset=utf-8", c->csv.data, c->csv.len);
}

/* ---- GET /v1/wallet/limits ---- */

static int limits_run(pz_db_t *db, pz_store_job_t *job) {
  hist_ctx_t *c = job->data;
  json_t *list = json_array();
  c->base.out = json_pack("{s:o}", "limits", list);
  pz_wallet_allowance_t a = {0};
  for (unsigned i = 0; i < c->cfg->currencies.n; i++) {
    const char *cur = c->cfg->currencies.codes[i];
    int rc = pz_wallet_allowance(db, c->me, cur, c->now, &a, &job->err);
    if (rc < 0) return rc;
    json_array_append_new(
        list, json_pack("{s:s,s:o,s:I,s:o}", "currency", cur, "daily", a.daily ? json_integer(a.daily) : json_null(),
                        "used_today", (json_int_t)a.used, "remaining",
                        a.remaining < 0 ? json_null() : json_integer(a.remaining)));
  }
  json_object_set_new(c->base.out, "tier", json_integer(a.tier));
  json_object_set_new(c->base.out, "resets_at", pz__api_time_json(a.resets_at));
  return 0;
}

static void limits_authed(pz_req_t *req) { pz__api_read(&hist_ctx_new(req, limits_run)->base); }

/* ---- the filters of GET /v1/wallet/transactions and its CSV ---- */

/* ?type=a,b: known kind names only, kept as ",a,b," for the store. */
static int type_filter(pz_req_t *req, pz_wallet_history_q_t *q, pz_err_t *err) {
  pz_str_t v;
  if (!pz_req_query(req, "type", &v)) return 0;
  if (v.len == 0 || v.len > PZ_WALLET_TYPE_FILTER_MAX) goto bad;
  pz_buf_t b = {0};
  pz_buf_append(&b, ",", 1);
  size_t start = 0;
  for (size_t i = 0; i <= v.len; i++) {
    if (i < v.len && v.ptr[i] != ',') continue;
    pz_str_t name = pz_str_n(v.ptr + start, i - start);
    bool known = false;
    for (int k = 0; k < PZ_TXN__COUNT && !known; k++)
      known = pz_str_eq_c(name, pz_store_wallet_txn_name(k));
    if (!known) {
      pz_buf_free(&b);
      goto bad;
    }
    pz_buf_append_str(&b, name);
    pz_buf_append(&b, ",", 1);
    start = i + 1;
  }
  q->kinds = pz_arena_strndup(req->arena, b.data, b.len);
  pz_buf_free(&b);
  return 0;
bad:;
  /* The message lists the kinds this server knows, as a client would need them. */
  pz_buf_t names = {0};
  for (int k = 0; k < PZ_TXN__COUNT; k++)
    pz_buf_printf(&names, "%s%s", k ? ", " : "", pz_store_wallet_txn_name(k));
  pz_buf_append(&names, "", 1);
  pz_err_set(err, PZ_EINVAL, NULL, "type must be one or more of: %s", names.data);
  pz_buf_free(&names);
  return PZ_EINVAL;
}

static int date_filter(pz_req_t *req, const char *key, int64_t *out, pz_err_t *err) {
  pz_str_t v;
  if (!pz_req_query(req, key, &v)) return 1;
  if (pz_wallet_date_parse(v, out) < 0)
    return pz_err_set(err, PZ_EINVAL, NULL, "%s must be a date, YYYY-MM-DD (UTC)", key);
  return 0;
}

/* Decodes currency, type, from, to and before into c->q; limit is the caller's. */
static int history_filters(pz_req_t *req, hist_ctx_t *c, pz_err_t *err) {
  pz_wallet_history_q_t *q = &c->q;
  pz_str_t v;
  q->user_id = c->me;
  q->from_ms = INT64_MIN;
  q->to_ms = INT64_MAX;
  if (pz_req_query(req, "currency", &v) && pz_wallet_currency_check(&c->cfg->currencies, v, q->currency, err) < 0)
    return err->code;
  if (type_filter(req, q, err) < 0) return err->code;
  int rc = date_filter(req, "from", &q->from_ms, err);
  if (rc < 0) return rc;
  int64_t to = 0;
  if ((rc = date_filter(req, "to", &to, err)) < 0) return rc;
  if (rc == 0) q->to_ms = to + PZ_WALLET_DAY_MS; /* the whole of that day */
  if (q->from_ms >= q->to_ms) return pz_err_set(err, PZ_EINVAL, NULL, "from must not be after to");
  if (pz_req_query(req, "before", &v) && pz_id_parse(v.ptr, v.len, &q->before) < 0)
    return pz_err_set(err, PZ_EINVAL, NULL, "before must be an id");
  return 0;
}

/* ---- GET /v1/wallet/transactions ---- */

static json_t *counterparty_json(const pz_wallet_history_row_t *r) {
  if (r->e.counterparty_id == 0) return json_null();
  json_t *o = json_object();
  json_object_set_new(o, "type", json_string("user"));
  json_object_set_new(o, "id", pz__api_id_json(r->e.counterparty_id));
  json_object_set_new(o, "username", pz__api_text(r->counterparty_username));
  json_object_set_new(o, "display_name", pz__api_text(r->counterparty_name));
  return o;
}

static int history_row(void *arg, const pz_wallet_history_row_t *r, pz_err_t *err) {
  hist_ctx_t *c = arg;
  const pz_wallet_entry_view_t *e = &r->e;
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(e->txn_id));
  json_object_set_new(o, "type", json_string(pz_store_wallet_txn_name(e->kind)));
  json_object_set_new(o, "amount", json_integer(e->amount));
  json_object_set_new(o, "currency", json_string(e->currency));
  json_object_set_new(o, "ref_id", pz__api_id_json(e->ref_id));
  json_object_set_new(o, "counterparty_id", e->counterparty_id ? pz__api_id_json(e->counterparty_id) : json_null());
  json_object_set_new(o, "counterparty", counterparty_json(r));
  json_object_set_new(o, "note", pz__api_text(r->note));
  json_object_set_new(o, "created_at", pz__api_time_json(e->created_at));
  json_array_append_new(c->list, o);
  c->last_id = e->txn_id;
  c->n_listed++;
  return 0;
}

static int history_run(pz_db_t *db, pz_store_job_t *job) {
  hist_ctx_t *c = job->data;
  c->list = json_array();
  c->base.out = json_pack("{s:o}", "transactions", c->list);
  int rc = pz_store_wallet_history(db, &c->q, history_row, c, &job->err);
  if (rc < 0) return rc;
  json_object_set_new(c->base.out, "next_before",
                      c->n_listed == c->q.limit ? pz__api_id_json(c->last_id) : json_null());
  return 0;
}

static void history_authed(pz_req_t *req) {
  pz_err_t err = {0};
  pz_str_t v;
  hist_ctx_t *c = hist_ctx_new(req, history_run);
  if (history_filters(req, c, &err) < 0) goto fail;
  c->q.limit = PZ_WALLET_LIST_DEFAULT;
  if (pz_req_query(req, "limit", &v)) {
    uint64_t n = 0;
    bool ok = v.len > 0 && v.len <= 9;
    for (size_t i = 0; ok && i < v.len; i++) {
      ok = v.ptr[i] >= '0' && v.ptr[i] <= '9';
      n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    if (!ok || n == 0) {
      pz_err_set(&err, PZ_EINVAL, NULL, "limit must be a whole number from 1 to %u", PZ_WALLET_LIST_MAX);
      goto fail;
    }
    c->q.limit = n > PZ_WALLET_LIST_MAX ? PZ_WALLET_LIST_MAX : (unsigned)n;
  }
  pz__api_read(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- GET /v1/wallet/transactions.csv ---- */

static int csv_row(void *arg, const pz_wallet_history_row_t *r, pz_err_t *err) {
  hist_ctx_t *c = arg;
  const pz_wallet_entry_view_t *e = &r->e;
  if (++c->n_listed > PZ_WALLET_CSV_MAX_ROWS)
    return pz_err_set(err, PZ_EUNPROCESSABLE, "export_too_large",
                      "more than %d transactions match: export a shorter time span (from, to)", PZ_WALLET_CSV_MAX_ROWS);
  pz_buf_t *b = &c->csv;
  char when[32];
  pz_time_format(e->created_at, when);
  pz_buf_append_c(b, when);
  pz_buf_append(b, ",", 1);
  csv_text(b, pz_store_wallet_txn_name(e->kind));
  pz_buf_append(b, ",", 1);
  csv_amount(b, e->amount, e->currency);
  pz_buf_append(b, ",", 1);
  csv_text(b, e->currency);
  pz_buf_append(b, ",", 1);
  csv_text(b, r->counterparty_username);
  pz_buf_append(b, ",", 1);
  csv_text(b, r->counterparty_name);
  pz_buf_append(b, ",", 1);
  csv_text(b, r->note);
  pz_buf_append(b, ",", 1);
  csv_id(b, e->txn_id);
  pz_buf_append(b, ",", 1);
  csv_id(b, e->ref_id);
  pz_buf_append(b, "\r\n", 2);
  return 0;
}

static int csv_run(pz_db_t *db, pz_store_job_t *job) {
  hist_ctx_t *c = job->data;
  pz_buf_append_c(&c->csv,
                  "date,type,amount,currency,counterparty,counterparty_name,note,transaction_id,reference_id\r\n");
  return pz_store_wallet_history(db, &c->q, csv_row, c, &job->err);
}

static void csv_authed(pz_req_t *req) {
  pz_err_t err = {0};
  hist_ctx_t *c = hist_ctx_new(req, csv_run);
  if (history_filters(req, c, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  /* One more than allowed, to tell a full export from one cut short. */
  c->q.limit = PZ_WALLET_CSV_MAX_ROWS + 1;
  char today[11];
  pz_wallet_date_format(c->now, today);
  snprintf(c->filename, sizeof(c->filename), "plaza-transactions-%s.csv", today);
  c->base.done = csv_done;
  pz__api_read(&c->base);
}

/* ---- GET /v1/wallet/statements/{YYYY-MM}[.csv] ---- */

static int statement_row(void *arg, const pz_wallet_statement_row_t *r, pz_err_t *err) {
  hist_ctx_t *c = arg;
  pz_buf_append(&c->rows, r, sizeof(*r));
  return 0;
}

/* Calls each with every currency of the statement: the enabled ones in
 * the configured order (zeros where there was nothing), then any other
 * that holds entries (a currency since disabled still has its money). */
static void statement_each(hist_ctx_t *c, void (*each)(hist_ctx_t *c, const pz_wallet_statement_row_t *r)) {
  const pz_wallet_statement_row_t *rows = (const pz_wallet_statement_row_t *)c->rows.data;
  size_t n = c->rows.len / sizeof(*rows);
  for (unsigned i = 0; i < c->cfg->currencies.n; i++) {
    pz_wallet_statement_row_t z = {0};
    memcpy(z.currency, c->cfg->currencies.codes[i], sizeof(z.currency));
    for (size_t k = 0; k < n; k++)
      if (strcmp(rows[k].currency, z.currency) == 0) z = rows[k];
    each(c, &z);
  }
  for (size_t k = 0; k < n; k++) {
    bool enabled = false;
    for (unsigned i = 0; i < c->cfg->currencies.n && !enabled; i++)
      enabled = strcmp(rows[k].currency, c->cfg->currencies.codes[i]) == 0;
    if (!enabled) each(c, &rows[k]);
  }
}

static void statement_json_row(hist_ctx_t *c, const pz_wallet_statement_row_t *r) {
  json_array_append_new(
      c->list,
      json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "currency", r->currency, "opening_balance", (json_int_t)r->opening,
                "credits", (json_int_t)r->credits, "debits", (json_int_t)r->debits, "closing_balance",
                (json_int_t)(r->opening + r->credits - r->debits), "count", (json_int_t)r->count));
}

static void statement_csv_row(hist_ctx_t *c, const pz_wallet_statement_row_t *r) {
  pz_buf_t *b = &c->csv;
  pz_buf_append_c(b, c->month);
  pz_buf_append(b, ",", 1);
  csv_text(b, r->currency);
  const int64_t amounts[4] = {r->opening, r->credits, r->debits, r->opening + r->credits - r->debits};
  for (int i = 0; i < 4; i++) {
    pz_buf_append(b, ",", 1);
    csv_amount(b, amounts[i], r->currency);
  }
  pz_buf_printf(b, ",%lld\r\n", (long long)r->count);
}

static int statement_run(pz_db_t *db, pz_store_job_t *job) {
  hist_ctx_t *c = job->data;
  int rc = pz_store_wallet_statement(db, c->me, c->start_ms, c->end_ms, statement_row, c, &job->err);
  if (rc < 0) return rc;
  if (c->base.done == csv_done) {
    pz_buf_append_c(&c->csv, "month,currency,opening_balance,credits,debits,closing_balance,count\r\n");
    statement_each(c, statement_csv_row);
    return 0;
  }
  c->list = json_array();
  statement_each(c, statement_json_row);
  json_t *s = json_object();
  json_object_set_new(s, "month", json_string(c->month));
  json_object_set_new(s, "starts_at", pz__api_time_json(c->start_ms));
  json_object_set_new(s, "ends_at", pz__api_time_json(c->end_ms));
  json_object_set_new(s, "currency", c->list);
  c->base.out = json_pack("{s:o}", "statement", s);
  return 0;
}

static void statement_authed(pz_req_t *req) {
  pz_err_t err = {0};
  hist_ctx_t *c = hist_ctx_new(req, statement_run);
  pz_str_t month = req->params[0];
  bool csv = month.len > 4 && memcmp(month.ptr + month.len - 4, ".csv", 4) == 0;
  if (csv) month.len -= 4;
  if (pz_wallet_month_parse(month, &c->start_ms, &c->end_ms) < 0) {
    pz_err_set(&err, PZ_EINVAL, NULL, "the month in the path must be YYYY-MM, from 1970-01 on");
    goto fail;
  }
  if (c->start_ms > c->now) {
    pz_err_set(&err, PZ_EINVAL, NULL, "there is no statement for a month that has not begun");
    goto fail;
  }
  memcpy(c->month, month.ptr, 7);
  c->month[7] = '\0';
  if (csv) {
    snprintf(c->filename, sizeof(c->filename), "plaza-statement-%s.csv", c->month);
    c->base.done = csv_done;
  }
  pz__api_read(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- routes ---- */

static void limits(pz_req_t *req) { pz__api_authed(req, limits_authed); }
static void history(pz_req_t *req) { pz__api_authed(req, history_authed); }
static void history_csv(pz_req_t *req) { pz__api_authed(req, csv_authed); }
static void statement(pz_req_t *req) { pz__api_authed(req, statement_authed); }

void pz__api_wallet_history_routes(pz_api_t *api, pz_router_t *r) {
  if (api->wallet == NULL) return;
  pz_router_add(r, PZ_HTTP_GET, "/v1/wallet/limits", limits, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/wallet/transactions", history, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/wallet/transactions.csv", history_csv, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/wallet/statements/{month}", statement, api);
}
