/*
 * Native versions of the selection's hottest WebAssembly loops (distance-kernel.ts), for x86-64 CPUs with
 * AVX-512 VNNI: one candidate against a range of centres (nearest_to_slots), and a list of rows against one
 * centre (sqdist_rows), with bounds or without; and of the two passes over every feature before the first pick,
 * the column ranges and sums (scan_columns) and the quantised copies (quantize_rows). scripts/build-native.mjs
 * compiles this file into dist/native/selection-kernels.node when a C compiler is at hand;
 * src/exec/native-kernels.ts loads it, and the selection falls back to WebAssembly without it.
 *
 * They give exactly what their WebAssembly counterparts give: a centre or row is skipped only when the
 * quantised lower bound proves it "not closer" (the same test, in the same float64 arithmetic), and the exact
 * squared distance is summed in the same order (element j of each chunk of 8 into accumulator j mod 8, then
 * ((a0 + a2) + (a4 + a6)) + ((a1 + a3) + (a5 + a7)), then the trailing elements), float64 throughout with no fused
 * multiply-add (the build passes -ffp-contract=off). The WebAssembly float32 pass is left out: it only saves work.
 * (quantize_rows sums its error bound in another order: see there.)
 *
 * What makes them faster: nearest_to_slots keeps its own copy of the centres' int8 quantised values transposed
 * (values 4j .. 4j+3 of 16 consecutive centres in one 64-byte line, offset by 128 to unsigned), so one VPDPBUSD
 * serves 16 centres with no horizontal sums; columns are grouped by their weight 4^g, each group summed apart
 * and shifted by 2g. sqdist_rows takes each row's int8 values the same way (flipped to unsigned) against the pick's
 * per weight group, sums 16 rows' int32 lanes at once and prefetches the rows it will need.
 */
#include <node_api.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* As in distance-kernel.ts: the relative margin on the quantised bound, and how often (in elements) the exact
 * pass compares its partial sum with the bound. */
#define Q_MARGIN 1e-12
#define BOUND_CHECK_ELEMENTS 32
/* Column weights are 4^g for g < WEIGHT_GROUPS (MAX_STEP_POWER in distance-kernel.ts is 4). */
#define WEIGHT_GROUPS 5

typedef struct {
  napi_ref memoryRef; /* keeps the selection's memory alive while this state is */
  int holders;        /* JavaScript values that hold this state: the bound object and its functions */
  uint8_t *base;
  size_t length;
  int32_t D, rowBytes, qLen, qPickBytes, centres, qCentres, slots;
  /* Columns grouped by weight 4^g, each group padded to whole quads (4 columns): quadColumn[4j + b] is the
   * column of byte b of quad j (-1: padding), group g's quads are [groupStart[g], groupStart[g + 1]).
   * `inOrder`: the quads are columns 0 .. 4*quads - 1 in order (all in one group). */
  int32_t quads, inOrder;
  int32_t groupStart[WEIGHT_GROUPS + 1];
  int32_t *quadColumn;
  /* Each column's group, and the groups with columns (`groupCount` of them). */
  int8_t *columnGroup;
  int32_t groups[WEIGHT_GROUPS], groupCount;
  /* rows_closer's copies of the pick at qPick = pickAt (-1: none yet), one per group in `groups`, pickBytes each (qLen
   * padded to 64): q of the group's columns, 0 elsewhere; pickOffset is 128 * sum over groups of 4^g * sum(q). */
  int64_t pickAt;
  int32_t pickBytes;
  int8_t *pickGroups;
  uint32_t pickOffset;
  /* Slots per line of quadT: at least `slots`, an odd number of 64-byte lines, so that the lines one block reads
   * fall into different cache sets (at 4 KiB apart they would all compete for one). */
  int32_t stride;
  double qScale2, rootSlack;
  /* Centres in slots before `transposed` are in quadT, centreSq and centreError. */
  int32_t transposed;
  int32_t *quadT;
  double *centreSq, *centreError;
  /* A row's quads (int8, in quadColumn order), scratch of nearest_range. */
  int8_t *rowQuads;
} kernel_state;

static double load_f64(const uint8_t *at) {
  double v;
  memcpy(&v, at, 8);
  return v;
}

static void store_f64(uint8_t *at, double v) { memcpy(at, &v, 8); }
static int32_t load_i32(const int8_t *at) {
  int32_t v;
  memcpy(&v, at, 4);
  return v;
}

/* The exact pass; stops early, with a sum >= bound, once a partial sum reaches the bound. */
AVX512 static double exact_sqdist(const float *a, const float *b, int32_t D, double bound) {
  __m512d acc = _mm512_setzero_pd();
  double lane[8], s;
  const int32_t full8 = D & ~7;
  int32_t j = 0;
  while (j < full8) {
    __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a + j)), _mm512_cvtps_pd(_mm256_loadu_ps(b + j)));
    acc = _mm512_add_pd(acc, _mm512_mul_pd(d, d));
    j += 8;
    if ((j & (BOUND_CHECK_ELEMENTS - 1)) == 0) {
      _mm512_storeu_pd(lane, acc);
      s = ((lane[0] + lane[2]) + (lane[4] + lane[6])) + ((lane[1] + lane[3]) + (lane[5] + lane[7]));
      if (s >= bound) return s;
    }
  }
  _mm512_storeu_pd(lane, acc);
  s = ((lane[0] + lane[2]) + (lane[4] + lane[6])) + ((lane[1] + lane[3]) + (lane[5] + lane[7]));
  for (; j < D; j++) {
    double d = (double)a[j] - (double)b[j];
    s += d * d;
  }
  return s;
}

/* The quantised test of sqdist_rows: true when the row is proven not closer than `root`. */
static inline int proven_far(const kernel_state *st, double dot, double rowSq, double centreSq, double root, double rowError,
                             double centreError) {
  double lhs = ((-2.0 * dot + rowSq) + centreSq) * st->qScale2;
  double rhs = root * st->rootSlack + (rowError + centreError) * (1 + Q_MARGIN);
  return lhs >= rhs * rhs;
}

/* Copies the quantised centres in slots [transposed, to) into the transposed layout (they never change once
 * written: a centre's slot is filled before any pass reads it). A centre's copy holds w*q as int16; q + 128 is
 * its unsigned byte (padding: q = 0). */
static void transpose_centres(kernel_state *st, int32_t to) {
  for (int32_t t = st->transposed; t < to; t++) {
    const uint8_t *copy = st->base + (uint32_t)st->qCentres + (size_t)t * (uint32_t)st->qPickBytes;
    uint8_t *line = (uint8_t *)st->quadT + 4 * (size_t)t;
    for (int32_t g = 0; g < WEIGHT_GROUPS; g++) {
      for (int32_t i = 4 * st->groupStart[g]; i < 4 * st->groupStart[g + 1]; i++) {
        const int32_t c = st->quadColumn[i];
        int16_t wq = 0;
        if (c >= 0) memcpy(&wq, copy + 2 * c, 2);
        line[(size_t)(i >> 2) * 4 * st->stride + (i & 3)] = (uint8_t)((wq >> (2 * g)) + 128);
      }
    }
    st->centreSq[t] = load_f64(copy + 2 * st->qLen);
    st->centreError[t] = load_f64(copy + 2 * st->qLen + 8);
  }
  st->transposed = to;
}

/* nearest_to_slots for the centres in slots [from, to): the row at x (quantised copy at qx) lowers f64[nearestSq]
 * and f64[nearest] (its square root) to its nearest centre's, and i32[loweredAt] becomes the offset from `from` of
 * the last centre that lowered them, or -1. Returns the centres left in question. */
AVX512 static int32_t nearest_range(kernel_state *st, int32_t x, int32_t qx, int32_t nearestSqAt, int32_t nearestAt,
                                    int32_t loweredAt, int32_t from, int32_t to) {
  uint8_t *base = st->base;
  if (to > st->transposed) transpose_centres(st, to);
  const float *row = (const float *)(base + (uint32_t)x);
  const int8_t *q = (const int8_t *)(base + (uint32_t)qx);
  const double rowSq = load_f64(base + (uint32_t)qx + st->qLen), rowError = load_f64(base + (uint32_t)qx + st->qLen + 8);
  double bound = load_f64(base + (uint32_t)nearestSqAt), root = load_f64(base + (uint32_t)nearestAt);
  const size_t stride = (size_t)st->stride;
  /* The row's quads, and per group 128 times the sum of its values: sum((q_c + 128) * r) - 128 * sum(r) = sum(q_c * r)
   * over a group, exactly. */
  int8_t *rowQuads = st->rowQuads;
  if (st->inOrder) memcpy(rowQuads, q, 4 * (size_t)st->quads);
  else
    for (int32_t i = 0; i < 4 * st->quads; i++) rowQuads[i] = st->quadColumn[i] >= 0 ? q[st->quadColumn[i]] : 0;
  __m512i offset[WEIGHT_GROUPS];
  for (int32_t g = 0; g < WEIGHT_GROUPS; g++) {
    int32_t sum = 0;
    for (int32_t i = 4 * st->groupStart[g]; i < 4 * st->groupStart[g + 1]; i++) sum += rowQuads[i];
    offset[g] = _mm512_set1_epi32(128 * sum);
  }
  const __m512d minusTwo = _mm512_set1_pd(-2.0), rowSqV = _mm512_set1_pd(rowSq), qScale2V = _mm512_set1_pd(st->qScale2);
  const __m512d rowErrorV = _mm512_set1_pd(rowError), marginV = _mm512_set1_pd(1 + Q_MARGIN);
  int32_t open = 0, lowered = -1;
  for (int32_t t0 = from; t0 < to; t0 += 16) {
    const int32_t n = to - t0 < 16 ? to - t0 : 16;
    const __mmask16 valid = (__mmask16)((1u << n) - 1);
    const int32_t *col = st->quadT + t0;
    __m512i dots = _mm512_setzero_si512();
    for (int32_t g = 0; g < WEIGHT_GROUPS; g++) {
      const int32_t end = st->groupStart[g + 1];
      int32_t j = st->groupStart[g];
      if (j == end) continue;
      /* Four accumulators: one chain of VPDPBUSD would wait on its latency. */
      __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
#define QUAD(acc, jj) \
  acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi32(valid, col + (size_t)(jj) * stride), _mm512_set1_epi32(load_i32(rowQuads + 4 * (jj))))
      for (; j + 4 <= end; j += 4) {
        QUAD(a0, j);
        QUAD(a1, j + 1);
        QUAD(a2, j + 2);
        QUAD(a3, j + 3);
      }
      for (; j < end; j++) QUAD(a0, j);
#undef QUAD
      const __m512i sum = _mm512_sub_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)), offset[g]);
      dots = _mm512_add_epi32(dots, _mm512_sllv_epi32(sum, _mm512_set1_epi32(2 * g)));
    }
    int32_t dot[16];
    _mm512_storeu_si512(dot, dots);
    /* The quantised test of all 16 against the root at the block's start (a larger root only leaves more in
     * question), then again, one by one, against the root as it shrinks. */
    const __m512d rootTerm = _mm512_set1_pd(root * st->rootSlack);
    uint32_t inQuestion = 0;
    for (int half = 0; half < 2; half++) {
      const __mmask8 m = (__mmask8)(valid >> (8 * half));
      const __m512d d = _mm512_cvtepi32_pd(half ? _mm512_extracti64x4_epi64(dots, 1) : _mm512_castsi512_si256(dots));
      const __m512d sq = _mm512_maskz_loadu_pd(m, st->centreSq + t0 + 8 * half);
      const __m512d err = _mm512_maskz_loadu_pd(m, st->centreError + t0 + 8 * half);
      const __m512d lhs = _mm512_mul_pd(_mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(minusTwo, d), rowSqV), sq), qScale2V);
      const __m512d rhs = _mm512_add_pd(rootTerm, _mm512_mul_pd(_mm512_add_pd(rowErrorV, err), marginV));
      inQuestion |= (uint32_t)_mm512_mask_cmp_pd_mask(m, lhs, _mm512_mul_pd(rhs, rhs), _CMP_NGE_UQ) << (8 * half);
    }
    while (inQuestion) {
      const int i = __builtin_ctz(inQuestion);
      inQuestion &= inQuestion - 1;
      const int32_t t = t0 + i;
      if (proven_far(st, (double)dot[i], rowSq, st->centreSq[t], root, rowError, st->centreError[t])) continue;
      open++;
      const float *centre = (const float *)(base + (uint32_t)st->centres + (size_t)t * (uint32_t)st->rowBytes);
      const double s = exact_sqdist(row, centre, st->D, bound);
      if (s >= bound) continue;
      bound = s;
      root = sqrt(s);
      lowered = t - from;
    }
  }
  store_f64(base + (uint32_t)nearestSqAt, bound);
  store_f64(base + (uint32_t)nearestAt, root);
  memcpy(base + (uint32_t)loweredAt, &lowered, 4);
  return open;
}

/* rows_closer's per-group copies of the pick whose int16 copy (w*q) is at qPick. */
static void copy_pick(kernel_state *st, int32_t qPick) {
  const uint8_t *wide = st->base + (uint32_t)qPick;
  uint32_t offset = 0;
  for (int32_t h = 0; h < st->groupCount; h++) {
    const int32_t g = st->groups[h];
    int8_t *copy = st->pickGroups + (size_t)h * st->pickBytes;
    uint32_t sum = 0;
    for (int32_t c = 0; c < st->D; c++) {
      int16_t wq;
      memcpy(&wq, wide + 2 * c, 2);
      copy[c] = st->columnGroup[c] == g ? (int8_t)(wq >> (2 * g)) : 0;
      sum += (uint32_t)(int32_t)copy[c];
    }
    offset += (128u * sum) << (2 * g);
  }
  st->pickOffset = offset;
  st->pickAt = qPick;
}

/* scoreOf (fps-kernel.ts) where it is plain arithmetic: wDiv*nearest + weight (kind 0), weight*nearest (kind 1, beta 1). */
static inline double plain_score(int32_t kind, double wDiv, double nearest, double weight) {
  return kind == 0 ? wDiv * nearest + weight : weight * nearest;
}

/* catchUp (fps-kernel.ts) for positions [first, end) of a region whose arrays start at the given offsets: each
 * candidate with fresh < to meets the centres in slots [fresh, to), takes the cell of the one that lowered its
 * nearest (if any) and its score again (plain_score), and gets fresh = to. The lowered offset goes through `lowered`
 * (4 bytes of scratch). Returns 0 when a fresh value is negative (a candidate claimed by another thread: the caller's
 * contract excludes that), changing nothing past it. */
AVX512 static int catch_up_range(kernel_state *st, uint32_t x, uint32_t qx, uint32_t qRowBytes, uint32_t nearestSqAt, uint32_t nearestAt,
                                 uint32_t freshAt, uint32_t cellOfAt, uint32_t scoreAt, uint32_t weightAt, uint32_t loweredAt,
                                 int32_t first, int32_t end, int32_t to, int32_t kind, double wDiv) {
  uint8_t *base = st->base;
  int32_t *fresh = (int32_t *)(base + freshAt), *cellOf = (int32_t *)(base + cellOfAt);
  double *score = (double *)(base + scoreAt), *nearest = (double *)(base + nearestAt);
  const double *weight = (const double *)(base + weightAt);
  for (int32_t p = first; p < end; p++) {
    const int32_t from = fresh[p];
    if (from >= to) continue;
    if (from < 0) return 0;
    nearest_range(st, (int32_t)(x + (uint32_t)p * (uint32_t)st->rowBytes), (int32_t)(qx + (uint32_t)p * qRowBytes),
                  (int32_t)(nearestSqAt + 8u * (uint32_t)p), (int32_t)(nearestAt + 8u * (uint32_t)p), (int32_t)loweredAt, from, to);
    int32_t lowered;
    memcpy(&lowered, base + loweredAt, 4);
    if (lowered >= 0) cellOf[p] = from + lowered;
    score[p] = plain_score(kind, wDiv, nearest[p], weight[p]);
    fresh[p] = to;
  }
  return 1;
}

/* Sums of 16 int32 vectors: lane i of the result is the sum of v[i]'s lanes. */
AVX512 static inline __m512i sum16(const __m512i *v) {
  __m512i a[8], b[4];
  for (int i = 0; i < 8; i++)
    a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; i++)
    b[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
  const __m512i d01 = _mm512_add_epi32(_mm512_shuffle_i32x4(b[0], b[1], 0x88), _mm512_shuffle_i32x4(b[0], b[1], 0xdd));
  const __m512i d23 = _mm512_add_epi32(_mm512_shuffle_i32x4(b[2], b[3], 0x88), _mm512_shuffle_i32x4(b[2], b[3], 0xdd));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(d01, d23, 0x88), _mm512_shuffle_i32x4(d01, d23, 0xdd));
}

/* sqdist_rows with bounds: the rows i32[rowsAt + 4t], t < count, of the candidates at x (quantised copies at qx,
 * qRowBytes apart) against the centre at `pick` (quantised copy at qPick). Rows closer than their bound
 * f64[boundsAt + 8*row] go, in order, to i32[keptAt + 4k] with their squared distance in f64[outAt + 8k] (keptAt
 * may be rowsAt); returns k. f64[rootsAt + 8*row] is the bound's square root. */
AVX512 static int32_t rows_closer(kernel_state *st, int32_t x, int32_t rowsAt, int32_t count, int32_t pick, int32_t boundsAt,
                                  int32_t rootsAt, int32_t outAt, int32_t qx, int32_t qRowBytes, int32_t qPick, int32_t keptAt) {
  uint8_t *base = st->base;
  const int32_t qLen = st->qLen, chunks = st->pickBytes / 64;
  const __mmask64 lastMask = (qLen % 64) ? (((__mmask64)1 << (qLen % 64)) - 1) : ~(__mmask64)0;
  if (st->pickAt != qPick) copy_pick(st, qPick);
  const int32_t *rows = (const int32_t *)(base + (uint32_t)rowsAt);
  int32_t *kept = (int32_t *)(base + (uint32_t)keptAt);
  const uint8_t *bounds = base + (uint32_t)boundsAt, *roots = base + (uint32_t)rootsAt, *pickCopy = base + (uint32_t)qPick;
  uint8_t *out = base + (uint32_t)outAt;
  const double pickSq = load_f64(pickCopy + 2 * qLen), pickError = load_f64(pickCopy + 2 * qLen + 8);
  /* Each row's bytes r + 128 (unsigned) against the pick's q per group: sum((r + 128) * q) - 128 * sum(q) is sum(r * q),
   * exactly (in int32 arithmetic modulo 2^32, so intermediate sums may wrap: the result fits). Past qLen a row's bytes
   * are masked (128 once flipped), and the pick's are 0 there. */
  const __m512i flip = _mm512_set1_epi8((char)0x80), offset = _mm512_set1_epi32((int32_t)st->pickOffset);
  /* First the quantised test, 16 rows at a time; those left in question are compacted into kept[0 .. open).
   * Writing kept[open] with open <= t0 + i is safe when kept is rows: those entries have been read. */
  int32_t open = 0;
  for (int32_t t0 = 0; t0 < count; t0 += 16) {
    const int32_t n = count - t0 < 16 ? count - t0 : 16;
    for (int32_t i = t0 + 16; i < t0 + 32 && i < count; i++) {
      const char *ahead = (const char *)(base + (uint32_t)qx + (size_t)rows[i] * (uint32_t)qRowBytes);
      _mm_prefetch(ahead, _MM_HINT_T0);
      _mm_prefetch(ahead + qLen + 15, _MM_HINT_T0);
    }
    __m512i acc[16];
    int32_t row[16];
    for (int i = 0; i < 16; i++) {
      row[i] = rows[t0 + (i < n ? i : 0)];
      const uint8_t *q = base + (uint32_t)qx + (size_t)row[i] * (uint32_t)qRowBytes;
      __m512i a = _mm512_setzero_si512();
      for (int32_t h = 0; h < st->groupCount; h++) {
        const int8_t *copy = st->pickGroups + (size_t)h * st->pickBytes;
        __m512i sum = _mm512_setzero_si512();
        for (int32_t c = 0; c < chunks; c++) {
          const __mmask64 m = c == chunks - 1 ? lastMask : ~(__mmask64)0;
          const __m512i r = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, q + 64 * c), flip);
          sum = _mm512_dpbusd_epi32(sum, r, _mm512_loadu_si512(copy + 64 * c));
        }
        a = _mm512_add_epi32(a, _mm512_sll_epi32(sum, _mm_cvtsi32_si128(2 * st->groups[h])));
      }
      acc[i] = a;
    }
    int32_t dot[16];
    _mm512_storeu_si512(dot, _mm512_sub_epi32(sum16(acc), offset));
    for (int i = 0; i < n; i++) {
      const uint8_t *q = base + (uint32_t)qx + (size_t)row[i] * (uint32_t)qRowBytes;
      const double root = load_f64(roots + 8 * (size_t)row[i]);
      kept[open] = row[i];
      open += !proven_far(st, (double)dot[i], load_f64(q + qLen), pickSq, root, load_f64(q + qLen + 8), pickError);
    }
  }
  /* Then the exact pass, with the rows a few ahead prefetched (they are scattered over the candidates). */
  const float *centre = (const float *)(base + (uint32_t)pick);
  int32_t k = 0;
  for (int32_t t = 0; t < open; t++) {
    if (t + 4 < open) {
      const char *ahead = (const char *)(base + (uint32_t)x + (size_t)kept[t + 4] * (uint32_t)st->rowBytes);
      for (int32_t b = 0; b < st->rowBytes; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
    }
    const int32_t r = kept[t];
    const double bound = load_f64(bounds + 8 * (size_t)r);
    const double s = exact_sqdist((const float *)(base + (uint32_t)x + (size_t)r * (uint32_t)st->rowBytes), centre, st->D, bound);
    if (s >= bound) continue;
    kept[k] = r;
    store_f64(out + 8 * (size_t)k, s);
    k++;
  }
  return k;
}

/* sqdist_rows without bounds: f64[outAt + 8t] = the squared distance of row i32[rowsAt + 4t] at x to the centre at
 * `pick`, for t < count. */
AVX512 static void rows_exact(kernel_state *st, int32_t x, int32_t rowsAt, int32_t count, int32_t pick, int32_t outAt) {
  uint8_t *base = st->base;
  const int32_t *rows = (const int32_t *)(base + (uint32_t)rowsAt);
  const float *centre = (const float *)(base + (uint32_t)pick);
  uint8_t *out = base + (uint32_t)outAt;
  for (int32_t t = 0; t < count; t++) {
    if (t + 4 < count) {
      const char *ahead = (const char *)(base + (uint32_t)x + (size_t)rows[t + 4] * (uint32_t)st->rowBytes);
      for (int32_t b = 0; b < st->rowBytes; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
    }
    const float *row = (const float *)(base + (uint32_t)x + (size_t)rows[t] * (uint32_t)st->rowBytes);
    store_f64(out + 8 * (size_t)t, exact_sqdist(row, centre, st->D, INFINITY));
  }
}

/* scan_columns (distance-kernel.ts): lo, hi and sum of each of the D columns of `count` rows from x folded into
 * stats (lo[D], hi[D], sum[D]), the sums in row order (8 columns per vector keep each column's order); v - v of
 * every value added to stats[3D] (not 0: some value is not finite). lo and hi keep the first of equal values. */
AVX512 static void scan_columns(uint8_t *base, uint32_t x, int32_t D, int32_t count, uint32_t statsAt) {
  double *lo = (double *)(base + statsAt), *hi = lo + D, *sum = hi + D;
  const int32_t full8 = D & ~7;
  __m512d nonFinite = _mm512_setzero_pd();
  double nonFiniteTail = 0;
  for (int32_t r = 0; r < count; r++) {
    const float *row = (const float *)(base + x) + (size_t)r * D;
    for (int32_t c = 0; c < full8; c += 8) {
      const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(row + c));
      const __m512d l = _mm512_loadu_pd(lo + c), h = _mm512_loadu_pd(hi + c);
      _mm512_storeu_pd(lo + c, _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, l, _CMP_LT_OQ), l, v));
      _mm512_storeu_pd(hi + c, _mm512_mask_blend_pd(_mm512_cmp_pd_mask(h, v, _CMP_LT_OQ), h, v));
      _mm512_storeu_pd(sum + c, _mm512_add_pd(_mm512_loadu_pd(sum + c), v));
      nonFinite = _mm512_add_pd(nonFinite, _mm512_sub_pd(v, v));
    }
    for (int32_t c = full8; c < D; c++) {
      const double v = row[c];
      if (v < lo[c]) lo[c] = v;
      if (hi[c] < v) hi[c] = v;
      sum[c] += v;
      nonFiniteTail += v - v;
    }
  }
  sum[D] += _mm512_reduce_add_pd(nonFinite) + nonFiniteTail;
}

/* quantize_rows (distance-kernel.ts): the int8 copies q of `count` rows of D values from x, qRowBytes apart from
 * qx, each followed by sum(w*q^2) and its error bound; the quantiser's values at paramsAt (writeQuantizerParams:
 * mid, inverse step, step and weight for each pair of columns). q and sum(w*q^2) (integers) are the WebAssembly
 * kernel's exactly; the error is summed in another order, which its factor 1 + 1e-12 covers. */
AVX512 static int quantize_rows(uint8_t *base, uint32_t x, int32_t D, int32_t count, uint32_t qx, uint32_t qRowBytes, int32_t qLen,
                                uint32_t paramsAt, double margin) {
  const int32_t padded = (D + 7) & ~7;
  double *columns = malloc(4 * (size_t)padded * sizeof(double));
  if (!columns) return 0;
  double *mid = columns, *inverse = mid + padded, *step = inverse + padded, *weight = step + padded;
  for (int32_t c = 0; c < D; c++) {
    const uint8_t *pair = base + paramsAt + 64 * (size_t)(c >> 1) + 8 * (c & 1);
    mid[c] = load_f64(pair);
    inverse[c] = load_f64(pair + 16);
    step[c] = load_f64(pair + 32);
    weight[c] = load_f64(pair + 48);
  }
  const int32_t full8 = D & ~7;
  const __m512d low = _mm512_set1_pd(-127.0), high = _mm512_set1_pd(127.0);
  for (int32_t r = 0; r < count; r++) {
    const float *row = (const float *)(base + x) + (size_t)r * D;
    int8_t *q = (int8_t *)(base + qx + (size_t)r * qRowBytes);
    __m512d sqV = _mm512_setzero_pd(), e2V = _mm512_setzero_pd();
    for (int32_t c = 0; c < full8; c += 8) {
      const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(row + c)), m = _mm512_loadu_pd(mid + c);
      __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(_mm512_sub_pd(v, m), _mm512_loadu_pd(inverse + c)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      k = _mm512_min_pd(_mm512_max_pd(k, low), high);
      _mm_storel_epi64((__m128i *)(q + c), _mm256_cvtepi32_epi8(_mm512_cvtpd_epi32(k)));
      sqV = _mm512_add_pd(sqV, _mm512_mul_pd(_mm512_mul_pd(_mm512_loadu_pd(weight + c), k), k));
      const __m512d d = _mm512_sub_pd(v, _mm512_add_pd(m, _mm512_mul_pd(_mm512_loadu_pd(step + c), k)));
      e2V = _mm512_add_pd(e2V, _mm512_mul_pd(d, d));
    }
    double sq = _mm512_reduce_add_pd(sqV), e2 = _mm512_reduce_add_pd(e2V);
    for (int32_t c = full8; c < D; c++) {
      const double v = row[c];
      double k = nearbyint((v - mid[c]) * inverse[c]);
      k = k < -127.0 ? -127.0 : k > 127.0 ? 127.0 : k;
      q[c] = (int8_t)k;
      sq += weight[c] * k * k;
      const double d = v - (mid[c] + step[c] * k);
      e2 += d * d;
    }
    store_f64((uint8_t *)q + qLen, sq);
    store_f64((uint8_t *)q + qLen + 8, sqrt(e2) * (1 + 1e-12) + margin);
  }
  free(columns);
  return 1;
}

/* ---- The moved rows of a pass (scanPass in fps-kernel.ts) ---- */

/* One thread's arrays that scanPass's loop over the rows that got closer reads and writes: the cells' (by slot) and
 * the region's (by position), the kernel's rows and squared distances, and the rule's score of a distance. */
typedef struct {
  napi_ref refs[17];
  int32_t *size, *cellIndex, *cellPosition, *dirtyStamp, *moved, *counts, *cellOf, *index, *rows;
  double *radius, *cellScore, *nearestSq, *nearest, *score, *weight, *out;
  uint8_t *status;
  size_t cells, count, movedPairs, rowCount;
  /* The rule, for plain_score. */
  int32_t kind;
  double wDiv;
} move_state;

/* scanPass's loop over rows[0 .. closer) of a block, which got closer to the centre in `slot` (squared distances in
 * out): each leaves its cell (whose best it may have been: the cell is stamped dirty) for cell `slot`, its nearest,
 * cell and score are updated, and (position, cell it left) appended to moved. counts holds the moved pairs and the
 * dirty cells so far. Returns 0 when a row, a cell or the moved list is out of range (nothing past it changed). */
static int move_rows(move_state *m, int32_t closer, int32_t slot, int32_t stamp) {
  int32_t moved = m->counts[0], dirty = m->counts[1];
  for (int32_t t = 0; t < closer; t++) {
    const int32_t p = m->rows[t];
    if (p < 0 || (size_t)p >= m->count || (size_t)moved >= m->movedPairs) return 0;
    const int32_t from = m->cellOf[p];
    if (from < -1 || from >= (int32_t)m->cells) return 0;
    /* A row in no cell (-1) has no cell to leave (JavaScript's writes to index -1 do nothing). */
    if (from >= 0) {
      m->size[from]--;
      if (m->cellPosition[from] == p && m->dirtyStamp[from] != stamp) {
        m->dirtyStamp[from] = stamp;
        dirty++;
      }
    }
    const double d2 = m->out[t], d = sqrt(d2);
    const double s = plain_score(m->kind, m->wDiv, d, m->weight[p]);
    m->nearestSq[p] = d2;
    m->nearest[p] = d;
    m->cellOf[p] = slot;
    m->score[p] = s;
    m->moved[2 * moved] = p;
    m->moved[2 * moved + 1] = from;
    moved++;
    m->size[slot]++;
    if (d > m->radius[slot]) m->radius[slot] = d;
    if (m->status[p] == 0 && (s > m->cellScore[slot] || (s == m->cellScore[slot] && m->index[p] < m->cellIndex[slot]))) {
      m->cellScore[slot] = s;
      m->cellIndex[slot] = m->index[p];
      m->cellPosition[slot] = p;
    }
    m->counts[0] = moved;
    m->counts[1] = dirty;
  }
  return 1;
}

/* ---- Node-API glue ---- */

/* The state a call is bound to, with its `expected` arguments read as uint32 (offsets into a memory of up to
 * 4 GiB, as WebAssembly reads them); NULL, with an exception pending, when they are not that. */
static kernel_state *call_arguments(napi_env env, napi_callback_info info, size_t expected, uint32_t *values) {
  napi_value argv[16];
  size_t argc = 16;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok || argc != expected) {
    napi_throw_type_error(env, NULL, "selection kernels: wrong number of arguments");
    return NULL;
  }
  for (size_t i = 0; i < expected; i++)
    if (napi_get_value_uint32(env, argv[i], &values[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "selection kernels: arguments must be numbers");
      return NULL;
    }
  return data;
}

/* True when [at, at + bytes) lies inside a memory of `length` bytes (throws otherwise: a wrong offset must not reach
 * memory). */
static int within(napi_env env, size_t length, uint64_t at, uint64_t bytes) {
  if (at + bytes <= length) return 1;
  napi_throw_range_error(env, NULL, "selection kernels: offset outside the selection's memory");
  return 0;
}

static int inside(napi_env env, const kernel_state *st, uint64_t at, uint64_t bytes) { return within(env, st->length, at, bytes); }

/* A candidate's row at x and its quantised copy at qx lie inside the memory (throws otherwise). */
static int candidate_inside(napi_env env, const kernel_state *st, uint64_t x, uint64_t qx) {
  return inside(env, st, x, (uint32_t)st->rowBytes) && inside(env, st, qx, (uint64_t)st->qLen + 16);
}

static napi_value int32_value(napi_env env, int32_t v) {
  napi_value result;
  napi_create_int32(env, v, &result);
  return result;
}

/* nearest(x, qx, nearestSq, nearest, lowered, from, to) */
static napi_value nearest_call(napi_env env, napi_callback_info info) {
  uint32_t a[7];
  kernel_state *st = call_arguments(env, info, 7, a);
  if (!st || !candidate_inside(env, st, a[0], a[1]) || !inside(env, st, a[2], 8) || !inside(env, st, a[3], 8) || !inside(env, st, a[4], 4))
    return NULL;
  if (a[5] > a[6] || a[6] > (uint32_t)st->slots) {
    napi_throw_range_error(env, NULL, "selection kernels: centre slots outside [0, slots)");
    return NULL;
  }
  return int32_value(env, nearest_range(st, (int32_t)a[0], (int32_t)a[1], (int32_t)a[2], (int32_t)a[3], (int32_t)a[4], (int32_t)a[5],
                                        (int32_t)a[6]));
}

/* catchUpRange(x, qx, qRowBytes, nearestSq, nearest, fresh, cellOf, score, weight, lowered, first, end, to, kind, wDiv) */
static napi_value catch_up_call(napi_env env, napi_callback_info info) {
  napi_value argv[15];
  size_t argc = 15;
  void *data;
  uint32_t a[14];
  double wDiv;
  int ok = napi_get_cb_info(env, info, &argc, argv, NULL, &data) == napi_ok && argc == 15;
  for (int i = 0; ok && i < 14; i++) ok = napi_get_value_uint32(env, argv[i], &a[i]) == napi_ok;
  ok = ok && napi_get_value_double(env, argv[14], &wDiv) == napi_ok;
  if (!ok) {
    napi_throw_type_error(env, NULL, "selection kernels: catchUpRange takes numbers");
    return NULL;
  }
  kernel_state *st = data;
  const uint64_t first = a[10], end = a[11], qRowBytes = a[2];
  if (first > end || a[12] > (uint32_t)st->slots || a[13] > 1 || qRowBytes < (uint64_t)st->qLen + 16) {
    napi_throw_range_error(env, NULL, "selection kernels: catchUpRange needs first <= end, to <= slots, kind 0 or 1 and whole quantised rows");
    return NULL;
  }
  if (end > first &&
      (!inside(env, st, a[0], end * (uint32_t)st->rowBytes) || !inside(env, st, a[1] + (end - 1) * qRowBytes, (uint64_t)st->qLen + 16) ||
       !inside(env, st, a[3], 8 * end) || !inside(env, st, a[4], 8 * end) || !inside(env, st, a[5], 4 * end) ||
       !inside(env, st, a[6], 4 * end) || !inside(env, st, a[7], 8 * end) || !inside(env, st, a[8], 8 * end) || !inside(env, st, a[9], 4)))
    return NULL;
  if (!catch_up_range(st, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], (int32_t)first, (int32_t)end, (int32_t)a[12],
                      (int32_t)a[13], wDiv)) {
    napi_throw_range_error(env, NULL, "selection kernels: catchUpRange met a candidate claimed by another thread");
  }
  return NULL;
}

/* prefetch(x, qx, nearestSq, nearest, score, fresh): a candidate's row, its quantised copy and its entries in those
 * arrays are fetched into the cache, for a caller that will likely need them after its next call. */
static napi_value prefetch_call(napi_env env, napi_callback_info info) {
  uint32_t a[6];
  kernel_state *st = call_arguments(env, info, 6, a);
  if (!st || !candidate_inside(env, st, a[0], a[1]) || !inside(env, st, a[2], 8) || !inside(env, st, a[3], 8) || !inside(env, st, a[4], 8) ||
      !inside(env, st, a[5], 4))
    return NULL;
  const char *base = (const char *)st->base;
  for (int32_t b = 0; b < st->rowBytes; b += 64) _mm_prefetch(base + a[0] + b, _MM_HINT_T0);
  for (int32_t b = 0; b < st->qLen + 16; b += 64) _mm_prefetch(base + a[1] + b, _MM_HINT_T0);
  _mm_prefetch(base + a[1] + st->qLen + 15, _MM_HINT_T0);
  for (int i = 2; i < 6; i++) _mm_prefetch(base + a[i], _MM_HINT_T0);
  return NULL;
}

/* rows(x, rows, count, pick, bounds, roots, out, qx, qRowBytes, qPick, kept); the caller keeps row numbers below the
 * region's size, as the WebAssembly kernel's caller does. */
static napi_value rows_call(napi_env env, napi_callback_info info) {
  uint32_t a[11];
  kernel_state *st = call_arguments(env, info, 11, a);
  if (!st) return NULL;
  const uint64_t count = a[2];
  if (!inside(env, st, a[1], 4 * count) || !inside(env, st, a[3], (uint32_t)st->rowBytes) || !inside(env, st, a[6], 8 * count) ||
      !inside(env, st, a[9], 2 * (uint64_t)st->qLen + 16) || !inside(env, st, a[10], 4 * count))
    return NULL;
  int32_t v[11];
  for (int i = 0; i < 11; i++) v[i] = (int32_t)a[i];
  return int32_value(env, rows_closer(st, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]));
}

/* exact(x, rows, count, pick, out); the caller keeps row numbers below the size of the rows at x. */
static napi_value exact_call(napi_env env, napi_callback_info info) {
  uint32_t a[5];
  kernel_state *st = call_arguments(env, info, 5, a);
  if (!st) return NULL;
  const uint64_t count = a[2];
  if (!inside(env, st, a[1], 4 * count) || !inside(env, st, a[3], (uint32_t)st->rowBytes) || !inside(env, st, a[4], 8 * count)) return NULL;
  rows_exact(st, (int32_t)a[0], (int32_t)a[1], (int32_t)a[2], (int32_t)a[3], (int32_t)a[4]);
  return NULL;
}

/* The memory (a Uint8Array) and the `expected` - 1 numbers after it as uint32, except a last double when `lastDouble`;
 * NULL, with an exception pending, when they are not that. */
static uint8_t *memory_arguments(napi_env env, napi_callback_info info, size_t expected, int lastDouble, size_t *length,
                                 uint32_t *values, double *last) {
  napi_value argv[16];
  size_t argc = 16, offset;
  napi_typedarray_type type;
  void *data;
  napi_value arrayBuffer;
  int ok = napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == expected &&
           napi_get_typedarray_info(env, argv[0], &type, length, &data, &arrayBuffer, &offset) == napi_ok && type == napi_uint8_array;
  const size_t numbers = expected - 1 - (lastDouble ? 1 : 0);
  for (size_t i = 0; ok && i < numbers; i++) ok = napi_get_value_uint32(env, argv[1 + i], &values[i]) == napi_ok;
  if (ok && lastDouble) ok = napi_get_value_double(env, argv[expected - 1], last) == napi_ok;
  if (!ok) {
    napi_throw_type_error(env, NULL, "selection kernels: expected the memory and numbers");
    return NULL;
  }
  return data;
}

/* scanColumns(memory, x, D, count, stats) */
static napi_value scan_call(napi_env env, napi_callback_info info) {
  uint32_t a[4];
  size_t length;
  uint8_t *base = memory_arguments(env, info, 5, 0, &length, a, NULL);
  if (!base) return NULL;
  const uint64_t D = a[1], count = a[2];
  if (D < 1 || D > 65536 || a[3] % 8 != 0) {
    napi_throw_range_error(env, NULL, "selection kernels: scanColumns needs 1 to 65536 columns and aligned stats");
    return NULL;
  }
  if (!within(env, length, a[0], 4 * D * count) || !within(env, length, a[3], 24 * D + 16)) return NULL;
  scan_columns(base, a[0], (int32_t)D, (int32_t)count, a[3]);
  return NULL;
}

/* quantizeRows(memory, x, D, count, qx, qRowBytes, qLen, params, margin) */
static napi_value quantize_call(napi_env env, napi_callback_info info) {
  uint32_t a[7];
  size_t length;
  double margin;
  uint8_t *base = memory_arguments(env, info, 9, 1, &length, a, &margin);
  if (!base) return NULL;
  const uint64_t D = a[1], count = a[2], qRowBytes = a[4], qLen = a[5];
  if (D < 1 || D > 65536 || qLen < D || qRowBytes < qLen + 16) {
    napi_throw_range_error(env, NULL, "selection kernels: quantizeRows needs 1 to 65536 columns and room for each copy");
    return NULL;
  }
  if (!within(env, length, a[0], 4 * D * count) || !within(env, length, a[6], 32 * (D + 1)) ||
      (count > 0 && !within(env, length, a[3] + (count - 1) * qRowBytes, qLen + 16)))
    return NULL;
  if (!quantize_rows(base, a[0], (int32_t)D, (int32_t)count, a[3], a[4], (int32_t)qLen, a[6], margin)) {
    napi_throw_error(env, NULL, "selection kernels: out of memory");
  }
  return NULL;
}

static void free_state(kernel_state *st) {
  free(st->quadColumn);
  free(st->columnGroup);
  free(st->pickGroups);
  free(st->quadT);
  free(st->centreSq);
  free(st->centreError);
  free(st->rowQuads);
  free(st);
}

/* moveRows(closer, slot, stamp), bound to a move_state by moves(). */
static napi_value move_rows_call(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  void *data;
  uint32_t a[3];
  int ok = napi_get_cb_info(env, info, &argc, argv, NULL, &data) == napi_ok && argc == 3;
  for (int i = 0; ok && i < 3; i++) ok = napi_get_value_uint32(env, argv[i], &a[i]) == napi_ok;
  move_state *m = data;
  if (!ok || a[0] > m->rowCount || a[1] >= m->cells) {
    napi_throw_range_error(env, NULL, "selection kernels: moveRows(closer, slot, stamp) takes a row count and a cell in range");
    return NULL;
  }
  if (!move_rows(m, (int32_t)a[0], (int32_t)a[1], (int32_t)a[2])) {
    napi_throw_range_error(env, NULL, "selection kernels: moveRows met a row or cell out of range, or a full moved list");
  }
  return NULL;
}

static void release_moves(napi_env env, void *data, void *hint) {
  (void)hint;
  move_state *m = data;
  for (int i = 0; i < 17; i++) napi_delete_reference(env, m->refs[i]);
  free(m);
}

/* moves(size, radius, cellScore, cellIndex, cellPosition, dirtyStamp, moved, counts, nearestSq, nearest, cellOf, score,
 * weight, status, index, rows, out, kind, wDiv) -> moveRows(closer, slot, stamp): typed arrays, checked for their
 * types and lengths (cells: size's length; the region's: nearestSq's), kept alive while the function is. */
static napi_value moves(napi_env env, napi_callback_info info) {
  enum { ARRAYS = 17 };
  static const napi_typedarray_type types[ARRAYS] = {
    napi_int32_array, napi_float64_array, napi_float64_array, napi_int32_array, napi_int32_array, napi_int32_array,
    napi_int32_array, napi_int32_array, napi_float64_array, napi_float64_array, napi_int32_array, napi_float64_array,
    napi_float64_array, napi_uint8_array, napi_int32_array, napi_int32_array, napi_float64_array,
  };
  napi_value argv[ARRAYS + 2];
  size_t argc = ARRAYS + 2, lengths[ARRAYS];
  void *pointers[ARRAYS];
  int32_t kind = -1;
  double wDiv = 0;
  int ok = napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == ARRAYS + 2;
  for (int i = 0; ok && i < ARRAYS; i++) {
    napi_typedarray_type type;
    napi_value buffer;
    size_t offset;
    ok = napi_get_typedarray_info(env, argv[i], &type, &lengths[i], &pointers[i], &buffer, &offset) == napi_ok && type == types[i];
  }
  ok = ok && napi_get_value_int32(env, argv[ARRAYS], &kind) == napi_ok && napi_get_value_double(env, argv[ARRAYS + 1], &wDiv) == napi_ok;
  const size_t cells = ok ? lengths[0] : 0, count = ok ? lengths[8] : 0;
  ok = ok && (kind == 0 || kind == 1) && cells > 0 && cells <= INT32_MAX && count <= INT32_MAX;
  for (int i = 1; ok && i < 6; i++) ok = lengths[i] == cells;
  for (int i = 9; ok && i < 15; i++) ok = lengths[i] == count;
  ok = ok && lengths[7] >= 2 && lengths[16] >= lengths[15];
  if (!ok) {
    napi_throw_type_error(env, NULL, "selection kernels: moves() takes the cells' and the region's typed arrays, rows, out, kind and wDiv");
    return NULL;
  }
  move_state *m = calloc(1, sizeof *m);
  if (!m) {
    napi_throw_error(env, NULL, "selection kernels: out of memory");
    return NULL;
  }
  m->size = pointers[0];
  m->radius = pointers[1];
  m->cellScore = pointers[2];
  m->cellIndex = pointers[3];
  m->cellPosition = pointers[4];
  m->dirtyStamp = pointers[5];
  m->moved = pointers[6];
  m->counts = pointers[7];
  m->nearestSq = pointers[8];
  m->nearest = pointers[9];
  m->cellOf = pointers[10];
  m->score = pointers[11];
  m->weight = pointers[12];
  m->status = pointers[13];
  m->index = pointers[14];
  m->rows = pointers[15];
  m->out = pointers[16];
  m->cells = cells;
  m->count = count;
  m->movedPairs = lengths[6] / 2;
  m->rowCount = lengths[15];
  m->kind = kind;
  m->wDiv = wDiv;
  for (int i = 0; i < ARRAYS; i++) napi_create_reference(env, argv[i], 1, &m->refs[i]);
  napi_value fn;
  napi_create_function(env, "moveRows", NAPI_AUTO_LENGTH, move_rows_call, m, &fn);
  napi_add_finalizer(env, fn, m, release_moves, NULL, NULL);
  return fn;
}

/* Finalizer of the bound object and of each of its functions: the state goes with the last of them (a function
 * kept alone must not find it freed). */
static void release_state(napi_env env, void *data, void *hint) {
  (void)hint;
  kernel_state *st = data;
  if (--st->holders > 0) return;
  napi_delete_reference(env, st->memoryRef);
  free_state(st);
}

/* The columns' weight groups from the quantiser's parameters at `params` (writeQuantizerParams: each pair of columns'
 * mid, inverse step, step and weight, the weight 4^g); 0 when a weight is not one of those. Out of memory, it leaves
 * a NULL behind for the caller to find. */
static int group_columns(kernel_state *st, const uint8_t *params) {
  int32_t count[WEIGHT_GROUPS] = {0};
  int8_t *group = st->columnGroup = malloc((size_t)st->D);
  if (!group) return 1;
  for (int32_t c = 0; c < st->D; c++) {
    const double w = load_f64(params + 64 * (size_t)(c >> 1) + 48 + 8 * (c & 1));
    group[c] = -1;
    for (int32_t g = 0; g < WEIGHT_GROUPS; g++)
      if (w == (double)(1 << (2 * g))) group[c] = (int8_t)g;
    if (group[c] < 0) return 0;
    count[group[c]]++;
  }
  st->groupCount = 0;
  st->groupStart[0] = 0;
  for (int32_t g = 0; g < WEIGHT_GROUPS; g++) {
    st->groupStart[g + 1] = st->groupStart[g] + (count[g] + 3) / 4;
    if (count[g] > 0) st->groups[st->groupCount++] = g;
  }
  st->quads = st->groupStart[WEIGHT_GROUPS];
  st->inOrder = st->groupCount == 1;
  st->quadColumn = malloc(4 * (size_t)st->quads * sizeof(int32_t));
  st->pickBytes = (st->qLen + 63) / 64 * 64;
  st->pickGroups = calloc((size_t)st->groupCount * st->pickBytes, 1);
  st->pickAt = -1;
  if (!st->quadColumn || !st->pickGroups) return 1;
  for (int32_t g = 0, i = 0; g < WEIGHT_GROUPS; g++) {
    for (int32_t c = 0; c < st->D; c++)
      if (group[c] == g) st->quadColumn[i++] = c;
    while (i < 4 * st->groupStart[g + 1]) st->quadColumn[i++] = -1;
  }
  return 1;
}

/* bind(memory: Uint8Array over the whole selection memory, centres, qCentres, slots, D, rowBytes, qLen, qPickBytes,
 * slack, qScale, quantizer) -> { nearest, rows, exact, catchUpRange, prefetch } for one thread; the quantiser's parameters are written at
 * `quantizer` before. */
static napi_value bind(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  size_t argc = 11;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value arrayBuffer;
  uint32_t v[7], params;
  double slack, qScale;
  int ok = argc == 11 && napi_get_typedarray_info(env, argv[0], &type, &length, &data, &arrayBuffer, &offset) == napi_ok &&
           type == napi_uint8_array;
  for (int i = 0; ok && i < 7; i++) ok = napi_get_value_uint32(env, argv[1 + i], &v[i]) == napi_ok;
  ok = ok && napi_get_value_double(env, argv[8], &slack) == napi_ok && napi_get_value_double(env, argv[9], &qScale) == napi_ok &&
       napi_get_value_uint32(env, argv[10], &params) == napi_ok;
  if (!ok || v[2] > INT32_MAX / 2 || v[3] < 1 || v[3] > 65536 || v[5] < 16 || v[5] % 16 != 0 || v[6] != 2 * v[5] + 16 ||
      v[4] < 4 * v[3]) {
    napi_throw_type_error(
      env, NULL, "selection kernels: bind(memory, centres, qCentres, slots, D, rowBytes, qLen, qPickBytes, slack, qScale, quantizer)");
    return NULL;
  }
  if (!within(env, length, params, 32 * ((uint64_t)v[3] + 1))) return NULL;
  kernel_state *st = calloc(1, sizeof *st);
  if (!st) {
    napi_throw_error(env, NULL, "selection kernels: out of memory");
    return NULL;
  }
  st->base = data;
  st->length = length;
  st->centres = (int32_t)v[0];
  st->qCentres = (int32_t)v[1];
  st->slots = (int32_t)v[2];
  st->D = (int32_t)v[3];
  st->rowBytes = (int32_t)v[4];
  st->qLen = (int32_t)v[5];
  st->qPickBytes = (int32_t)v[6];
  if (!group_columns(st, st->base + params)) {
    free_state(st);
    napi_throw_type_error(env, NULL, "selection kernels: bind needs the quantiser's column weights (4^g, g < 5) at `quantizer`");
    return NULL;
  }
  st->stride = ((st->slots + 15) / 16 | 1) * 16;
  st->qScale2 = qScale * qScale * (1 - Q_MARGIN);
  st->rootSlack = sqrt(slack) * (1 + Q_MARGIN);
  st->quadT = malloc(((size_t)st->quads * st->stride + 16) * 4);
  st->centreSq = malloc(((size_t)st->slots + 16) * 8);
  st->centreError = malloc(((size_t)st->slots + 16) * 8);
  st->rowQuads = malloc(4 * (size_t)st->quads);
  napi_value result, nearest, rows, exact, catchUpRange, prefetch;
  if (!st->columnGroup || !st->quadColumn || !st->pickGroups || !st->quadT || !st->centreSq || !st->centreError || !st->rowQuads ||
      (uint64_t)v[0] + (uint64_t)v[2] * v[4] > length || (uint64_t)v[1] + (uint64_t)v[2] * v[6] > length) {
    free_state(st);
    napi_throw_error(env, NULL, "selection kernels: out of memory, or centres outside the memory");
    return NULL;
  }
  napi_create_reference(env, argv[0], 1, &st->memoryRef);
  napi_create_object(env, &result);
  napi_create_function(env, "nearest", NAPI_AUTO_LENGTH, nearest_call, st, &nearest);
  napi_create_function(env, "rows", NAPI_AUTO_LENGTH, rows_call, st, &rows);
  napi_create_function(env, "exact", NAPI_AUTO_LENGTH, exact_call, st, &exact);
  napi_create_function(env, "catchUpRange", NAPI_AUTO_LENGTH, catch_up_call, st, &catchUpRange);
  napi_create_function(env, "prefetch", NAPI_AUTO_LENGTH, prefetch_call, st, &prefetch);
  napi_set_named_property(env, result, "nearest", nearest);
  napi_set_named_property(env, result, "rows", rows);
  napi_set_named_property(env, result, "exact", exact);
  napi_set_named_property(env, result, "catchUpRange", catchUpRange);
  napi_set_named_property(env, result, "prefetch", prefetch);
  st->holders = 6;
  napi_value holders[6] = {result, nearest, rows, exact, catchUpRange, prefetch};
  for (int i = 0; i < 6; i++) napi_add_finalizer(env, holders[i], st, release_state, NULL, NULL);
  return result;
}

void register_extxyz_frames(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  // The extxyz frame reader (src/core/formats/extxyz-native.c) is plain C: there on any x86-64 CPU.
  register_extxyz_frames(env, exports);
  __builtin_cpu_init();
  const int supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  napi_value fn, flag;
  napi_get_boolean(env, supported, &flag);
  napi_set_named_property(env, exports, "supported", flag);
  if (supported) {
    napi_create_function(env, "bind", NAPI_AUTO_LENGTH, bind, NULL, &fn);
    napi_set_named_property(env, exports, "bind", fn);
    napi_create_function(env, "scanColumns", NAPI_AUTO_LENGTH, scan_call, NULL, &fn);
    napi_set_named_property(env, exports, "scanColumns", fn);
    napi_create_function(env, "quantizeRows", NAPI_AUTO_LENGTH, quantize_call, NULL, &fn);
    napi_set_named_property(env, exports, "quantizeRows", fn);
    napi_create_function(env, "moves", NAPI_AUTO_LENGTH, moves, NULL, &fn);
    napi_set_named_property(env, exports, "moves", fn);
  }
  return exports;
}
