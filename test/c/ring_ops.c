/*
 * Reference run of Xen's own ring.h and blkif.h macros, for byte-for-byte comparison with
 * drivers/ring.ts and drivers/blkif.ts (test/drivers/ring-c.test.ts performs the same script).
 *
 * Build: cc -O1 -o ring_ops ring_ops.c            (x86_64 ABI, the native layout)
 *        cc -O1 -DXENPV_ABI_X86_32 -o ... ring_ops.c  (x86_32 ABI: the header's own structs laid out
 *        as i386 does, by making uint64_t 4-byte aligned and defining __i386__ for the indirect pad)
 * Run:   ring_ops <pages> <start-index>   writes records to stdout:
 *        u32 tag, u32 length, then length bytes (tags below). All integers little-endian.
 *
 * The script is driven by a 32-bit LCG; every LCG draw is its own statement so the order of draws is
 * the same in C and TypeScript.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef XENPV_ABI_X86_32
typedef uint64_t __attribute__((__aligned__(4))) xenpv_u64_i386;
#define uint64_t xenpv_u64_i386
#define __i386__ 1
#endif

/* The headers' old-interface barriers; a full fence is enough for a single-threaded reference run. */
#define mb() __sync_synchronize()
#define rmb() __sync_synchronize()
#define wmb() __sync_synchronize()

#include <xen/io/blkif.h>

#ifdef XENPV_ABI_X86_32
#undef uint64_t
#undef __i386__
#define ENTRY_SIZE 108
#define ID_OFF 4
#else
#define ENTRY_SIZE 112
#define ID_OFF 8
#endif

_Static_assert(sizeof(union blkif_sring_entry) == ENTRY_SIZE, "entry size");
_Static_assert(offsetof(struct blkif_request, id) == ID_OFF, "id offset");
_Static_assert(offsetof(struct blkif_sring, ring) == 64, "ring offset");
_Static_assert(sizeof(struct blkif_request_indirect) == 64, "indirect size");

#define TAG_PAGE 1
#define TAG_VALUES 2
#define TAG_COPY 3
#define TAG_RESPONSE 4
#define TAG_INDIRECT 5

#define PAGE 4096
#define ROUNDS 64
#define INDIRECT_PAGES 8

static uint32_t lcg_state = 12345;
static uint32_t next(void) {
  lcg_state = lcg_state * 1664525u + 1013904223u;
  return lcg_state;
}

static void emit(uint32_t tag, const void *data, uint32_t len) {
  fwrite(&tag, 4, 1, stdout);
  fwrite(&len, 4, 1, stdout);
  if (len) fwrite(data, 1, len, stdout);
}

static void emit_values(const uint32_t *v, uint32_t n) { emit(TAG_VALUES, v, n * 4); }

/*
 * Batch sizes. The first rounds are fixed so that the edge cases of the notify rule happen for certain
 * (a push whose old index equals the event: no notification); then a quarter of the draws are tiny
 * (0..3) so events keep landing exactly on old/new indices.
 */
#define FIXED_ROUNDS 6
static const uint32_t fixed_batches[FIXED_ROUNDS][3] = {{1, 0, 0}, {1, 0, 1}, {2, 5, 0},
                                                        {0, 0, 5}, {1, 1, 5}, {3, 0, 0}};
static uint32_t batch(uint32_t size, int round, int which) {
  if (round < FIXED_ROUNDS) return fixed_batches[round][which];
  uint32_t sel = next();
  if ((sel & 3) == 0) return sel >> 30;
  return next() % (size + 1);
}

static uint64_t next64(void) {
  uint64_t hi = next();
  uint64_t lo = next();
  return (hi << 32) | lo;
}

static uint8_t indirect_pages[INDIRECT_PAGES * PAGE];
static uint32_t indirect_used; /* next free segment slot across the indirect pages */

/* Fill one request slot, field by field, as a frontend would. Returns nothing; all draws in order. */
static void produce(struct blkif_front_ring *front) {
  struct blkif_request *r = RING_GET_REQUEST(front, front->req_prod_pvt);
  uint32_t kind = next() % 6;
  switch (kind) {
  case 0:
  case 5: {
    uint32_t nseg;
    if (kind == 0) {
      r->operation = (next() & 1) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
      nseg = next() % 12;
    } else {
      r->operation = BLKIF_OP_WRITE_BARRIER;
      nseg = 1;
    }
    r->nr_segments = (uint8_t)nseg;
    r->handle = (uint16_t)next();
    r->id = next64();
    r->sector_number = next64();
    for (uint32_t i = 0; i < nseg; i++) {
      r->seg[i].gref = next();
      r->seg[i].first_sect = (uint8_t)(next() & 7);
      r->seg[i].last_sect = (uint8_t)(next() & 15);
    }
    break;
  }
  case 1: {
    struct blkif_request_discard *d = (struct blkif_request_discard *)r;
    d->operation = BLKIF_OP_DISCARD;
    d->flag = (uint8_t)(next() & 1);
    d->handle = (uint16_t)next();
    d->id = next64();
    d->sector_number = next64();
    d->nr_sectors = next64();
    break;
  }
  case 2: {
    struct blkif_request_indirect *ind = (struct blkif_request_indirect *)r;
    uint32_t nseg = next() % 1100;
    uint32_t pages = (nseg + 511) / 512;
    ind->operation = BLKIF_OP_INDIRECT;
    ind->indirect_op = (uint8_t)(next() % 3);
    ind->nr_segments = (uint16_t)nseg;
    ind->id = next64();
    ind->sector_number = next64();
    ind->handle = (uint16_t)next();
    for (uint32_t i = 0; i < pages; i++) ind->indirect_grefs[i] = next();
    /* A few segments into the shared indirect-page area, 512 per page, wrapping at its end. */
    uint32_t nwrite = next() % 8;
    for (uint32_t i = 0; i < nwrite; i++) {
      struct blkif_request_segment *segs = (struct blkif_request_segment *)indirect_pages;
      uint32_t at = indirect_used % (INDIRECT_PAGES * PAGE / sizeof(*segs));
      segs[at].gref = next();
      segs[at].first_sect = (uint8_t)(next() & 7);
      segs[at].last_sect = (uint8_t)(next() & 7);
      indirect_used += 1 + next() % 300;
    }
    break;
  }
  case 3:
    r->operation = BLKIF_OP_FLUSH_DISKCACHE;
    r->nr_segments = 0;
    r->handle = (uint16_t)next();
    r->id = next64();
    r->sector_number = next64();
    break;
  case 4: {
    uint32_t op = next() % 250;
    r->operation = (uint8_t)(op == 0 ? BLKIF_OP_RESERVED_1 : op + 6);
    r->id = next64();
    break;
  }
  }
  front->req_prod_pvt++;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ring_ops <pages> <start-index>\n");
    return 2;
  }
  unsigned pages = (unsigned)strtoul(argv[1], NULL, 0);
  RING_IDX start = (RING_IDX)strtoul(argv[2], NULL, 0);
  size_t bytes = (size_t)pages * PAGE;
  uint8_t *mem = aligned_alloc(PAGE, bytes);
  if (!mem) return 1;
  for (size_t i = 0; i < bytes; i++) mem[i] = (uint8_t)(i * 7 + 3);
  for (size_t i = 0; i < sizeof(indirect_pages); i++) indirect_pages[i] = (uint8_t)(i * 13 + 5);

  struct blkif_sring *sring = (struct blkif_sring *)mem;
  struct blkif_front_ring front;
  struct blkif_back_ring back;
  XEN_FRONT_RING_INIT(&front, sring, bytes);
  BACK_RING_INIT(&back, sring, bytes);
  emit(TAG_PAGE, mem, (uint32_t)bytes);

  if (start != 0) {
    sring->req_prod = sring->rsp_prod = start;
    sring->req_event = sring->rsp_event = start + 1;
    FRONT_RING_ATTACH(&front, sring, start, bytes);
    BACK_RING_ATTACH(&back, sring, start, bytes);
    emit(TAG_PAGE, mem, (uint32_t)bytes);
  }
  {
    uint32_t v[3] = {RING_SIZE(&front), RING_FREE_REQUESTS(&front), RING_FULL(&front)};
    emit_values(v, 3);
  }

  /* The backend's answered-later queue of (id, op). */
  static uint64_t pend_id[512];
  static uint8_t pend_op[512];
  uint32_t pend_head = 0, pend_len = 0;
  uint32_t size = RING_SIZE(&front);

  for (int round = 0; round < ROUNDS; round++) {
    /* Frontend: a batch of requests. */
    uint32_t n = batch(size, round, 0);
    uint32_t produced = 0;
    while (produced < n && !RING_FULL(&front)) {
      produce(&front);
      produced++;
    }
    int notify = -1;
    if (round % 3 == 2)
      RING_PUSH_REQUESTS(&front);
    else
      RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
    {
      uint32_t v[6] = {produced, (uint32_t)notify, front.req_prod_pvt, sring->req_prod,
                       RING_FREE_REQUESTS(&front), RING_FULL(&front)};
      emit_values(v, 6);
    }

    /* Backend: consume up to m requests (copy once, then read the copy), answer q of the pending. */
    uint32_t m = batch(size, round, 1);
    RING_IDX rc = back.req_cons;
    RING_IDX rp = sring->req_prod;
    {
      uint32_t v[2] = {RING_REQUEST_PROD_OVERFLOW(&back, rp), RING_HAS_UNCONSUMED_REQUESTS(&back)};
      emit_values(v, 2);
    }
    uint32_t consumed = 0;
    while (rc != rp && !RING_REQUEST_CONS_OVERFLOW(&back, rc) && consumed < m) {
      struct blkif_request req;
      RING_COPY_REQUEST(&back, rc, &req);
      back.req_cons = ++rc;
      emit(TAG_COPY, &req, sizeof(req));
      uint8_t op = req.operation;
      if (op == BLKIF_OP_INDIRECT) op = ((struct blkif_request_indirect *)&req)->indirect_op;
      pend_id[(pend_head + pend_len) % 512] = req.id;
      pend_op[(pend_head + pend_len) % 512] = op;
      pend_len++;
      consumed++;
    }
    uint32_t q = next() % (pend_len + 1);
    for (uint32_t i = 0; i < q; i++) {
      struct blkif_response *resp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
      int16_t status = (int16_t)-(int32_t)(next() % 3);
      resp->id = pend_id[pend_head];
      resp->operation = pend_op[pend_head];
      resp->status = status;
      back.rsp_prod_pvt++;
      pend_head = (pend_head + 1) % 512;
      pend_len--;
    }
    int rnotify = -1;
    if (round % 4 == 3)
      RING_PUSH_RESPONSES(&back);
    else
      RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, rnotify);
    int more_req;
    RING_FINAL_CHECK_FOR_REQUESTS(&back, more_req);
    {
      uint32_t v[12] = {consumed,
                        q,
                        (uint32_t)rnotify,
                        (uint32_t)more_req,
                        back.rsp_prod_pvt,
                        back.req_cons,
                        sring->req_event,
                        RING_REQUEST_PROD_OVERFLOW(&back, back.rsp_prod_pvt + size),
                        RING_REQUEST_PROD_OVERFLOW(&back, back.rsp_prod_pvt + size + 1),
                        RING_REQUEST_CONS_OVERFLOW(&back, back.rsp_prod_pvt + size - 1),
                        RING_REQUEST_CONS_OVERFLOW(&back, back.rsp_prod_pvt + size),
                        RING_REQUEST_CONS_OVERFLOW(&back, back.rsp_prod_pvt - 1)};
      emit_values(v, 12);
    }

    /* Frontend: consume up to c responses from private copies. */
    uint32_t c = batch(size, round, 2);
    RING_IDX rsp_rp = sring->rsp_prod;
    {
      uint32_t v[3] = {RING_RESPONSE_PROD_OVERFLOW(&front, rsp_rp),
                       RING_RESPONSE_PROD_OVERFLOW(&front, front.rsp_cons + size),
                       RING_RESPONSE_PROD_OVERFLOW(&front, front.rsp_cons + size + 1)};
      emit_values(v, 3);
    }
    RING_IDX i = front.rsp_cons;
    uint32_t got = 0;
    while (i != rsp_rp && got < c) {
      struct blkif_response rsp;
      RING_COPY_RESPONSE(&front, i, &rsp);
      uint32_t v[4] = {(uint32_t)(rsp.id >> 32), (uint32_t)rsp.id, rsp.operation, (uint32_t)(int32_t)rsp.status};
      emit(TAG_RESPONSE, v, sizeof(v));
      i++;
      got++;
    }
    front.rsp_cons = i;
    int more_rsp;
    RING_FINAL_CHECK_FOR_RESPONSES(&front, more_rsp);
    {
      uint32_t v[5] = {got, (uint32_t)more_rsp, front.rsp_cons, sring->rsp_event, RING_HAS_UNCONSUMED_RESPONSES(&front)};
      emit_values(v, 5);
    }
    emit(TAG_PAGE, mem, (uint32_t)bytes);
  }

  /* A hostile frontend: req_prod far ahead. The min() keeps the count at the free response slots. */
  sring->req_prod = back.req_cons + 2 * size + 3;
  {
    uint32_t v[2] = {RING_HAS_UNCONSUMED_REQUESTS(&back), RING_REQUEST_PROD_OVERFLOW(&back, sring->req_prod)};
    emit_values(v, 2);
  }
  emit(TAG_PAGE, mem, (uint32_t)bytes);
  emit(TAG_INDIRECT, indirect_pages, sizeof(indirect_pages));
  free(mem);
  return 0;
}
