/* SPDX-License-Identifier: Apache-2.0 */
/* The C API of bloccs: ports, pushers, loans, from C or any language with a C FFI.
 *
 *   bloccs_key key = {"net", "node", "in"};
 *   bloccs_port* port;
 *   bloccs_port_options o;
 *   bloccs_port_options_init(&o);
 *   o.buffer = 1024;
 *   if (bloccs_port_start(&key, &o, &port) != BLOCCS_OK) {
 *     fprintf(stderr, "%s\n", bloccs_last_error());
 *     return 1;
 *   }
 *   bloccs_message* m;
 *   if (bloccs_port_receive(port, -1, &m) == BLOCCS_OK) {   // -1: wait as long as it takes
 *     fwrite(bloccs_message_data(m), 1, bloccs_message_size(m), stdout);
 *     bloccs_message_free(m);
 *   }
 *   bloccs_port_stop(port);
 *
 * The same contract as the C++ API (bloccs/port.hpp), call for call:
 *   - Every call that can fail returns a bloccs_errc; BLOCCS_OK (0) is success. The message
 *     that says what was wrong and what to do is bloccs_last_error(): the calling thread's
 *     last failure, valid until its next failing call. No C++ exception crosses this API.
 *   - Waits take a timeout in nanoseconds: -1 waits as long as it takes, 0 does not wait,
 *     > 0 gives up after that long with BLOCCS_TIMEOUT (nothing enqueued or received).
 *   - Handles belong to one thread at a time. A bloccs_port is its key's only consumer; a
 *     bloccs_pusher serves one thread (open one per thread).
 *   - Strings are NUL-terminated UTF-8 unless a length is given beside them.
 */
#ifndef BLOCCS_BLOCCS_H
#define BLOCCS_BLOCCS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Error codes: BLOCCS_OK, then the C++ bloccs::Errc in its order (errc_name gives the same
 * names). Values are stable: new codes are only ever added at the end. */
typedef enum bloccs_errc {
  BLOCCS_OK = 0,
  BLOCCS_TIMEOUT,            /* the timeout passed; nothing was enqueued (or received) */
  BLOCCS_PAYLOAD_TOO_LARGE,  /* over the port's max_payload */
  BLOCCS_BAD_NAME,           /* a namespace or key part with a bad length or character */
  BLOCCS_BAD_CONFIG,         /* options out of range */
  BLOCCS_ALREADY_EXISTS,     /* the key is held by a live owner */
  BLOCCS_NOT_FOUND,
  BLOCCS_PERMISSION_DENIED,
  BLOCCS_SEGMENT_INVALID,
  BLOCCS_VERSION_MISMATCH,
  BLOCCS_WRONG_KIND,
  BLOCCS_NOT_READY,
  BLOCCS_CORRUPT,
  BLOCCS_PUSHER_LIMIT,
  BLOCCS_OWNER_DEAD,
  BLOCCS_BUFFER_TOO_SMALL,
  BLOCCS_WRONG_PROCESS,      /* a handle used in a child forked after it was made */
  BLOCCS_REGISTRY_FULL,
  BLOCCS_SYSTEM_ERROR,
  BLOCCS_NO_PRODUCER,        /* no live owner holds the key */
  BLOCCS_CLOSED,
  BLOCCS_BAD_META,
  BLOCCS_OUT_OF_MEMORY,
  BLOCCS_STOPPING,           /* the process was asked to stop (bloccs_stop_on_signals) */
  BLOCCS_BAD_LOAN,
  BLOCCS_BAD_ARGUMENT        /* a NULL handle or pointer where one is needed (C API only) */
} bloccs_errc;

/* "timeout", "no_producer", ... ("ok" for BLOCCS_OK); never NULL. */
const char* bloccs_errc_name(bloccs_errc code);
/* What the calling thread's last failing call said; "" if none failed yet. */
const char* bloccs_last_error(void);
/* The library's version, "major.minor.patch". */
const char* bloccs_version(void);

/* A port's key. */
typedef struct bloccs_key {
  const char* network;
  const char* node;
  const char* in_port;
} bloccs_key;

/* Meta travelling with a message: a retry count and up to 16 key/value pairs. */
typedef struct bloccs_meta_pair {
  const char* key;
  size_t key_len;
  const char* value;
  size_t value_len;
} bloccs_meta_pair;

typedef struct bloccs_meta {
  uint32_t attempt;
  const bloccs_meta_pair* pairs;
  size_t n_pairs;
} bloccs_meta;

/* ---- The owner: a port ---------------------------------------------------------------- */

typedef struct bloccs_port bloccs_port;

typedef struct bloccs_port_options {
  uint32_t buffer;            /* bound on queued messages (default 1024); 0: unbounded */
  uint32_t max_payload;       /* bytes per payload (default 4096) */
  uint32_t typical_payload;   /* what the ring is sized by (default 256) */
  int single_pusher;          /* nonzero: an SPSC ring, one pushing thread at a time */
  uint32_t max_pushers;       /* MPSC: pushing threads attached at once (default 64) */
  const char* ns;             /* namespace; NULL or "": $BLOCCS_NAMESPACE, else "default" */
  uint32_t mode;              /* segment permissions (default 0600) */
  const char* group;          /* a group to share the port with; NULL: none */
  int64_t receive_spin_ns;    /* how long a receive spins before it parks (default 50000) */
  int latency_histogram;      /* nonzero (default): keep each message's time in queue */
} bloccs_port_options;

/* The defaults, as the C++ PortOptions has them. */
void bloccs_port_options_init(bloccs_port_options* options);

/* Starts the port `key` (taking over a dead owner's queue); *port is the handle. */
bloccs_errc bloccs_port_start(const bloccs_key* key, const bloccs_port_options* options,
                              bloccs_port** port);
/* Stops the port (unregisters the key, removes its segments) and frees the handle. NULL: no-op. */
void bloccs_port_stop(bloccs_port* port);

/* A received message, copied out of the ring: owned by the caller until bloccs_message_free. */
typedef struct bloccs_message bloccs_message;

/* Takes one message, waiting up to timeout_ns for one (0: BLOCCS_TIMEOUT at once if none). */
bloccs_errc bloccs_port_receive(bloccs_port* port, int64_t timeout_ns, bloccs_message** message);
const void* bloccs_message_data(const bloccs_message* message);
size_t bloccs_message_size(const bloccs_message* message);
uint32_t bloccs_message_attempt(const bloccs_message* message);
size_t bloccs_message_meta_size(const bloccs_message* message);
/* Pair `index` (< meta_size) of its meta; BLOCCS_BAD_ARGUMENT past the end. */
bloccs_errc bloccs_message_meta_pair(const bloccs_message* message, size_t index,
                                     bloccs_meta_pair* pair);
void bloccs_message_free(bloccs_message* message);

/* A message in place in the ring, during a bloccs_port_receive_batch callback only. */
typedef struct bloccs_message_view {
  const void* payload;
  size_t size;
  uint32_t attempt;
  size_t n_pairs;
  const void* internal_; /* for bloccs_view_meta_pair */
} bloccs_message_view;

typedef void (*bloccs_visit)(void* context, const bloccs_message_view* message);

/* Calls visit(context, view) for up to `max` messages in place, then releases them together;
 * waits up to timeout_ns for the first (0: BLOCCS_TIMEOUT at once if none is queued).
 * *received (may be NULL): how many. The callback must
 * return normally (no longjmp, no exception) and must not keep the views. */
bloccs_errc bloccs_port_receive_batch(bloccs_port* port, bloccs_visit visit, void* context,
                                      size_t max, int64_t timeout_ns, size_t* received);
bloccs_errc bloccs_view_meta_pair(const bloccs_message_view* view, size_t index,
                                  bloccs_meta_pair* pair);

typedef struct bloccs_port_stats {
  uint64_t depth;            /* messages ready to receive */
  uint32_t parked_pushers;   /* pushers asleep waiting for space */
  uint64_t pending_after;    /* push_after messages the timer holds */
  uint64_t after_delivered;
  uint64_t after_retries;
  uint32_t links;            /* segments the ring spans (unbounded ports) */
  uint64_t refused;          /* records dropped because their meta did not parse */
  uint64_t salvaged;         /* carried over from a dead owner */
  uint64_t lost_at_takeover;
  /* Pushers that waited for room: */
  uint64_t pushes_waited;              /* pushes that parked */
  uint64_t waited_ns;                  /* their time parked, in all */
  uint64_t longest_wait_ns;            /* the longest single park */
  uint64_t timed_out;                  /* pushes that gave up at their deadline */
  uint64_t no_producer_while_waiting;  /* parked pushes ended by the port stopping */
  /* Time in queue, push to receipt (0 without latency_histogram), within 3.2%: */
  uint64_t queue_count;  /* messages received with a stamp */
  uint64_t queue_total_ns;
  uint64_t queue_p50_ns, queue_p90_ns, queue_p99_ns, queue_p999_ns, queue_max_ns;
} bloccs_port_stats;

bloccs_errc bloccs_port_stats_get(const bloccs_port* port, bloccs_port_stats* stats);

/* ---- Pushers ---------------------------------------------------------------------------- */

typedef struct bloccs_pusher bloccs_pusher;

/* A pusher for the namespace `ns` (NULL: $BLOCCS_NAMESPACE, else "default"). */
bloccs_errc bloccs_pusher_open(const char* ns, bloccs_pusher** pusher);
void bloccs_pusher_close(bloccs_pusher* pusher);

/* Pushes one message into `key`'s port; parks while the port is full, up to timeout_ns
 * (-1: the process's push timeout, bloccs_set_push_timeout, else for ever). meta may be NULL. */
bloccs_errc bloccs_pusher_push(bloccs_pusher* pusher, const bloccs_key* key, const void* data,
                               size_t size, const bloccs_meta* meta, int64_t timeout_ns);
/* Hands the message to the port's timer, which enqueues it delay_ms from now (retrying while
 * the port is full); returns once the timer holds it. */
bloccs_errc bloccs_pusher_push_after(bloccs_pusher* pusher, const bloccs_key* key,
                                     const void* data, size_t size, const bloccs_meta* meta,
                                     uint64_t delay_ms);

/* A loan: room for a message in the port's ring, written in place, then committed. */
typedef struct bloccs_loan bloccs_loan;

/* Claims `bytes` in `key`'s port (parks like a push); *data is where to write them. One loan
 * at a time per pusher. */
bloccs_errc bloccs_pusher_loan(bloccs_pusher* pusher, const bloccs_key* key, size_t bytes,
                               const bloccs_meta* meta, int64_t timeout_ns, bloccs_loan** loan,
                               void** data);
/* Publishes the first `used` bytes and frees the handle (also when it fails). */
bloccs_errc bloccs_loan_commit(bloccs_loan* loan, size_t used);
/* Gives the room back (no consumer sees anything) and frees the handle. NULL: no-op. */
void bloccs_loan_abort(bloccs_loan* loan);

/* One push through a pusher of the default namespace kept per thread. */
bloccs_errc bloccs_push(const bloccs_key* key, const void* data, size_t size,
                        const bloccs_meta* meta);
bloccs_errc bloccs_push_after(const bloccs_key* key, const void* data, size_t size,
                              const bloccs_meta* meta, uint64_t delay_ms);

/* ---- The process ------------------------------------------------------------------------ */

/* SIGINT and SIGTERM end every wait with BLOCCS_STOPPING instead of killing the process. */
bloccs_errc bloccs_stop_on_signals(void);
int bloccs_stop_requested(void);
void bloccs_request_stop(void);
/* The bound of every push that waits "for ever" (-1); timeout_ms < 0 removes it. */
void bloccs_set_push_timeout(int64_t timeout_ms);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* BLOCCS_BLOCCS_H */
