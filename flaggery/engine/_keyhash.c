/* flaggery.engine._keyhash: the optional C accelerator of one hot function, a targeting key's
 * bucket (flaggery/engine/targeting.py is the documented reference and the fallback).
 *
 *   hash   = BLAKE2b(UTF-8 bytes of the key, key=salt, digest_size=8), read big-endian
 *   index  = bucket_index(hash, count, splits): Lamping and Veach's jump consistent hash
 *            over the first epoch, SplitMix64 draws in the later ones (targeting.py)
 *
 * BLAKE2b is written here from RFC 7693 ("The BLAKE2 Cryptographic Hash and Message
 * Authentication Code", sections 2 and 3): 12 rounds of the G mixing function over a 16-word
 * working vector, the message schedule SIGMA, rotations 32, 24, 16 and 63, the SHA-512
 * initialisation vector, parameter block word 0x0101kknn. A keyed hash compresses the key,
 * zero-padded to one 128-byte block, first; a targeting key is never empty, so that block is
 * never the last one and its compression is done once per salt (KeyBucketer.__init__), and a
 * key of up to 128 UTF-8 bytes costs one compression.
 *
 * Equality with hashlib and with the Python reference, for any key, salt, count and splits,
 * is a Hypothesis test (tests/engine/test_targeting_accelerator.py).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define BLOCK_BYTES 128
#define MAX_SALT_BYTES 64
#define DIGEST_BYTES 8
#define JUMP_MULTIPLIER 2862933555777941757ULL
#define GOLDEN 0x9E3779B97F4A7C15ULL
#define MAX_COUNT 2147483647LL /* 2**31 - 1: (index + 1) * 2**31 stays exact in a double */

static const uint64_t IV[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL,
    0xA54FF53A5F1D36F1ULL, 0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL,
    0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL,
};

/* RFC 7693 section 2.7: the message word permutation of each round (rounds 10 and 11 reuse
 * rows 0 and 1). */
static const uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr64(uint64_t w, unsigned c) { return (w >> c) | (w << (64 - c)); }

static inline uint64_t load64_le(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

/* RFC 7693 section 3.1: the mixing function G. */
#define G(a, b, c, d, x, y)              \
    do {                                 \
        v[a] = v[a] + v[b] + (x);        \
        v[d] = rotr64(v[d] ^ v[a], 32);  \
        v[c] = v[c] + v[d];              \
        v[b] = rotr64(v[b] ^ v[c], 24);  \
        v[a] = v[a] + v[b] + (y);        \
        v[d] = rotr64(v[d] ^ v[a], 16);  \
        v[c] = v[c] + v[d];              \
        v[b] = rotr64(v[b] ^ v[c], 63);  \
    } while (0)

/* One round: G over the four columns, then the four diagonals (RFC 7693 section 3.2). */
#define ROUND(r)                                                   \
    do {                                                           \
        G(0, 4, 8, 12, m[SIGMA[r][0]], m[SIGMA[r][1]]);            \
        G(1, 5, 9, 13, m[SIGMA[r][2]], m[SIGMA[r][3]]);            \
        G(2, 6, 10, 14, m[SIGMA[r][4]], m[SIGMA[r][5]]);           \
        G(3, 7, 11, 15, m[SIGMA[r][6]], m[SIGMA[r][7]]);           \
        G(0, 5, 10, 15, m[SIGMA[r][8]], m[SIGMA[r][9]]);           \
        G(1, 6, 11, 12, m[SIGMA[r][10]], m[SIGMA[r][11]]);         \
        G(2, 7, 8, 13, m[SIGMA[r][12]], m[SIGMA[r][13]]);          \
        G(3, 4, 9, 14, m[SIGMA[r][14]], m[SIGMA[r][15]]);          \
    } while (0)

/* RFC 7693 section 3.2: the compression function F over one 128-byte block; `bytes` is the
 * offset counter t after this block (below 2**64 here: keys are short), `last` the final
 * block flag. */
static void compress(uint64_t h[8], const uint8_t block[BLOCK_BYTES], uint64_t bytes, int last) {
    uint64_t v[16], m[16];
    int i;
    for (i = 0; i < 16; i++) m[i] = load64_le(block + 8 * i);
    for (i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = IV[i];
    }
    v[12] ^= bytes; /* low word of t; the high word is 0 */
    if (last) v[14] = ~v[14];
    /* The 12 rounds written out: SIGMA's indices become constants, m stays in registers. */
    ROUND(0); ROUND(1); ROUND(2); ROUND(3); ROUND(4); ROUND(5);
    ROUND(6); ROUND(7); ROUND(8); ROUND(9); ROUND(10); ROUND(11);
    for (i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

static inline uint64_t splitmix64(uint64_t value) {
    value += GOLDEN;
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ULL;
    value = (value ^ (value >> 27)) * 0x94D049BB133111EBULL;
    return value ^ (value >> 31);
}

/* Lamping and Veach (2014), their C code: doubles as in the paper and the Python reference. */
static inline int64_t jump_consistent_hash(uint64_t hashed, int64_t count) {
    int64_t bucket = -1, jump = 0;
    while (jump < count) {
        bucket = jump;
        hashed = hashed * JUMP_MULTIPLIER + 1;
        jump = (int64_t)((double)(bucket + 1) *
                         (2147483648.0 / (double)((hashed >> 33) + 1)));
    }
    return bucket;
}

/* The high 64 bits of a 128-bit product. */
static inline uint64_t mul_high(uint64_t a, uint64_t b) {
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 wide;
    return (uint64_t)(((wide)a * b) >> 64);
#else
    uint64_t a_lo = a & 0xFFFFFFFFULL, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFULL, b_hi = b >> 32;
    uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
    uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFULL) + lo_hi;
    return (hi_lo >> 32) + (cross >> 32) + hi_hi;
#endif
}

typedef struct {
    PyObject_HEAD
    uint64_t keyed[8];          /* the chain value after the salt's block (or the initial one) */
    uint64_t keyed_bytes;       /* bytes compressed into `keyed`: 128, or 0 without a salt */
    uint8_t salt_block[BLOCK_BYTES]; /* the salt, zero-padded: the last block of an empty key */
    int64_t count;
    Py_ssize_t split_count;
    int64_t *starts;            /* per split: the bucket count before it (S) */
    int64_t *multiples;         /* per split: its multiple (m) */
    PyObject *salt;             /* bytes */
    PyObject *splits;           /* tuple of (int, int) tuples */
} KeyBucketer;

static uint64_t hash_bytes(const KeyBucketer *self, const uint8_t *data, Py_ssize_t size) {
    uint64_t h[8];
    uint8_t last[BLOCK_BYTES];
    uint64_t bytes = self->keyed_bytes;
    memcpy(h, self->keyed, sizeof h);
    if (size == 0) {
        if (bytes) { /* the salt's block is the last one */
            memcpy(h, IV, sizeof h);
            h[0] ^= 0x01010000ULL ^ ((uint64_t)PyBytes_GET_SIZE(self->salt) << 8) ^ DIGEST_BYTES;
            compress(h, self->salt_block, BLOCK_BYTES, 1);
        } else {
            memset(last, 0, sizeof last);
            compress(h, last, 0, 1);
        }
    } else {
        while (size > BLOCK_BYTES) {
            bytes += BLOCK_BYTES;
            compress(h, data, bytes, 0);
            data += BLOCK_BYTES;
            size -= BLOCK_BYTES;
        }
        memset(last, 0, sizeof last);
        memcpy(last, data, (size_t)size);
        compress(h, last, bytes + (uint64_t)size, 1);
    }
    /* The digest is h[0]'s 8 bytes little-endian; read big-endian, that is h[0] byte-swapped. */
    uint64_t w = h[0], swapped = 0;
    int i;
    for (i = 0; i < 8; i++) {
        swapped = (swapped << 8) | (w & 0xFF);
        w >>= 8;
    }
    return swapped;
}

static int64_t index_of_hash(const KeyBucketer *self, uint64_t hashed) {
    Py_ssize_t n = self->split_count, position;
    if (n == 0) return jump_consistent_hash(hashed, self->count);
    int64_t index = jump_consistent_hash(hashed, self->starts[0]);
    for (position = 0; position < n; position++) {
        uint64_t start = (uint64_t)self->starts[position];
        uint64_t multiple = (uint64_t)self->multiples[position];
        uint64_t child = mul_high(splitmix64(hashed + start * GOLDEN), multiple);
        if (child) index = (int64_t)(start + (uint64_t)index * (multiple - 1) + child - 1);
        int64_t split_end = (int64_t)(start * multiple);
        int64_t end = position + 1 < n ? self->starts[position + 1] : self->count;
        if (end > split_end) { /* a jump epoch after the split, with its own draw */
            uint64_t draw = splitmix64(hashed + (uint64_t)split_end * GOLDEN);
            int64_t jumped = jump_consistent_hash(draw, end);
            if (jumped >= split_end) index = jumped;
        }
    }
    return index;
}

/* The key's hash, or -1 with an exception set (not a str, or a lone surrogate). */
static int hash_key(const KeyBucketer *self, PyObject *key, uint64_t *hashed) {
    Py_ssize_t size;
    const char *data;
    if (!PyUnicode_Check(key)) {
        PyErr_Format(PyExc_TypeError, "a targeting key is a str, not %.100s",
                     Py_TYPE(key)->tp_name);
        return -1;
    }
    data = PyUnicode_AsUTF8AndSize(key, &size);
    if (data == NULL) return -1;
    *hashed = hash_bytes(self, (const uint8_t *)data, size);
    return 0;
}

static PyObject *KeyBucketer_index(PyObject *op, PyObject *key) {
    KeyBucketer *self = (KeyBucketer *)op;
    uint64_t hashed;
    if (hash_key(self, key, &hashed) < 0) return NULL;
    return PyLong_FromLongLong(index_of_hash(self, hashed));
}

static PyObject *KeyBucketer_hash(PyObject *op, PyObject *key) {
    KeyBucketer *self = (KeyBucketer *)op;
    uint64_t hashed;
    if (hash_key(self, key, &hashed) < 0) return NULL;
    return PyLong_FromUnsignedLongLong(hashed);
}

static PyObject *KeyBucketer_index_of_hash(PyObject *op, PyObject *value) {
    KeyBucketer *self = (KeyBucketer *)op;
    unsigned long long hashed;
    if (!PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "a hash is an int");
        return NULL;
    }
    hashed = PyLong_AsUnsignedLongLong(value);
    if (hashed == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(index_of_hash(self, (uint64_t)hashed));
}

/* A whole number in [low, high] from `value`, or -1 with ValueError/TypeError set. */
static int64_t bounded(PyObject *value, int64_t low, int64_t high, const char *what) {
    long long number;
    int overflow;
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s is an int", what);
        return -1;
    }
    number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) return -1;
    if (overflow || number < low || number > high) {
        PyErr_Format(PyExc_ValueError, "%s must be from %lld to %lld", what, (long long)low,
                     (long long)high);
        return -1;
    }
    return (int64_t)number;
}

static int KeyBucketer_init(PyObject *op, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"salt", "count", "splits", NULL};
    KeyBucketer *self = (KeyBucketer *)op;
    PyObject *salt, *count_object, *splits_object = NULL, *given, *splits = NULL;
    Py_ssize_t salt_size, n, position;
    int64_t count, *starts = NULL, *multiples = NULL, before;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "SO|O:KeyBucketer", keywords, &salt,
                                     &count_object, &splits_object))
        return -1;
    salt_size = PyBytes_GET_SIZE(salt);
    if (salt_size > MAX_SALT_BYTES) {
        PyErr_Format(PyExc_ValueError, "a BLAKE2b key has at most %d bytes", MAX_SALT_BYTES);
        return -1;
    }
    count = bounded(count_object, 1, MAX_COUNT, "count");
    if (count < 0) return -1;
    given = splits_object == NULL ? PyTuple_New(0) : PySequence_Tuple(splits_object);
    if (given == NULL) return -1;
    n = PyTuple_GET_SIZE(given);
    splits = PyTuple_New(n); /* each pair as a tuple (a list from JSON too) */
    if (splits == NULL) goto fail;
    if (n) {
        starts = PyMem_Malloc(sizeof(int64_t) * (size_t)n);
        multiples = PyMem_Malloc(sizeof(int64_t) * (size_t)n);
        if (starts == NULL || multiples == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    before = 1; /* each split starts from at least the buckets the previous one left */
    for (position = 0; position < n; position++) {
        PyObject *split = PySequence_Tuple(PyTuple_GET_ITEM(given, position));
        if (split == NULL) goto fail;
        PyTuple_SET_ITEM(splits, position, split); /* the new tuple owns it */
        if (PyTuple_GET_SIZE(split) != 2) {
            PyErr_SetString(PyExc_TypeError, "a split is a (start, multiple) pair");
            goto fail;
        }
        starts[position] = bounded(PyTuple_GET_ITEM(split, 0), before, count, "a split's start");
        if (starts[position] < 0) goto fail;
        multiples[position] =
            bounded(PyTuple_GET_ITEM(split, 1), 2, count / starts[position], "a split's multiple");
        if (multiples[position] < 0) goto fail;
        before = starts[position] * multiples[position];
    }
    Py_DECREF(given);
    PyMem_Free(self->starts);
    PyMem_Free(self->multiples);
    Py_XSETREF(self->splits, splits);
    Py_INCREF(salt);
    Py_XSETREF(self->salt, salt);
    self->starts = starts;
    self->multiples = multiples;
    self->split_count = n;
    self->count = count;

    memcpy(self->keyed, IV, sizeof self->keyed);
    self->keyed[0] ^= 0x01010000ULL ^ ((uint64_t)salt_size << 8) ^ DIGEST_BYTES;
    memset(self->salt_block, 0, sizeof self->salt_block);
    memcpy(self->salt_block, PyBytes_AS_STRING(salt), (size_t)salt_size);
    self->keyed_bytes = 0;
    if (salt_size) {
        self->keyed_bytes = BLOCK_BYTES;
        compress(self->keyed, self->salt_block, BLOCK_BYTES, 0);
    }
    return 0;
fail:
    PyMem_Free(starts);
    PyMem_Free(multiples);
    Py_DECREF(given);
    Py_XDECREF(splits);
    return -1;
}

static void KeyBucketer_dealloc(PyObject *op) {
    KeyBucketer *self = (KeyBucketer *)op;
    PyMem_Free(self->starts);
    PyMem_Free(self->multiples);
    Py_XDECREF(self->salt);
    Py_XDECREF(self->splits);
    Py_TYPE(op)->tp_free(op);
}

static PyObject *KeyBucketer_get_salt(PyObject *op, void *closure) {
    (void)closure;
    PyObject *salt = ((KeyBucketer *)op)->salt;
    return Py_NewRef(salt ? salt : Py_None);
}

static PyObject *KeyBucketer_get_count(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromLongLong(((KeyBucketer *)op)->count);
}

static PyObject *KeyBucketer_get_splits(PyObject *op, void *closure) {
    (void)closure;
    PyObject *splits = ((KeyBucketer *)op)->splits;
    return Py_NewRef(splits ? splits : Py_None);
}

static PyMethodDef KeyBucketer_methods[] = {
    {"index", KeyBucketer_index, METH_O,
     "index(key) -> the bucket index (creation order) the key hashes to."},
    {"hash", KeyBucketer_hash, METH_O, "hash(key) -> the key's 64-bit hash."},
    {"index_of_hash", KeyBucketer_index_of_hash, METH_O,
     "index_of_hash(hash) -> the bucket index of a 64-bit hash (bucket_index)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef KeyBucketer_getset[] = {
    {"salt", KeyBucketer_get_salt, NULL, "The key salt (bytes).", NULL},
    {"count", KeyBucketer_get_count, NULL, "The number of buckets.", NULL},
    {"splits", KeyBucketer_get_splits, NULL, "The splits, a tuple of (start, multiple).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject KeyBucketerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flaggery.engine._keyhash.KeyBucketer",
    .tp_basicsize = sizeof(KeyBucketer),
    .tp_dealloc = KeyBucketer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "KeyBucketer(salt, count, splits=()): a targeting key -> its bucket index "
              "(flaggery.engine.targeting).",
    .tp_methods = KeyBucketer_methods,
    .tp_getset = KeyBucketer_getset,
    .tp_init = KeyBucketer_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef keyhash_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "flaggery.engine._keyhash",
    .m_doc = "The C accelerator of flaggery.engine.targeting's key -> bucket function.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__keyhash(void) {
    PyObject *module;
    if (PyType_Ready(&KeyBucketerType) < 0) return NULL;
    module = PyModule_Create(&keyhash_module);
    if (module == NULL) return NULL;
    Py_INCREF(&KeyBucketerType);
    if (PyModule_AddObject(module, "KeyBucketer", (PyObject *)&KeyBucketerType) < 0) {
        Py_DECREF(&KeyBucketerType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
