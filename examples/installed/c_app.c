/* SPDX-License-Identifier: Apache-2.0 */
/* bloccs from C: a port owner and a pusher process it forks. The child pushes three messages
 * (one with meta, one written in place through a loan) and one push_after; the parent receives
 * them, one copied out and the rest in place, and checks each. Exit status 0 when all is as
 * sent. Run with BLOCCS_NAMESPACE set to keep it apart. */
#include <bloccs/bloccs.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const bloccs_key kKey = {"c-example", "printer", "in"};

static int check(bloccs_errc code, const char* what) {
  if (code == BLOCCS_OK) return 1;
  fprintf(stderr, "%s: %s (%s)\n", what, bloccs_last_error(), bloccs_errc_name(code));
  return 0;
}

static int run_pusher(void) {
  bloccs_pusher* pusher;
  if (!check(bloccs_pusher_open(NULL, &pusher), "open a pusher")) return 1;
  bloccs_meta_pair pair = {"source", 6, "c", 1};
  bloccs_meta meta = {0, &pair, 1};
  int ok = check(bloccs_pusher_push(pusher, &kKey, "one", 3, NULL, -1), "push one") &&
           check(bloccs_pusher_push(pusher, &kKey, "two", 3, &meta, -1), "push two");
  bloccs_loan* loan;
  void* room;
  if (ok && check(bloccs_pusher_loan(pusher, &kKey, 64, NULL, -1, &loan, &room), "loan")) {
    memcpy(room, "three, in place", 15);
    ok = check(bloccs_loan_commit(loan, 15), "commit the loan");
  }
  meta.attempt = 1;
  ok = ok && check(bloccs_pusher_push_after(pusher, &kKey, "four", 4, &meta, 100), "push_after");
  bloccs_pusher_close(pusher);
  return ok ? 0 : 1;
}

struct seen {
  int count;
  int bad;
};

static void visit(void* context, const bloccs_message_view* m) {
  struct seen* s = context;
  const char* want = s->count == 0 ? "three, in place" : "four";
  if (m->size != strlen(want) || memcmp(m->payload, want, m->size) != 0) s->bad = 1;
  if (s->count == 1) { /* "four": attempt 1 and its pair */
    bloccs_meta_pair pair;
    if (m->attempt != 1 || m->n_pairs != 1 || bloccs_view_meta_pair(m, 0, &pair) != BLOCCS_OK ||
        pair.value_len != 1 || pair.value[0] != 'c')
      s->bad = 1;
  }
  printf("received in place \"%.*s\" (attempt %u)\n", (int)m->size, (const char*)m->payload,
         m->attempt);
  s->count++;
}

int main(void) {
  printf("bloccs %s from C\n", bloccs_version());
  bloccs_port_options options;
  bloccs_port_options_init(&options);
  options.buffer = 64;
  bloccs_port* port;
  if (!check(bloccs_port_start(&kKey, &options, &port), "start the port")) return 1;

  pid_t child = fork();
  if (child == 0) _exit(run_pusher());

  int ok = 1;
  const char* copied[] = {"one", "two"};
  for (int i = 0; ok && i < 2; ++i) {
    bloccs_message* m;
    ok = check(bloccs_port_receive(port, 10 * 1000 * 1000 * 1000LL, &m), "receive");
    if (!ok) break;
    printf("received \"%.*s\" (attempt %u, %zu meta pairs)\n", (int)bloccs_message_size(m),
           (const char*)bloccs_message_data(m), bloccs_message_attempt(m),
           bloccs_message_meta_size(m));
    ok = bloccs_message_size(m) == 3 && memcmp(bloccs_message_data(m), copied[i], 3) == 0 &&
         bloccs_message_meta_size(m) == (size_t)i;
    bloccs_message_free(m);
  }
  struct seen s = {0, 0};
  while (ok && s.count < 2) {
    size_t n;
    ok = check(bloccs_port_receive_batch(port, visit, &s, 16, 10 * 1000 * 1000 * 1000LL, &n),
               "receive a batch");
  }
  ok = ok && !s.bad;

  bloccs_port_stats stats;
  ok = ok && check(bloccs_port_stats_get(port, &stats), "stats") && stats.depth == 0;
  /* An empty port does not wait when told so. */
  bloccs_message* none;
  ok = ok && bloccs_port_receive(port, 0, &none) == BLOCCS_TIMEOUT;

  int child_status = 0;
  waitpid(child, &child_status, 0);
  bloccs_port_stop(port);
  /* With the owner gone, a push says so, with a message for a person. */
  bloccs_errc gone = bloccs_push(&kKey, "late", 4, NULL);
  printf("a push after the owner stopped: %s: %s\n", bloccs_errc_name(gone), bloccs_last_error());
  ok = ok && gone == BLOCCS_NO_PRODUCER;

  if (!ok || !WIFEXITED(child_status) || WEXITSTATUS(child_status) != 0) {
    fprintf(stderr, "the C example failed\n");
    return 1;
  }
  printf("ok\n");
  return 0;
}
