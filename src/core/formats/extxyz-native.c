/*
 * Native reading of plain extxyz frames for candidate summaries (extxyz-summary.ts): per frame, its candidate_id
 * (candidate-id.ts), atom count and species, straight from the bytes. Built into the same module as the selection
 * kernels (scripts/build-native.mjs), and used only where the JavaScript reader would read the frame to the same
 * values: it takes a narrower form than that reader and stops at the first frame outside it, which the JavaScript
 * reader then takes (or gives up on, as it does without this). So the ids are the same with it or without it.
 *
 * The form: the atom count alone on its line; a comment line of Lattice="9 plain decimals", pbc="T/F x3",
 * Properties=<exactly the spec given> and info keys of plain values (neither stress, virial nor uid); atom lines of a
 * species (an element symbol, any case, up to 3 ASCII letters), 3 plain decimals (-?digits(.digits)?, at most 19
 * digits, 22 of them after the point, below 2^53 as an integer) and the given columns' tokens, separated by spaces;
 * `\n` ends.
 *
 * The id text and its rounding follow candidate-id.ts byte for byte: Math.round(v * 1e6) is V8's round half up
 * (ceil, then one down when that is more than half above), values at or beyond 2^31 micro-Angstrom are left to
 * JavaScript, and the hash is OpenSSL's SHA-256, which Node exports to addons.
 */
#include <node_api.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL's SHA-256, which Node exports to addons; weak, so that a Node without it still loads the module (the
 * reader is then left out). The context is opaque here, with room to spare over OpenSSL's 112 bytes. */
typedef struct {
  _Alignas(16) unsigned char opaque[256];
} sha256_context;
int SHA256_Init(sha256_context *context) __attribute__((weak));
int SHA256_Update(sha256_context *context, const void *data, size_t length) __attribute__((weak));
int SHA256_Final(unsigned char *digest, sha256_context *context) __attribute__((weak));

#define NL 10
#define SPACE 32
#define QUOTE 34
#define MAX_ATOMS (1 << 20)
#define ID_HEX 20
#define MAX_SYMBOLS 256

/* Kinds of the columns after the positions, as extxyz-summary.ts passes them. */
enum { COLUMN_R = 1, COLUMN_I = 2, COLUMN_L = 3, COLUMN_S = 4 };

#define SPECIES_CACHE 1024

typedef struct {
  int count;
  char symbols[MAX_SYMBOLS][4];
  /* Species tokens met, as they were spelt (length and bytes packed), and their symbols' index + 1 (0: empty). */
  uint32_t cacheKey[SPECIES_CACHE];
  int16_t cacheIndex[SPECIES_CACHE];
  /* The id text of a frame, grown as frames need. */
  uint8_t *text;
  size_t capacity;
} frame_reader;

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int is_key_byte(uint8_t c) { return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }

static int is_value_byte(uint8_t c) {
  return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '.' || c == '+' || c == '-';
}

static int spells(const uint8_t *b, size_t start, size_t end, const char *word) {
  size_t n = strlen(word);
  return end - start == n && memcmp(b + start, word, n) == 0;
}

/* A plain decimal at b[*p] after spaces, ending at a space, a newline or `close`, into *out; 0 when not that. */
static int plain_decimal(const uint8_t *b, size_t *p, double *out, uint8_t close) {
  size_t q = *p;
  while (b[q] == SPACE) q++;
  const int negative = b[q] == '-';
  if (negative) q++;
  const size_t first = q;
  uint64_t mantissa = 0;
  int digits = 0;
  while (is_digit(b[q])) {
    if (++digits > 19) return 0;
    mantissa = mantissa * 10 + (b[q++] - '0');
  }
  if (q == first) return 0;
  int scale = 0;
  if (b[q] == '.') {
    const size_t fraction = ++q;
    while (is_digit(b[q])) {
      if (++digits > 19) return 0;
      mantissa = mantissa * 10 + (b[q++] - '0');
    }
    scale = (int)(q - fraction);
    if (scale == 0) return 0;
  }
  if ((b[q] != SPACE && b[q] != NL && b[q] != close) || scale > 22 || mantissa > 9007199254740991ULL) return 0;
  const double v = scale == 0 ? (double)mantissa : (double)mantissa / POW10[scale];
  *out = negative ? -v : v;
  *p = q;
  return 1;
}

/* An R, I, L or S column's token at b[*p] after spaces, as extxyz-summary.ts's token(); 0 when not that. */
static int column_token(const uint8_t *b, size_t *p, uint8_t kind) {
  size_t q = *p;
  while (b[q] == SPACE) q++;
  const size_t start = q;
  if (kind == COLUMN_R) {
    if (b[q] == '-') q++;
    size_t digits = q;
    while (is_digit(b[q])) q++;
    if (q == digits) return 0;
    if (b[q] == '.') {
      digits = ++q;
      while (is_digit(b[q])) q++;
      if (q == digits) return 0;
    }
    if (b[q] == 'e' || b[q] == 'E') {
      q++;
      if (b[q] == '+' || b[q] == '-') q++;
      digits = q;
      while (is_digit(b[q])) q++;
      if (q == digits) return 0;
    }
  } else if (kind == COLUMN_I) {
    if (b[q] == '-') q++;
    const size_t digits = q;
    while (is_digit(b[q])) q++;
    if (q == digits || q - digits > 9) return 0;
  } else if (kind == COLUMN_L) {
    if (b[q] == 'T' || b[q] == 'F') q++;
  } else if (kind == COLUMN_S) {
    while (b[q] > SPACE) q++;
  } else {
    return 0;
  }
  if (q == start || (b[q] != SPACE && b[q] != NL)) return 0;
  *p = q;
  return 1;
}

/* The end of an info value at b[p] (a bare token or a quoted list of tokens, of value bytes); 0 when not that. */
static size_t info_value_end(const uint8_t *b, size_t p) {
  if (b[p] != QUOTE) {
    const size_t start = p;
    while (is_value_byte(b[p])) p++;
    return p > start ? p : 0;
  }
  p++;
  int tokens = 0;
  for (;;) {
    while (b[p] == SPACE) p++;
    if (b[p] == QUOTE) break;
    const size_t start = p;
    while (is_value_byte(b[p])) p++;
    if (p == start || (b[p] != SPACE && b[p] != QUOTE)) return 0;
    tokens++;
  }
  return tokens > 0 ? p + 1 : 0;
}

typedef struct {
  double cell[9];
  int pbc[3];
} comment_values;

/* The comment line b[p .. NL): Lattice, pbc, Properties equal to `spec` (or none, when `spec` is the default) and
 * plain info values; 0 when anything else. */
static int read_comment(const uint8_t *b, size_t p, const uint8_t *spec, size_t specLength, int specIsDefault, comment_values *c) {
  int lattice = 0, pbc = 0, properties = 0;
  for (;;) {
    while (b[p] == SPACE) p++;
    if (b[p] == NL) break;
    const size_t key = p;
    while (b[p] != '=' && b[p] > SPACE) p++;
    const size_t keyEnd = p;
    if (b[p] != '=' || keyEnd == key) return 0;
    p++;
    if (spells(b, key, keyEnd, "Lattice")) {
      if (lattice || b[p] != QUOTE) return 0;
      lattice = 1;
      p++;
      for (int k = 0; k < 9; k++)
        if (!plain_decimal(b, &p, &c->cell[k], QUOTE)) return 0;
      while (b[p] == SPACE) p++;
      if (b[p++] != QUOTE) return 0;
    } else if (spells(b, key, keyEnd, "pbc")) {
      if (pbc || b[p] != QUOTE) return 0;
      pbc = 1;
      p++;
      for (int k = 0; k < 3; k++) {
        while (b[p] == SPACE) p++;
        if (b[p] != 'T' && b[p] != 'F') return 0;
        c->pbc[k] = b[p++] == 'T';
      }
      while (b[p] == SPACE) p++;
      if (b[p++] != QUOTE) return 0;
    } else if (spells(b, key, keyEnd, "Properties")) {
      if (properties) return 0;
      properties = 1;
      const size_t value = p;
      while (b[p] > SPACE && b[p] != QUOTE) p++;
      if (p - value != specLength || memcmp(b + value, spec, specLength) != 0) return 0;
    } else {
      for (size_t k = key; k < keyEnd; k++)
        if (!is_key_byte(b[k])) return 0;
      if (keyEnd - key == 3 && (b[key] | 32) == 'u' && (b[key + 1] | 32) == 'i' && (b[key + 2] | 32) == 'd') return 0;
      if (spells(b, key, keyEnd, "stress") || spells(b, key, keyEnd, "virial")) return 0;
      p = info_value_end(b, p);
      if (p == 0) return 0;
    }
    if (b[p] != SPACE && b[p] != NL) return 0;
  }
  if (!properties && !specIsDefault) return 0;
  if (!lattice) memset(c->cell, 0, sizeof c->cell);
  if (!pbc)
    for (int k = 0; k < 3; k++) c->pbc[k] = lattice;
  return 1;
}

/* The species token b[start .. end) as extxyz.ts's readSpecies reads it (capitalised, then a known symbol): its
 * index in the reader's symbols, or -1. */
static int species_index(frame_reader *r, const uint8_t *b, size_t start, size_t end) {
  const size_t length = end - start;
  if (length > 3) return -1;
  uint32_t key = (uint32_t)length << 24;
  for (size_t k = 0; k < length; k++) key |= (uint32_t)b[start + k] << (16 - 8 * k);
  const uint32_t slot = (key * 2654435761u) >> 22;
  if (r->cacheIndex[slot] > 0 && r->cacheKey[slot] == key) return r->cacheIndex[slot] - 1;
  char s[4] = {0};
  for (size_t k = 0; k < length; k++) {
    uint8_t c = b[start + k];
    if (c >= 128) return -1;
    if (k == 0 && c >= 'a' && c <= 'z') c -= 32;
    if (k > 0 && c >= 'A' && c <= 'Z') c += 32;
    s[k] = (char)c;
  }
  for (int i = 0; i < r->count; i++)
    if (memcmp(r->symbols[i], s, 4) == 0) {
      r->cacheKey[slot] = key;
      r->cacheIndex[slot] = (int16_t)(i + 1);
      return i;
    }
  return -1;
}

static int reserve_text(frame_reader *r, size_t bytes) {
  if (bytes <= r->capacity) return 1;
  uint8_t *grown = realloc(r->text, bytes);
  if (!grown) return 0;
  r->text = grown;
  r->capacity = bytes;
  return 1;
}

/* "00" .. "99". */
static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* n in decimal at p; the offset after it. */
static uint8_t *write_unsigned(uint8_t *p, uint32_t n) {
  int digits = 1;
  for (uint32_t limit = 10; digits < 10 && n >= limit; limit *= 10) digits++;
  uint8_t *end = p + digits;
  uint8_t *q = end;
  for (; n >= 100; n /= 100) {
    const uint32_t pair = 2 * (n % 100);
    *--q = (uint8_t)DIGIT_PAIRS[pair + 1];
    *--q = (uint8_t)DIGIT_PAIRS[pair];
  }
  if (n >= 10) {
    *--q = (uint8_t)DIGIT_PAIRS[2 * n + 1];
    *--q = (uint8_t)DIGIT_PAIRS[2 * n];
  } else {
    *--q = (uint8_t)('0' + n);
  }
  return end;
}

/* v as candidate-id.ts's writeMicro writes it: Math.round(v * 1e6), -0 as 0; 0 when that is at or beyond 2^31. */
static int write_micro(uint8_t **at, double v) {
  const double scaled = v * 1e6;
  if (!(fabs(scaled) < 2147483648.0)) return 0;
  // V8's Math.round: the ceiling, one less when that lies more than half above (exact in int64 and double here).
  int64_t rounded = (int64_t)scaled;
  if ((double)rounded < scaled) rounded++;
  if ((double)rounded - 0.5 > scaled) rounded--;
  if (rounded <= -2147483648LL || rounded >= 2147483648LL) return 0;
  uint8_t *p = *at;
  if (rounded < 0) *p++ = '-';
  *at = write_unsigned(p, (uint32_t)(rounded < 0 ? -rounded : rounded));
  return 1;
}

static const char HEX[] = "0123456789abcdef";

typedef struct {
  const uint8_t *b;
  size_t end; /* one past the last newline: every line read lies before it */
  const uint8_t *spec;
  size_t specLength;
  int specIsDefault;
  const uint8_t *kinds;
  size_t columns;
  uint8_t *ids;
  int32_t *natoms;
  uint32_t *starts;
  int32_t *species;
  uint8_t *speciesText;
  size_t speciesCapacity, speciesUsed;
  /* Species indices of this frame's atoms and of the last frame's (read_frame swaps them), positions; room atoms each. */
  int32_t *atomSpecies, *lastSpecies;
  double *positions;
  uint32_t room;
  /* Atoms of the last frame read in this call (0 before the first). */
  uint32_t lastCount;
} scan_call;

/* Room for frames of `natoms` atoms; 0 when out of memory. */
static int reserve_atoms(scan_call *s, uint32_t natoms) {
  if (natoms <= s->room) return 1;
  int32_t *species = realloc(s->atomSpecies, 4 * (size_t)natoms);
  if (species) s->atomSpecies = species;
  int32_t *last = species ? realloc(s->lastSpecies, 4 * (size_t)natoms) : NULL;
  if (last) s->lastSpecies = last;
  double *positions = last ? realloc(s->positions, 24 * (size_t)natoms) : NULL;
  if (!positions) return 0;
  s->positions = positions;
  s->room = natoms;
  return 1;
}

/* The frame at pos, written as frame `f`: the offset after it, or 0 when it is outside the form or incomplete. */
static size_t read_frame(frame_reader *r, scan_call *s, size_t pos, size_t f) {
  const uint8_t *b = s->b;
  size_t p = pos;
  uint32_t natoms = 0;
  while (p < s->end && is_digit(b[p]) && natoms <= MAX_ATOMS) natoms = natoms * 10 + (b[p++] - '0');
  if (p == pos || p >= s->end || b[p] != NL || natoms == 0 || natoms > MAX_ATOMS || !reserve_atoms(s, natoms)) return 0;
  const size_t commentStart = p + 1;
  const uint8_t *newline = commentStart < s->end ? memchr(b + commentStart, NL, s->end - commentStart) : NULL;
  if (!newline) return 0;
  comment_values c;
  if (!read_comment(b, commentStart, s->spec, s->specLength, s->specIsDefault, &c)) return 0;
  size_t q = (size_t)(newline - b) + 1;
  for (uint32_t a = 0; a < natoms; a++) {
    if (q >= s->end) return 0;
    while (b[q] == SPACE) q++;
    const size_t start = q;
    while (b[q] > SPACE) q++;
    if (q == start || b[q] != SPACE) return 0;
    const int index = species_index(r, b, start, q);
    if (index < 0) return 0;
    s->atomSpecies[a] = index;
    for (int k = 0; k < 3; k++)
      if (!plain_decimal(b, &q, &s->positions[3 * a + k], NL)) return 0;
    for (size_t k = 0; k < s->columns; k++)
      if (!column_token(b, &q, s->kinds[k])) return 0;
    while (b[q] == SPACE) q++;
    if (b[q] != NL) return 0;
    q++;
  }
  // The species text, when it differs from the last frame's.
  const int same = s->lastCount == natoms && memcmp(s->lastSpecies, s->atomSpecies, 4 * (size_t)natoms) == 0;
  if (!same && s->speciesUsed + 4 * (size_t)natoms > s->speciesCapacity) return 0;
  // The id text (candidate-id.ts): format, atom count, species, pbc, then the cell and the positions in micro-Angstrom.
  if (!reserve_text(r, 64 + 4 * (size_t)natoms + 12 * (9 + 3 * (size_t)natoms))) return 0;
  uint8_t *t = r->text;
  static const char FORMAT[] = "relabel-candidate-v1\n";
  memcpy(t, FORMAT, sizeof FORMAT - 1);
  t += sizeof FORMAT - 1;
  t = write_unsigned(t, natoms);
  *t++ = NL;
  const uint8_t *speciesStart = t;
  for (uint32_t a = 0; a < natoms; a++) {
    if (a > 0) *t++ = ',';
    const char *symbol = r->symbols[s->atomSpecies[a]];
    const size_t length = strlen(symbol);
    memcpy(t, symbol, length);
    t += length;
  }
  const size_t speciesLength = (size_t)(t - speciesStart);
  *t++ = NL;
  for (int k = 0; k < 3; k++) *t++ = c.pbc[k] ? 'T' : 'F';
  *t++ = NL;
  for (int k = 0; k < 9; k++) {
    if (k > 0) *t++ = SPACE;
    if (!write_micro(&t, c.cell[k])) return 0;
  }
  *t++ = NL;
  for (uint32_t k = 0; k < 3 * natoms; k++) {
    if (k > 0) *t++ = SPACE;
    if (!write_micro(&t, s->positions[k])) return 0;
  }
  unsigned char digest[32];
  sha256_context context;
  SHA256_Init(&context);
  SHA256_Update(&context, r->text, (size_t)(t - r->text));
  SHA256_Final(digest, &context);
  for (int k = 0; k < ID_HEX / 2; k++) {
    s->ids[ID_HEX * f + 2 * k] = (uint8_t)HEX[digest[k] >> 4];
    s->ids[ID_HEX * f + 2 * k + 1] = (uint8_t)HEX[digest[k] & 15];
  }
  s->natoms[f] = (int32_t)natoms;
  s->starts[f] = (uint32_t)pos;
  if (same) {
    s->species[2 * f] = -1;
    s->species[2 * f + 1] = -1;
  } else {
    memcpy(s->speciesText + s->speciesUsed, speciesStart, speciesLength);
    s->species[2 * f] = (int32_t)s->speciesUsed;
    s->species[2 * f + 1] = (int32_t)(s->speciesUsed + speciesLength);
    s->speciesUsed += speciesLength;
    // This frame's species become the last frame's.
    int32_t *last = s->lastSpecies;
    s->lastSpecies = s->atomSpecies;
    s->atomSpecies = last;
    s->lastCount = natoms;
  }
  return q;
}

static int typed_array(napi_env env, napi_value value, napi_typedarray_type expected, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  return napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) == napi_ok && type == expected;
}

/* scan(bytes, from, end, spec, kinds, ids, natoms, starts, species, speciesText): reads frames from bytes[from] on
 * while they are in the form, up to natoms.length frames and the last newline before `end`. Frame f's id is
 * ids[20f .. 20f + 20), its offset starts[f]; species[2f .. 2f + 2) bounds its species text (symbols joined by
 * commas) in speciesText, or is -1, -1 when the species are the last frame's. starts[count] is where it stopped.
 * Returns the frame count. */
static napi_value scan_call_fn(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  size_t argc = 10;
  void *data;
  napi_get_cb_info(env, info, &argc, argv, NULL, &data);
  frame_reader *r = data;
  scan_call s;
  memset(&s, 0, sizeof s);
  void *bytes, *spec, *kinds, *ids, *natoms, *starts, *species, *speciesText;
  size_t length, specLength, columns, idsLength, cap, startsLength, speciesLength, textLength;
  uint32_t from, end;
  int ok = argc == 10 && typed_array(env, argv[0], napi_uint8_array, &bytes, &length) &&
           napi_get_value_uint32(env, argv[1], &from) == napi_ok && napi_get_value_uint32(env, argv[2], &end) == napi_ok &&
           typed_array(env, argv[3], napi_uint8_array, &spec, &specLength) && typed_array(env, argv[4], napi_uint8_array, &kinds, &columns) &&
           typed_array(env, argv[5], napi_uint8_array, &ids, &idsLength) && typed_array(env, argv[6], napi_int32_array, &natoms, &cap) &&
           typed_array(env, argv[7], napi_uint32_array, &starts, &startsLength) &&
           typed_array(env, argv[8], napi_int32_array, &species, &speciesLength) &&
           typed_array(env, argv[9], napi_uint8_array, &speciesText, &textLength);
  if (!ok || idsLength < ID_HEX * cap || startsLength < cap + 1 || speciesLength < 2 * cap) {
    napi_throw_type_error(env, NULL, "extxyz frames: scan(bytes, from, end, spec, kinds, ids, natoms, starts, species, speciesText)");
    return NULL;
  }
  if (from > end || end > length || (end > 0 && ((const uint8_t *)bytes)[end - 1] != NL)) {
    napi_throw_range_error(env, NULL, "extxyz frames: from and end must lie in the bytes, end just after a newline");
    return NULL;
  }
  static const char DEFAULT_SPEC[] = "species:S:1:pos:R:3";
  s.b = bytes;
  s.end = end;
  s.spec = spec;
  s.specLength = specLength;
  s.specIsDefault = specLength == sizeof DEFAULT_SPEC - 1 && memcmp(spec, DEFAULT_SPEC, specLength) == 0 && columns == 0;
  s.kinds = kinds;
  s.columns = columns;
  s.ids = ids;
  s.natoms = natoms;
  s.starts = starts;
  s.species = species;
  s.speciesText = speciesText;
  s.speciesCapacity = textLength;
  size_t frames = 0;
  size_t pos = from;
  for (; frames < cap && pos < end; frames++) {
    const size_t next = read_frame(r, &s, pos, frames);
    if (next == 0) break;
    pos = next;
  }
  free(s.atomSpecies);
  free(s.lastSpecies);
  free(s.positions);
  ((uint32_t *)starts)[frames] = (uint32_t)pos;
  napi_value result;
  napi_create_uint32(env, (uint32_t)frames, &result);
  return result;
}

static void release_reader(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  frame_reader *r = data;
  free(r->text);
  free(r);
}

/* extxyzFrames(symbols: string, the known element symbols joined by commas) -> scan, bound to them. */
static napi_value bind_frames(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char list[4 * MAX_SYMBOLS + 1];
  size_t length = 0;
  if (argc != 1 || napi_get_value_string_latin1(env, argv[0], list, sizeof list, &length) != napi_ok || length >= sizeof list - 1) {
    napi_throw_type_error(env, NULL, "extxyz frames: extxyzFrames(symbols joined by commas)");
    return NULL;
  }
  frame_reader *r = calloc(1, sizeof *r);
  if (!r) {
    napi_throw_error(env, NULL, "extxyz frames: out of memory");
    return NULL;
  }
  for (size_t start = 0; start <= length && r->count < MAX_SYMBOLS;) {
    size_t end = start;
    while (end < length && list[end] != ',') end++;
    if (end - start >= 1 && end - start <= 3) memcpy(r->symbols[r->count++], list + start, end - start);
    start = end + 1;
  }
  napi_value scan;
  napi_create_function(env, "scan", NAPI_AUTO_LENGTH, scan_call_fn, r, &scan);
  napi_add_finalizer(env, scan, r, release_reader, NULL, NULL);
  return scan;
}

void register_extxyz_frames(napi_env env, napi_value exports) {
  if (!SHA256_Init || !SHA256_Update || !SHA256_Final) return;
  napi_value fn;
  napi_create_function(env, "extxyzFrames", NAPI_AUTO_LENGTH, bind_frames, NULL, &fn);
  napi_set_named_property(env, exports, "extxyzFrames", fn);
}
