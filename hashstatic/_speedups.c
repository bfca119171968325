/*
 * hashstatic._speedups: the C implementation of hashstatic.tokenizer.advance.
 *
 * advance(doc, pos, endpos, xhtml=False) -> int returns exactly what
 * hashstatic.tokenizer.advance_py returns: it consumes whole constructs from pos
 * (the data state) and stops in front of the first one that does not end by
 * endpos, in front of every "<base" and "<plaintext" start tag, or at endpos.
 * The regular expression in tokenizer.py is the reference grammar; the comments
 * below name the alternative each piece of code follows.
 *
 * Text is skipped with memchr to the next "<" (on x86-64, where SSE2 is part of
 * the baseline, after a look at the next 16 bytes: the text between two tags is
 * usually short; define HASHSTATIC_NO_SIMD to leave that out).  Tags are walked
 * attribute by attribute in short byte loops, which measured faster on real
 * pages than classifying their bytes with SIMD: the branches of a page's
 * repetitive markup are well predicted.
 *
 * Every read is bounded by endpos (itself clamped to the buffer), never by the
 * content of the document.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h> /* defines _GNU_SOURCE, for memmem */
#include <string.h>

#if defined(__SSE2__) && defined(__GNUC__) && !defined(HASHSTATIC_NO_SIMD)
#include <emmintrin.h>
#define USE_SSE2 1
#endif

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

/* Character classes of the tag grammar. */
#define C_WS 1    /* \t \n \f \r and space */
#define C_SLASH 2 /* / */
#define C_GT 4    /* > */
#define C_EQ 8    /* = */

static const unsigned char CLS[256] = {
    ['\t'] = C_WS, ['\n'] = C_WS, ['\f'] = C_WS, ['\r'] = C_WS, [' '] = C_WS,
    ['/'] = C_SLASH, ['>'] = C_GT, ['='] = C_EQ,
};

/* _TAG_NAME runs to whitespace, "/" or ">"; _ATTR_NAME also stops at "=" (after
 * its first character); an unquoted _ATTR_VALUE runs to whitespace or ">". */
#define NAME_STOP (C_WS | C_SLASH | C_GT)
#define ATTR_NAME_STOP (C_WS | C_SLASH | C_GT | C_EQ)
#define UNQUOTED_STOP (C_WS | C_GT)

/* Releasing the GIL costs more than scanning a short range. */
#define NOGIL_MIN_LENGTH ((Py_ssize_t)1 << 16)

/* The first index in [i, end) holding c, or end (also when i >= end). */
static inline Py_ssize_t
find_byte(const unsigned char *s, Py_ssize_t i, Py_ssize_t end, unsigned char c)
{
#ifdef USE_SSE2
    /* The run is often short (the text between two tags): look at 16 bytes
     * before paying for a call. */
    if (end - i >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8((char)c)));
        if (m != 0) {
            return i + __builtin_ctz(m);
        }
        i += 16;
    }
#endif
    if (i >= end) {
        return end;
    }
    const unsigned char *q = memchr(s + i, c, (size_t)(end - i));
    return q == NULL ? end : q - s;
}

static inline int
in_class(unsigned char c, unsigned char classes)
{
    return (CLS[c] & classes) != 0;
}

/* The first index in [i, end) whose class is in stop, or end. */
static inline Py_ssize_t
skip_to(const unsigned char *s, Py_ssize_t i, Py_ssize_t end, unsigned char stop)
{
    while (i < end && !in_class(s[i], stop)) {
        i++;
    }
    return i;
}

/* The first index in [i, end) whose class is not in skip, or end. */
static inline Py_ssize_t
skip_over(const unsigned char *s, Py_ssize_t i, Py_ssize_t end, unsigned char skip)
{
    while (i < end && in_class(s[i], skip)) {
        i++;
    }
    return i;
}

static inline int
is_alpha(unsigned char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

/* Does s[0:len] spell name (lowercase ASCII letters), ignoring ASCII case? */
static inline int
equals_ci(const unsigned char *s, const char *name, Py_ssize_t len)
{
    for (Py_ssize_t k = 0; k < len; k++) {
        if ((s[k] | 0x20) != (unsigned char)name[k]) {
            return 0;
        }
    }
    return 1;
}

/* The start tags advance() does not step over as ordinary tags: the raw-text
 * elements (tokenizer.RAW_TEXT), then those it stops in front of. */
typedef struct {
    const char *name;
    Py_ssize_t len;
} Name;

static const Name SPECIAL[] = {
    {"script", 6}, {"style", 5}, {"textarea", 8}, {"title", 5}, {"xmp", 3},
    {"iframe", 6}, {"noembed", 7}, {"noframes", 8}, {"base", 4}, {"plaintext", 9},
};
#define N_RAW 8
#define N_SPECIAL ((int)(sizeof(SPECIAL) / sizeof(SPECIAL[0])))

/* Bit n of MAY_BE_SPECIAL[c] is set when a name of SPECIAL has n letters and
 * starts with c (any case): a quick test that rejects nearly every tag. */
#define LEN_BIT(n) (1u << (n))
static const unsigned short MAY_BE_SPECIAL[256] = {
    ['b'] = LEN_BIT(4), ['B'] = LEN_BIT(4),
    ['i'] = LEN_BIT(6), ['I'] = LEN_BIT(6),
    ['n'] = LEN_BIT(7) | LEN_BIT(8), ['N'] = LEN_BIT(7) | LEN_BIT(8),
    ['p'] = LEN_BIT(9), ['P'] = LEN_BIT(9),
    ['s'] = LEN_BIT(5) | LEN_BIT(6), ['S'] = LEN_BIT(5) | LEN_BIT(6),
    ['t'] = LEN_BIT(5) | LEN_BIT(8), ['T'] = LEN_BIT(5) | LEN_BIT(8),
    ['x'] = LEN_BIT(3), ['X'] = LEN_BIT(3),
};

/* Index in SPECIAL of the tag name s[0:len] (any case), or -1. */
static inline int
special_name(const unsigned char *s, Py_ssize_t len)
{
    if (LIKELY(len > 9 || !((MAY_BE_SPECIAL[s[0]] >> len) & 1))) {
        return -1;
    }
    for (int k = 0; k < N_SPECIAL; k++) {
        if (SPECIAL[k].len == len && equals_ci(s, SPECIAL[k].name, len)) {
            return k;
        }
    }
    return -1;
}

/* --- tags ----------------------------------------------------------------------------- */

/* _TAG_BODY ">": from a position between attributes (just after the tag name,
 * say), the index of the ">" that closes the tag, or -1 when the tag does not
 * end before end. */
static inline Py_ssize_t
tag_close(const unsigned char *s, Py_ssize_t i, Py_ssize_t end)
{
    for (;;) {
        i = skip_over(s, i, end, C_WS | C_SLASH); /* [WS/]++ */
        if (i >= end) {
            return -1;
        }
        if (s[i] == '>') {
            return i;
        }
        /* _ATTR_NAME: any first character but whitespace, "/" and ">" (so "="
         * too), then up to whitespace, "/", ">" or "=". */
        i = skip_to(s, i + 1, end, ATTR_NAME_STOP);
        /* (?:[WS]*+ "=" [WS]*+ _ATTR_VALUE?+)?+ */
        Py_ssize_t j = skip_over(s, i, end, C_WS);
        if (j >= end || s[j] != '=') {
            i = j; /* no value */
            continue;
        }
        j = skip_over(s, j + 1, end, C_WS);
        if (j >= end) {
            return -1;
        }
        unsigned char c = s[j];
        if (c == '"' || c == '\'') {
            /* A quoted value that is not closed runs to end: the tag cannot end. */
            i = find_byte(s, j + 1, end, c);
            if (i >= end) {
                return -1;
            }
            i++;
        }
        else {
            i = skip_to(s, j, end, UNQUOTED_STOP); /* none when c is ">" */
        }
    }
}

/* --- the rarer constructs --------------------------------------------------------------- */

/* The "<" of the first "</name" followed by whitespace, "/" or ">" at or after
 * i, all of it before end; -1 if there is none.  name is lowercase. */
static Py_ssize_t
raw_text_end(const unsigned char *s, Py_ssize_t i, Py_ssize_t end, const char *name,
             Py_ssize_t len)
{
    Py_ssize_t stop = end - len - 2; /* a "<" at k needs k + 2 + len < end */
    for (;;) {
        Py_ssize_t k = find_byte(s, i, stop, '<');
        if (k >= stop) {
            return -1;
        }
        if (s[k + 1] == '/' && equals_ci(s + k + 2, name, len) &&
            (CLS[s[k + 2 + len]] & NAME_STOP)) {
            return k;
        }
        i = k + 1;
    }
}

/* Index just after the first "-->" or "--!>" at or after i, or -1. */
static Py_ssize_t
comment_close(const unsigned char *s, Py_ssize_t i, Py_ssize_t end)
{
    for (;;) {
        Py_ssize_t k = find_byte(s, i, end - 2, '-'); /* so that k + 2 < end */
        if (k >= end - 2) {
            return -1;
        }
        if (s[k + 1] == '-') {
            if (s[k + 2] == '>') {
                return k + 3;
            }
            if (s[k + 2] == '!' && k + 3 < end && s[k + 3] == '>') {
                return k + 4;
            }
        }
        i = k + 1;
    }
}

/* Index just after the first occurrence of the terminator t (of len bytes) at
 * or after i, or -1. */
static Py_ssize_t
find_close(const unsigned char *s, Py_ssize_t i, Py_ssize_t end, const char *t,
           Py_ssize_t len)
{
    for (;;) {
        Py_ssize_t k = find_byte(s, i, end - len + 1, (unsigned char)t[0]);
        if (k >= end - len + 1) { /* k + len <= end */
            return -1;
        }
        if (memcmp(s + k, t, (size_t)len) == 0) {
            return k + len;
        }
        i = k + 1;
    }
}

/* Index just after the first ">" at or after i, or -1. */
static inline Py_ssize_t
after_gt(const unsigned char *s, Py_ssize_t i, Py_ssize_t end)
{
    i = find_byte(s, i, end, '>');
    return i >= end ? -1 : i + 1;
}

/* The end of the construct at p that is not a tag: s[p] is "<", s[p + 1] is
 * neither a letter nor "/" followed by a letter, and p + 1 < end.  Returns -1
 * when it does not end before end. */
static Py_ssize_t
other_construct(const unsigned char *s, Py_ssize_t p, Py_ssize_t end, int xhtml)
{
    unsigned char c = s[p + 1];
    if (c == '/') {
        if (end - p < 3) {
            return -1;
        }
        /* "</>" and the bogus comment "</(?=[^A-Za-z>])[^>]*+>" */
        return after_gt(s, p + 2, end);
    }
    if (c == '!') {
        if (end - p >= 4 && s[p + 2] == '-' && s[p + 3] == '-') {
            /* "<!--(?:-?>|.*?--!?>)" */
            Py_ssize_t i = p + 4;
            if (i < end && s[i] == '>') {
                return i + 1;
            }
            if (end - i >= 2 && s[i] == '-' && s[i + 1] == '>') {
                return i + 2;
            }
            return comment_close(s, i, end);
        }
        if (xhtml && end - p >= 9 && memcmp(s + p, "<![CDATA[", 9) == 0) {
            return find_close(s, p + 9, end, "]]>", 3);
        }
        /* A bogus comment.  (A prefix of "<!--" or "<![CDATA[" cut short by
         * end holds no ">", so the search fails as the regex does.) */
        return after_gt(s, p + 2, end);
    }
    if (c == '?') {
        return xhtml ? find_close(s, p + 2, end, "?>", 2) : after_gt(s, p + 2, end);
    }
    return p + 1; /* "<(?=[^A-Za-z!?/])": a "<" that opens nothing is text */
}

/* The end of the construct at p that is not a start tag (tokenizer.markup_end): s[p] is
 * "<", s[p + 1] is not a letter, and p + 1 < end.  -1 when it does not end before end. */
static inline Py_ssize_t
markup_end(const unsigned char *s, Py_ssize_t p, Py_ssize_t end, int xhtml)
{
    if (s[p + 1] == '/' && end - p >= 3 && is_alpha(s[p + 2])) {
        /* "</" _TAG_NAME _TAG_BODY ">" */
        Py_ssize_t gt = tag_close(s, skip_to(s, p + 3, end, NAME_STOP), end);
        return gt < 0 ? -1 : gt + 1;
    }
    return other_construct(s, p, end, xhtml);
}

/* --- advance ----------------------------------------------------------------------------- */

static Py_ssize_t
advance_impl(const unsigned char *s, Py_ssize_t p, Py_ssize_t end, int xhtml, int bases)
{
    while (p < end) {
        if (s[p] != '<') {
            p = find_byte(s, p, end, '<'); /* [^<]++ */
        }
        if (end - p < 2) {
            return p; /* endpos, or a "<" with nothing after it before endpos */
        }
        Py_ssize_t next;
        unsigned char c = s[p + 1];
        if (LIKELY(is_alpha(c))) {
            /* The raw-text elements, then other start tags. */
            Py_ssize_t i = skip_to(s, p + 2, end, NAME_STOP);
            if (i >= end) {
                return p;
            }
            int k = special_name(s + p + 1, i - p - 1);
            if (UNLIKELY(k >= N_RAW)) {
                if (k == N_RAW && !bases) {
                    k = -1; /* a <base> after the one that counts is an ordinary tag */
                }
                else {
                    return p; /* <base or <plaintext */
                }
            }
            Py_ssize_t gt = tag_close(s, i, end);
            if (gt < 0) {
                return p;
            }
            next = gt + 1;
            if (UNLIKELY(k >= 0) && !(xhtml && s[gt - 1] == '/')) {
                /* ">.*?": the raw text, up to the end tag the next round consumes
                 * (unless, in XHTML, the element closed itself). */
                next = raw_text_end(s, next, end, SPECIAL[k].name, SPECIAL[k].len);
            }
        }
        else {
            next = markup_end(s, p, end, xhtml);
        }
        if (next < 0) {
            return p;
        }
        p = next;
    }
    return p;
}

/* A position clamped to [0, len], as re.Pattern.match clamps pos and endpos. */
static inline Py_ssize_t
clamp(Py_ssize_t pos, Py_ssize_t len)
{
    return pos < 0 ? 0 : (pos > len ? len : pos);
}

/* --- collect ----------------------------------------------------------------------------- */

/* What the rewriter looks for: the needle (the prefix's last segment) and the
 * character references that could spell one of its bytes. */
typedef struct {
    const unsigned char *needle;
    Py_ssize_t needle_len;
    unsigned char in_needle[256]; /* bytes the needle holds */
    unsigned char name_start[256]; /* first bytes of the named references */
    PyObject *names;               /* tuple of bytes: reference names after "&" */
} Targets;

/* The first needle at or after i that ends by end, or end.  With SSE2, start
 * positions are tested for the needle's first byte there and its last byte n - 1
 * further on (two loads, both inside the buffer), 64 at a time while no position
 * pairs up, then 16 at a time, where the bytes between are compared: on pages,
 * where the pair is rare, this runs several times faster than memmem. */
#ifdef USE_SSE2
static inline __m128i
pair_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, __m128i first, __m128i last)
{
    __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(s + i + n - 1));
    return _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last));
}
#endif

static Py_ssize_t
find_needle(const unsigned char *s, Py_ssize_t i, Py_ssize_t end, const Targets *t)
{
    const unsigned char *needle = t->needle;
    Py_ssize_t n = t->needle_len;
    if (end - i < n) {
        return end;
    }
#ifdef USE_SSE2
    if (n >= 2) {
        const __m128i first = _mm_set1_epi8((char)needle[0]);
        const __m128i last = _mm_set1_epi8((char)needle[n - 1]);
        const Py_ssize_t stop = end - n; /* the last position a needle can start at */
        while (i + 15 <= stop) {
            if (i + 63 <= stop) {
                __m128i any = _mm_or_si128(
                    _mm_or_si128(pair_at(s, i, n, first, last), pair_at(s, i + 16, n, first, last)),
                    _mm_or_si128(pair_at(s, i + 32, n, first, last),
                                 pair_at(s, i + 48, n, first, last)));
                if (LIKELY(_mm_movemask_epi8(any) == 0)) {
                    i += 64;
                    continue;
                }
            }
            unsigned mask = (unsigned)_mm_movemask_epi8(pair_at(s, i, n, first, last));
            while (mask) {
                int bit = __builtin_ctz(mask);
                if (memcmp(s + i + bit + 1, needle + 1, (size_t)(n - 2)) == 0) {
                    return i + bit;
                }
                mask &= mask - 1;
            }
            i += 16;
        }
        for (; i <= stop; i++) {
            if (s[i] == needle[0] && memcmp(s + i, needle, (size_t)n) == 0) {
                return i;
            }
        }
        return end;
    }
#endif
    const unsigned char *q = memmem(s + i, (size_t)(end - i), needle, (size_t)n);
    return q == NULL ? end : q - s;
}

static inline int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Does the "&" at i begin a reference to a byte of the needle?  The C form of
 * html._hiding_refs: "&#" or "&#x" (any case), any zeros, then a needle byte's
 * code with no further digit; or "&" and one of the names. */
static int
hiding_ref(const unsigned char *s, Py_ssize_t i, Py_ssize_t end, const Targets *t)
{
    Py_ssize_t j = i + 1;
    if (j >= end) {
        return 0;
    }
    if (s[j] == '#') {
        j++;
        int base = 10;
        if (j < end && (s[j] | 0x20) == 'x') {
            base = 16;
            j++;
        }
        while (j < end && s[j] == '0') {
            j++;
        }
        unsigned value = 0;
        int digits = 0;
        for (; j < end; j++) {
            int d = base == 16 ? hex_value(s[j]) : (s[j] >= '0' && s[j] <= '9' ? s[j] - '0' : -1);
            if (d < 0) {
                break;
            }
            if (++digits > 3) {
                return 0; /* beyond any byte's code */
            }
            value = value * (unsigned)base + (unsigned)d;
        }
        return digits > 0 && value < 256 && t->in_needle[value];
    }
    if (!t->name_start[s[j]]) {
        return 0;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(t->names);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *name = PyTuple_GET_ITEM(t->names, k);
        Py_ssize_t len = PyBytes_GET_SIZE(name);
        if (end - j >= len && memcmp(s + j, PyBytes_AS_STRING(name), (size_t)len) == 0) {
            return 1;
        }
    }
    return 0;
}

static Py_ssize_t
find_ref(const unsigned char *s, Py_ssize_t i, Py_ssize_t end, const Targets *t)
{
    for (;;) {
        const unsigned char *q = i < end ? memchr(s + i, '&', (size_t)(end - i)) : NULL;
        if (q == NULL) {
            return end;
        }
        i = q - s;
        if (hiding_ref(s, i, end, t)) {
            return i;
        }
        i++;
    }
}

/* What collect_impl does with each start tag that holds a hit, [start, end), whose
 * raw text (if any) runs to content_end: 0 to go on, 1 to stop looking, -1 on error
 * (an exception set). */
typedef int (*TagHandler)(void *ctx, Py_ssize_t start, Py_ssize_t end, Py_ssize_t content_end);

/* collect_impl's answers beside a position: nothing left to look at, an error, and a
 * handler that asked to stop. */
#define COLLECT_DONE ((Py_ssize_t)-1)
#define COLLECT_ERROR ((Py_ssize_t)-2)
#define COLLECT_STOPPED ((Py_ssize_t)-3)

/* The loop of tokenizer.collect_py (see its docstring), each tag handed to on_tag; with
 * markup, a construct other than a start tag that holds a target is stepped over rather
 * than stopped at. */
static Py_ssize_t
collect_impl(const unsigned char *s, Py_ssize_t p, Py_ssize_t end, int xhtml, int to_end,
             int bases, int markup, const Targets *t, TagHandler on_tag, void *ctx)
{
    Py_ssize_t next_hit = -1, next_ref = -1;
    for (;;) {
        if (next_hit < p) {
            next_hit = find_needle(s, p, end, t);
        }
        if (next_ref < p) {
            next_ref = find_ref(s, p, end, t);
        }
        Py_ssize_t target = next_hit < next_ref ? next_hit : next_ref;
        if (target >= end) {
            if (to_end) {
                p = advance_impl(s, p, end, xhtml, bases);
                return p == end ? -1 : p;
            }
            return -1;
        }
        Py_ssize_t q = advance_impl(s, p, target + 1, xhtml, bases);
        if (q == target + 1) {
            p = q; /* the target is in text */
            continue;
        }
        /* The construct at q holds the target, or q is "<base" or "<plaintext". */
        if (!is_alpha(s[q + 1])) {
            /* A comment, an end tag...: the rewriter leaves it as it is, and with markup it
             * is stepped over here, as the rewriter would (when it ends). */
            Py_ssize_t after = markup ? markup_end(s, q, end, xhtml) : -1;
            if (after < 0) {
                return q;
            }
            p = after;
            continue;
        }
        Py_ssize_t i = skip_to(s, q + 2, end, NAME_STOP);
        int k = i < end ? special_name(s + q + 1, i - q - 1) : -1;
        if (k == N_RAW && !bases) {
            k = -1;
        }
        if (i >= end || k >= N_RAW) {
            return q;
        }
        Py_ssize_t gt = tag_close(s, i, end);
        if (gt < 0) {
            return q;
        }
        Py_ssize_t content_end = gt + 1;
        if (k >= 0 && !(xhtml && s[gt - 1] == '/')) {
            content_end = raw_text_end(s, gt + 1, end, SPECIAL[k].name, SPECIAL[k].len);
            if (content_end < 0) {
                return q;
            }
        }
        int said = on_tag(ctx, q, gt + 1, content_end);
        if (said != 0) {
            return said < 0 ? COLLECT_ERROR : COLLECT_STOPPED;
        }
        p = content_end;
    }
}

/* collect()'s handler: the tag, as a (start, end, content_end) triple, goes to a list. */
static int
append_triple(void *found, Py_ssize_t start, Py_ssize_t end, Py_ssize_t content_end)
{
    PyObject *triple = Py_BuildValue("(nnn)", start, end, content_end);
    if (triple == NULL) {
        return -1;
    }
    int failed = PyList_Append((PyObject *)found, triple);
    Py_DECREF(triple);
    return failed ? -1 : 0;
}

/* Sets up t to look for needle and the references names (a tuple of non-empty bytes);
 * -1 with an exception set (naming the function who) when they cannot be used. */
static int
targets_init(Targets *t, const char *needle, Py_ssize_t needle_len, PyObject *names,
             const char *who)
{
    memset(t, 0, sizeof *t);
    t->needle = (const unsigned char *)needle;
    t->needle_len = needle_len;
    t->names = names;
    if (needle_len == 0) {
        PyErr_Format(PyExc_ValueError, "%s: the needle is empty", who);
        return -1;
    }
    for (Py_ssize_t k = 0; k < needle_len; k++) {
        t->in_needle[(unsigned char)needle[k]] = 1;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++) {
        PyObject *name = PyTuple_GET_ITEM(names, k);
        if (!PyBytes_Check(name) || PyBytes_GET_SIZE(name) == 0) {
            PyErr_Format(PyExc_TypeError, "%s: names must be non-empty bytes", who);
            return -1;
        }
        t->name_start[(unsigned char)PyBytes_AS_STRING(name)[0]] = 1;
    }
    return 0;
}

PyDoc_STRVAR(collect_doc,
"collect(doc, pos, needle, refs, names, xhtml=False, to_end=False, bases=True)\n"
"    -> (list, int)\n"
"\n"
"The start tags from pos (data state) that hold the needle or a reference that\n"
"could spell one of its bytes, as (start, end, content_end) triples, and where\n"
"the rewriter must look itself next (-1: nowhere). The same result as\n"
"hashstatic.tokenizer.collect_py, which documents it; refs is unused here (the\n"
"pure-Python form searches with it), names are the reference names after \"&\".");

static PyObject *
speedups_collect(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"doc",   "pos",    "needle", "refs", "names",
                             "xhtml", "to_end", "bases",  NULL};
    Py_buffer view;
    Py_ssize_t pos;
    const char *needle;
    Py_ssize_t needle_len;
    PyObject *refs, *names;
    int xhtml = 0, to_end = 0, bases = 1;

    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*ny#OO!|ppp:collect", kwlist, &view, &pos,
                                     &needle, &needle_len, &refs, &PyTuple_Type, &names, &xhtml,
                                     &to_end, &bases)) {
        return NULL;
    }
    (void)refs;
    Targets t;
    if (targets_init(&t, needle, needle_len, names, "collect") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t len = view.len;
    pos = clamp(pos, len);
    PyObject *found = PyList_New(0);
    if (found == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t stop = collect_impl((const unsigned char *)view.buf, pos, len, xhtml, to_end, bases,
                                   0, &t, append_triple, found);
    PyBuffer_Release(&view);
    if (stop == COLLECT_ERROR) {
        Py_DECREF(found);
        return NULL;
    }
    return Py_BuildValue("(Nn)", found, stop);
}

PyDoc_STRVAR(advance_doc,
"advance(doc, pos, endpos, xhtml=False) -> int\n"
"\n"
"Consume whole constructs of doc from pos (data state); stop before endpos.\n"
"\n"
"Returns the start of the first construct that does not end by endpos, of the\n"
"first <base or <plaintext start tag, or endpos when everything up to it is text\n"
"or complete constructs. doc is any contiguous bytes-like object; pos and endpos\n"
"are clamped to [0, len(doc)] as re.Pattern.match does (so a negative one means\n"
"0), and when endpos is before pos, pos is returned. The same result as\n"
"hashstatic.tokenizer.advance_py for every input.");

static PyObject *
speedups_advance(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"doc", "pos", "endpos", "xhtml", NULL};
    Py_buffer view;
    Py_ssize_t pos, endpos;
    int xhtml = 0;

    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*nn|p:advance", kwlist, &view, &pos,
                                     &endpos, &xhtml)) {
        return NULL;
    }
    Py_ssize_t len = view.len;
    pos = clamp(pos, len);
    endpos = clamp(endpos, len);
    /* When endpos is before pos, advance_impl returns pos at once, as advance_py
     * does (its regular expression matches the empty string there). */
    const unsigned char *s = (const unsigned char *)view.buf;
    Py_ssize_t result;
    if (endpos - pos >= NOGIL_MIN_LENGTH) {
        /* The exported buffer cannot be resized meanwhile, and every read is
         * bounded by endpos whatever the bytes are. */
        Py_BEGIN_ALLOW_THREADS
        result = advance_impl(s, pos, endpos, xhtml, 1);
        Py_END_ALLOW_THREADS
    }
    else {
        result = advance_impl(s, pos, endpos, xhtml, 1);
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(result);
}

#if defined(__linux__)
#include <sys/ioctl.h>

PyDoc_STRVAR(pending_doc,
"pending(fd) -> int\n"
"\n"
"The bytes waiting to be read on the descriptor fd (ioctl FIONREAD), asked\n"
"without releasing the interpreter lock: the call cannot block, and under a\n"
"threaded server every release of the lock may hand it to another thread for\n"
"a whole switch interval (hashstatic.watch asks this on every response).");

/* The file descriptor arg, or -1 with an exception set (naming the function who). */
static int
descriptor(PyObject *arg, const char *who)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: not a file descriptor", who);
        return -1;
    }
    return (int)fd;
}

static PyObject *
speedups_pending(PyObject *module, PyObject *arg)
{
    (void)module;
    int fd = descriptor(arg, "pending");
    if (fd < 0) {
        return NULL;
    }
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(n);
}
#endif

#include "_openat2.h"

#if defined(__linux__)
#if defined(HAVE_OPEN_PLAIN)
/* Set once openat2 is known to be missing (an older kernel, or a seccomp filter that
   refuses it); a plain int: a thread that misses the write only asks once more. */
static volatile int openat2_missing = 0;

PyDoc_STRVAR(open_plain_doc,
"open_plain(path) -> int\n"
"\n"
"Open path read-only (non-blocking, close-on-exec) with openat2 and\n"
"RESOLVE_NO_SYMLINKS: the descriptor names exactly the file at that path,\n"
"with no symbolic link followed on the way (hashstatic.cache then needs no\n"
"readlink of /proc/self/fd to learn where the file is). -1 when that cannot\n"
"be had: a symbolic link is on the way, or the kernel has no openat2; the\n"
"caller then opens as it otherwise would. Other failures raise OSError.\n"
"The interpreter lock is released during the call, as os.open does.");

static PyObject *
speedups_open_plain(PyObject *module, PyObject *arg)
{
    (void)module;
    /* The event os.open raises, so that audit hooks see this open too. */
    if (PySys_Audit("open", "OOi", arg, Py_None, PLAIN_OPEN_FLAGS) < 0) {
        return NULL;
    }
    PyObject *bytes = NULL;
    if (!PyUnicode_FSConverter(arg, &bytes)) {
        return NULL;
    }
    if (openat2_missing) {
        Py_DECREF(bytes);
        return PyLong_FromLong(-1);
    }
    long fd;
    int error;
    Py_BEGIN_ALLOW_THREADS
    fd = plain_open(PyBytes_AS_STRING(bytes));
    error = errno;
    Py_END_ALLOW_THREADS
    if (fd >= 0) {
        Py_DECREF(bytes);
        return PyLong_FromLong(fd);
    }
    if (error == ENOSYS || error == EPERM || error == E2BIG) {
        /* E2BIG, EPERM: a kernel or filter that does not know this call or this struct. */
        openat2_missing = 1;
    }
    if (error == ELOOP || error == ENOSYS || error == EPERM || error == E2BIG ||
        error == EXDEV) {
        Py_DECREF(bytes);
        return PyLong_FromLong(-1);
    }
    errno = error;
    PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
    Py_DECREF(bytes);
    return NULL;
}
#endif

#include <sys/stat.h>

PyDoc_STRVAR(file_key_doc,
"file_key(fd) -> tuple | None\n"
"\n"
"(st_dev, st_ino, st_mtime_ns, st_ctime_ns, st_size) of the open file fd,\n"
"or None when it is not a regular file: what hashstatic.cache compares\n"
"(its _key of os.fstat), without building a whole os.stat_result.\n"
"The interpreter lock is held: fstat does not wait on anything.");

static PyObject *
speedups_file_key(PyObject *module, PyObject *arg)
{
    (void)module;
    int fd = descriptor(arg, "file_key");
    if (fd < 0) {
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (!S_ISREG(st.st_mode)) {
        Py_RETURN_NONE;
    }
    return file_key_of(&st);
}
#endif /* __linux__ */

/* --- find ------------------------------------------------------------------------------- */

PyDoc_STRVAR(find_doc,
"find(data, needle) -> int\n"
"\n"
"data.find(needle), searched 64 positions at a time for the needle's first\n"
"and last bytes (the rewriter's search): hashstatic.cache asks it whether a\n"
"script it has just hashed holds a source map comment.");

static PyObject *
speedups_find(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "find(data, needle) takes two arguments");
        return NULL;
    }
    Py_buffer data, needle;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &needle, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_ssize_t found;
    if (needle.len == 0) {
        found = 0;
    }
    else {
        Targets t;
        t.needle = (const unsigned char *)needle.buf;
        t.needle_len = needle.len;
        found = find_needle((const unsigned char *)data.buf, 0, data.len, &t);
        if (found >= data.len) {
            found = -1;
        }
    }
    PyBuffer_Release(&needle);
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(found);
}

/* --- remembered ------------------------------------------------------------------------- */

/* The attribute names remembered() reads, interned once per module. */
typedef struct {
    PyObject *text;
    PyObject *raw_kind;
    PyObject *vouched;
} ModuleState;

PyDoc_STRVAR(remembered_doc,
"remembered(doc, found, i, tags, check, state, emitted, upto, out, hits)\n"
"    -> (int, int)\n"
"\n"
"The C form of hashstatic.html.remembered_py, which documents it: the same\n"
"result, the same bytes appended to out and the same rewrites to hits.");

/* One remembered tag to splice: doc[start:end] becomes text (a reference held). */
typedef struct {
    Py_ssize_t start, end;
    PyObject *text;
} Splice;

/* An attribute of a remembered rewrite, or NULL with an exception set. */
static inline PyObject *
field(PyObject *done, PyObject *name)
{
    return PyObject_GetAttr(done, name);
}

/* 1 when the rewrite done can be used as it is, 0 when not, -1 on error. */
static int
usable(PyObject *done, const ModuleState *names, int check, PyObject *state)
{
    PyObject *value = field(done, names->raw_kind);
    if (value == NULL) {
        return -1;
    }
    int raw = PyObject_IsTrue(value);
    Py_DECREF(value);
    if (raw != 0) {
        return raw < 0 ? -1 : 0; /* raw text to rewrite after it */
    }
    if (!check) {
        return 1;
    }
    value = field(done, names->vouched);
    if (value == NULL) {
        return -1;
    }
    int same = PyObject_RichCompareBool(value, state, Py_EQ);
    Py_DECREF(value);
    return same;
}

/* The splices, as many as there is room for and more. */
typedef struct {
    Splice *at;
    Py_ssize_t n, room;
    Splice first[32];
} Splices;

static int
add_splice(Splices *run, Py_ssize_t start, Py_ssize_t end, PyObject *text)
{
    if (run->n == run->room) {
        Py_ssize_t room = run->room * 2;
        Splice *at = run->at == run->first ? PyMem_Malloc(sizeof(Splice) * (size_t)room)
                                           : PyMem_Realloc(run->at, sizeof(Splice) * (size_t)room);
        if (at == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (run->at == run->first) {
            memcpy(at, run->first, sizeof run->first);
        }
        run->at = at;
        run->room = room;
    }
    Splice *sp = &run->at[run->n++];
    sp->start = start;
    sp->end = end;
    sp->text = Py_NewRef(text);
    return 0;
}

static void
free_splices(Splices *run)
{
    for (Py_ssize_t j = 0; j < run->n; j++) {
        Py_DECREF(run->at[j].text);
    }
    if (run->at != run->first) {
        PyMem_Free(run->at);
    }
}

/* What remembered() and splice() need to take a remembered tag. */
typedef struct {
    const char *s;          /* the document */
    PyObject *tags;         /* remembered rewrites by their tags' bytes */
    int check;              /* whether a rewrite must be vouched for with state */
    PyObject *state;
    const ModuleState *names;
    PyObject *hits;         /* rewrites taken */
    Splices run;            /* the taken rewrites that change their tags */
} Taking;

/* Takes the remembered rewrite of the tag s[start:end] when it can be used as it is:
 * 1 when taken (to hits, and to run when it changes the tag), 0 when not, -1 on error. */
static int
take(Taking *k, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *key = PyBytes_FromStringAndSize(k->s + start, end - start);
    if (key == NULL) {
        return -1;
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *done; /* a strong reference: the dictionary is shared by every response */
    int got = PyDict_GetItemRef(k->tags, key, &done);
    Py_DECREF(key);
    if (got <= 0) {
        return got; /* -1, or 0: not remembered */
    }
#else
    PyObject *done = PyDict_GetItemWithError(k->tags, key);
    Py_DECREF(key);
    if (done == NULL) {
        return PyErr_Occurred() ? -1 : 0; /* not remembered */
    }
    Py_INCREF(done); /* before anything can run that changes the dictionary */
#endif
    int ok = usable(done, k->names, k->check, k->state);
    PyObject *text = ok > 0 ? field(done, k->names->text) : NULL;
    int failed = ok < 0 || (ok > 0 && text == NULL);
    if (!failed && text != NULL && text != Py_None) {
        if (!PyBytes_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "a remembered rewrite's text must be bytes");
            failed = 1;
        }
        else {
            failed = add_splice(&k->run, start, end, text) < 0;
        }
    }
    failed = failed || (ok > 0 && PyList_Append(k->hits, done) < 0);
    Py_XDECREF(text);
    Py_DECREF(done);
    return failed ? -1 : ok;
}

/* The tags from found[i] while they are usable remembered tags (see take).  Returns the
 * index of the first other one (or the length of found), -1 on error. */
static Py_ssize_t
usable_run(Taking *k, Py_ssize_t len, PyObject *found, Py_ssize_t i, Py_ssize_t emitted)
{
    Py_ssize_t after = emitted; /* where the last tag so far ends */
    for (; i < PyList_GET_SIZE(found); i++) {
        PyObject *triple = PyList_GET_ITEM(found, i);
        if (!PyTuple_CheckExact(triple) || PyTuple_GET_SIZE(triple) != 3) {
            PyErr_SetString(PyExc_TypeError, "remembered: found holds (start, end, content_end)");
            return -1;
        }
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(triple, 0));
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(triple, 1));
        if ((start == -1 || end == -1) && PyErr_Occurred()) {
            return -1;
        }
        if (start < after || end < start || end > len) {
            PyErr_SetString(PyExc_ValueError, "remembered: a tag out of order or out of doc");
            return -1;
        }
        int taken = take(k, start, end);
        if (taken <= 0) {
            return taken < 0 ? -1 : i;
        }
        after = end;
    }
    return i;
}

/* doc[emitted:] with the splices of run made, up to upto after the last: a new bytes object,
 * or NULL with an exception set. */
static PyObject *
spliced(const char *s, Py_ssize_t emitted, Py_ssize_t upto, const Splices *run)
{
    Py_ssize_t from = emitted, size = 0;
    for (Py_ssize_t j = 0; j < run->n; j++) {
        size += run->at[j].start - from + PyBytes_GET_SIZE(run->at[j].text);
        from = run->at[j].end;
    }
    Py_ssize_t tail = upto > from ? upto - from : 0;
    PyObject *piece = PyBytes_FromStringAndSize(NULL, size + tail);
    if (piece == NULL) {
        return NULL;
    }
    char *w = PyBytes_AS_STRING(piece);
    from = emitted;
    for (Py_ssize_t j = 0; j < run->n; j++) {
        PyObject *text = run->at[j].text;
        memcpy(w, s + from, (size_t)(run->at[j].start - from));
        w += run->at[j].start - from;
        memcpy(w, PyBytes_AS_STRING(text), (size_t)PyBytes_GET_SIZE(text));
        w += PyBytes_GET_SIZE(text);
        from = run->at[j].end;
    }
    memcpy(w, s + from, (size_t)tail);
    return piece;
}

static void
taking_init(Taking *k, const char *s, PyObject *tags, int check, PyObject *state,
            PyObject *module, PyObject *hits)
{
    k->s = s;
    k->tags = tags;
    k->check = check;
    k->state = state;
    k->names = (const ModuleState *)PyModule_GetState(module);
    k->hits = hits;
    k->run.at = k->run.first;
    k->run.n = 0;
    k->run.room = (Py_ssize_t)(sizeof k->run.first / sizeof k->run.first[0]);
}

static PyObject *
speedups_remembered(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "remembered() takes ten arguments");
        return NULL;
    }
    PyObject *doc = args[0], *found = args[1], *tags = args[3], *state = args[5];
    PyObject *out = args[8], *hits = args[9];
    if (!PyBytes_CheckExact(doc) || !PyList_CheckExact(found) || !PyDict_CheckExact(tags) ||
        !PyList_CheckExact(out) || !PyList_CheckExact(hits)) {
        PyErr_SetString(PyExc_TypeError,
                        "remembered: doc must be bytes, found, out and hits lists, tags a dict");
        return NULL;
    }
    Py_ssize_t i = PyLong_AsSsize_t(args[2]);
    Py_ssize_t emitted = PyLong_AsSsize_t(args[6]);
    Py_ssize_t upto = PyLong_AsSsize_t(args[7]);
    int check = PyObject_IsTrue(args[4]);
    if ((i == -1 || emitted == -1 || upto == -1 || check < 0) && PyErr_Occurred()) {
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(doc);
    Py_ssize_t len = PyBytes_GET_SIZE(doc);
    if (i < 0 || emitted < 0 || emitted > len || upto > len) {
        PyErr_SetString(PyExc_ValueError, "remembered: i, emitted or upto out of range");
        return NULL;
    }
    Taking k;
    taking_init(&k, s, tags, check, state, module, hits);
    i = usable_run(&k, len, found, i, emitted);
    PyObject *piece = NULL;
    if (i >= 0 && k.run.n > 0) {
        /* One piece: the text before each changed tag and its new text, then, when every
         * tag was usable, the rest of doc up to upto. */
        Py_ssize_t last = k.run.at[k.run.n - 1].end;
        piece = spliced(s, emitted, i == PyList_GET_SIZE(found) ? upto : last, &k.run);
        if (piece != NULL) {
            emitted = i == PyList_GET_SIZE(found) && upto > last ? upto : last;
            if (PyList_Append(out, piece) < 0) {
                Py_CLEAR(piece);
            }
        }
    }
    int failed = i < 0 || (k.run.n > 0 && piece == NULL);
    Py_XDECREF(piece);
    free_splices(&k.run);
    return failed ? NULL : Py_BuildValue("(nn)", i, emitted);
}

PyDoc_STRVAR(splice_doc,
"splice(doc, needle, names, xhtml, tags, check, state, hits) -> bytes | None\n"
"\n"
"A whole page's steady state in one call: collect(doc, 0, needle, refs, names,\n"
"xhtml) then remembered() over every tag found, without building either's\n"
"lists, and with the comments and end tags that hold a hit stepped over as the\n"
"rewriter steps over them.  When every start tag holding a hit has a remembered\n"
"rewrite usable as it is (see hashstatic.html.remembered_py) and nothing else\n"
"stops the scan (a <base>, a construct that does not end), returns\n"
"doc with those rewrites made (doc itself when none changes its tag) and\n"
"appends them to hits; otherwise returns None and leaves hits as it was.");

/* splice()'s handler: each tag found is taken, or the scan stops. */
static int
take_found(void *ctx, Py_ssize_t start, Py_ssize_t end, Py_ssize_t content_end)
{
    (void)content_end;
    int taken = take((Taking *)ctx, start, end);
    return taken < 0 ? -1 : !taken;
}

static PyObject *
speedups_splice(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "splice() takes eight arguments");
        return NULL;
    }
    PyObject *doc = args[0], *needle = args[1], *names = args[2], *tags = args[4];
    PyObject *state = args[6], *hits = args[7];
    if (!PyBytes_CheckExact(doc) || !PyBytes_Check(needle) || !PyTuple_Check(names) ||
        !PyDict_CheckExact(tags) || !PyList_CheckExact(hits)) {
        PyErr_SetString(PyExc_TypeError, "splice: doc and needle must be bytes, names a tuple, "
                                         "tags a dict and hits a list");
        return NULL;
    }
    int xhtml = PyObject_IsTrue(args[3]);
    int check = PyObject_IsTrue(args[5]);
    if (xhtml < 0 || check < 0) {
        return NULL;
    }
    Targets t;
    if (targets_init(&t, PyBytes_AS_STRING(needle), PyBytes_GET_SIZE(needle), names, "splice") <
        0) {
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(doc);
    Py_ssize_t len = PyBytes_GET_SIZE(doc), mark = PyList_GET_SIZE(hits);
    Taking k;
    taking_init(&k, s, tags, check, state, module, hits);
    Py_ssize_t stop =
        collect_impl((const unsigned char *)s, 0, len, xhtml, 0, 1, 1, &t, take_found, &k);
    PyObject *result = NULL;
    if (stop == COLLECT_DONE) {
        result = k.run.n == 0 ? Py_NewRef(doc) : spliced(s, 0, len, &k.run);
    }
    else if (stop != COLLECT_ERROR) {
        /* A tag to rewrite anew, or a construct the rewriter must see: not for this call. */
        result = PyList_SetSlice(hits, mark, PyList_GET_SIZE(hits), NULL) < 0 ? NULL
                                                                              : Py_NewRef(Py_None);
    }
    free_splices(&k.run);
    return result;
}

static PyMethodDef speedups_methods[] = {
#if defined(__linux__)
    {"pending", speedups_pending, METH_O, pending_doc},
#if defined(HAVE_OPEN_PLAIN)
    {"open_plain", speedups_open_plain, METH_O, open_plain_doc},
#endif
    {"file_key", speedups_file_key, METH_O, file_key_doc},
#endif
    {"advance", (PyCFunction)(void (*)(void))speedups_advance, METH_VARARGS | METH_KEYWORDS,
     advance_doc},
    {"collect", (PyCFunction)(void (*)(void))speedups_collect, METH_VARARGS | METH_KEYWORDS,
     collect_doc},
    {"find", (PyCFunction)(void (*)(void))speedups_find, METH_FASTCALL, find_doc},
    {"remembered", (PyCFunction)(void (*)(void))speedups_remembered, METH_FASTCALL,
     remembered_doc},
    {"splice", (PyCFunction)(void (*)(void))speedups_splice, METH_FASTCALL, splice_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_exec(PyObject *module)
{
    ModuleState *names = (ModuleState *)PyModule_GetState(module);
    names->text = PyUnicode_InternFromString("text");
    names->raw_kind = PyUnicode_InternFromString("raw_kind");
    names->vouched = PyUnicode_InternFromString("vouched");
    return names->text && names->raw_kind && names->vouched ? 0 : -1;
}

static int
speedups_traverse(PyObject *module, visitproc visit, void *arg)
{
    ModuleState *names = (ModuleState *)PyModule_GetState(module);
    Py_VISIT(names->text);
    Py_VISIT(names->raw_kind);
    Py_VISIT(names->vouched);
    return 0;
}

static int
speedups_clear(PyObject *module)
{
    ModuleState *names = (ModuleState *)PyModule_GetState(module);
    Py_CLEAR(names->text);
    Py_CLEAR(names->raw_kind);
    Py_CLEAR(names->vouched);
    return 0;
}

static void
speedups_free(void *module)
{
    speedups_clear((PyObject *)module);
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(speedups_doc, "C accelerators of hashstatic (see hashstatic.speedups).");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "hashstatic._speedups", /* m_name */
    speedups_doc,           /* m_doc */
    sizeof(ModuleState),    /* m_size */
    speedups_methods,       /* m_methods */
    speedups_slots,         /* m_slots */
    speedups_traverse,      /* m_traverse */
    speedups_clear,         /* m_clear */
    speedups_free,          /* m_free */
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
