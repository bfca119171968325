/*
 * hashstatic._digests: many files read and hashed with the interpreter lock let go once.
 *
 * build_manifest hashes every file of a tree on two or more threads. Done through os.read
 * and hashlib, each file lets go of the interpreter lock and takes it back four to six times
 * (open, read, MD5, SHA-384, close), and with two threads each of those hand-overs may wait
 * for the other thread (measured on two cores: a second thread added 0.13 s of CPU to a
 * 0.45 s job and took only 0.10 s off it). Here a thread reads and hashes a whole batch of
 * files in C, with the lock let go once for the batch, using the OpenSSL that hashlib
 * itself uses. A development index reads a file it meets for the first time the same way,
 * a batch of one: one hand-over of the lock instead of several.
 *
 * A separate extension from hashstatic._speedups because it links libcrypto: where OpenSSL's
 * headers are missing only this module is not built, and hashstatic.cache reads files as it
 * otherwise does.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <openssl/evp.h>

#include "_openat2.h" /* as hashstatic._speedups.open_plain opens: the file at that path */

#if defined(HAVE_OPEN_PLAIN)
#define HAVE_DIGEST_FILES 1
#include <sys/stat.h>

/* The most read at once from a file whose bytes are not kept (hashstatic.cache._CHUNK). */
#define SCRATCH_SIZE ((size_t)256 * 1024)

/* One file of a batch: filled in without the interpreter lock. */
struct job {
    const char *path; /* the bytes of a PyBytes held by the caller */
    int keep;         /* keep the bytes read (stylesheets, scripts) */
    int ok;           /* read and hashed, unchanged while it was read */
    int error;        /* the errno of a failed open */
    struct stat st;   /* fstat after reading */
    unsigned char md5[16];
    unsigned char sha384[48];
    char *data; /* when keep: PyMem_RawMalloc'ed, st.st_size bytes */
};

static int
same_version(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Read and hash one file; job->ok tells whether it worked. Runs without the interpreter
   lock: touches only the job, the digest contexts and the scratch buffer of its caller. */
static void
read_one(struct job *job, EVP_MD_CTX *md5, EVP_MD_CTX *sha, char *scratch)
{
    char *buffer = scratch;
    size_t expect = 0, total = 0;
    long fd = plain_open(job->path);
    if (fd < 0) {
        job->error = errno; /* no file, a symlink on the way, no openat2...: the caller says */
        return;
    }
    struct stat before;
    if (fstat((int)fd, &before) < 0 || !S_ISREG(before.st_mode) || before.st_size < 0) {
        goto done;
    }
    if (!EVP_DigestInit_ex(md5, EVP_md5(), NULL) ||
        (sha != NULL && !EVP_DigestInit_ex(sha, EVP_sha384(), NULL))) {
        goto done; /* e.g. MD5 refused by a FIPS configuration: hashlib is told otherwise */
    }
    expect = (size_t)before.st_size;
    if (job->keep) {
        buffer = PyMem_RawMalloc(expect + 1);
        if (buffer == NULL) {
            goto done; /* the caller's own read raises MemoryError if it is still short */
        }
    }
    for (;;) {
        /* One byte more than fstat counted: a shorter read that ends there is the end of the
           file (as hashstatic.cache._Tee reads), so a small file takes one read. */
        size_t want = expect - total + 1;
        char *into = buffer;
        if (job->keep) {
            into = buffer + total;
        }
        else if (want > SCRATCH_SIZE) {
            want = SCRATCH_SIZE;
        }
        ssize_t got = read((int)fd, into, want);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto failed;
        }
        if (got > 0) {
            total += (size_t)got;
            if (total > expect) {
                goto failed; /* it grew while it was read */
            }
            if (!EVP_DigestUpdate(md5, into, (size_t)got) ||
                (sha != NULL && !EVP_DigestUpdate(sha, into, (size_t)got))) {
                goto failed;
            }
        }
        if (got == 0 || (total == expect && (size_t)got < want)) {
            break;
        }
    }
    if (total != expect || fstat((int)fd, &job->st) < 0 || !same_version(&before, &job->st)) {
        goto failed; /* changed while it was read: read again by the caller */
    }
    if (!EVP_DigestFinal_ex(md5, job->md5, NULL) ||
        (sha != NULL && !EVP_DigestFinal_ex(sha, job->sha384, NULL))) {
        goto failed;
    }
    job->ok = 1;
    job->data = job->keep ? buffer : NULL;
    goto done;
failed:
    if (buffer != scratch) {
        PyMem_RawFree(buffer);
    }
done:
    close((int)fd);
}

/* The answer for one job: (key, md5, sha384, data), the errno of a failed open, or None. */
static PyObject *
answer(const struct job *job, int want_sha)
{
    if (job->error != 0) {
        return PyLong_FromLong(job->error);
    }
    if (!job->ok) {
        Py_RETURN_NONE;
    }
    const struct stat *st = &job->st;
    PyObject *key = file_key_of(st);
    PyObject *md5 = PyBytes_FromStringAndSize((const char *)job->md5, 16);
    PyObject *sha = want_sha ? PyBytes_FromStringAndSize((const char *)job->sha384, 48)
                             : Py_NewRef(Py_None);
    PyObject *data = job->data != NULL
                         ? PyBytes_FromStringAndSize(job->data, (Py_ssize_t)st->st_size)
                         : Py_NewRef(Py_None);
    PyObject *result = NULL;
    if (key != NULL && md5 != NULL && sha != NULL && data != NULL) {
        result = PyTuple_Pack(4, key, md5, sha, data);
    }
    Py_XDECREF(key);
    Py_XDECREF(md5);
    Py_XDECREF(sha);
    Py_XDECREF(data);
    return result;
}

PyDoc_STRVAR(digest_files_doc,
"digest_files(paths, keep, sha384) -> list\n"
"\n"
"Read and hash the regular file at each of paths (a list of str), opened as\n"
"hashstatic._speedups.open_plain opens (openat2, no symbolic link followed on\n"
"the way). keep is a list of as many bools: keep[i] keeps the bytes of paths[i].\n"
"Each answer is (key, md5, sha384, data): key the file's (st_dev, st_ino,\n"
"mtime_ns, ctime_ns, size) after reading, md5 and sha384 the raw digests of its\n"
"bytes (sha384 None unless asked for), data its bytes when kept, else None. The\n"
"answer is the errno (an int) when the open failed (ELOOP for a symbolic link on\n"
"the way, ENOENT for no file), and None for a file that is not a regular file,\n"
"that could not be read or hashed, or that changed while it was read: the caller\n"
"reads that one as it otherwise would, and learns why.\n"
"Each open is reported to audit hooks as os.open reports it. The interpreter\n"
"lock is let go once, for the whole list.");

static PyObject *
digest_files(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "digest_files(paths, keep, sha384): two lists and a bool");
        return NULL;
    }
    PyObject *paths = args[0], *keep = args[1];
    Py_ssize_t n = PyList_GET_SIZE(paths);
    if (PyList_GET_SIZE(keep) != n) {
        PyErr_SetString(PyExc_ValueError, "digest_files: paths and keep differ in length");
        return NULL;
    }
    int want_sha = PyObject_IsTrue(args[2]);
    if (want_sha < 0) {
        return NULL;
    }
    PyObject *names = PyList_New(n); /* the encoded paths, held while the jobs use them */
    struct job *jobs = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(struct job));
    char *scratch = PyMem_RawMalloc(SCRATCH_SIZE);
    EVP_MD_CTX *md5 = EVP_MD_CTX_new();
    EVP_MD_CTX *sha = want_sha ? EVP_MD_CTX_new() : NULL;
    PyObject *result = NULL;
    if (names == NULL || jobs == NULL || scratch == NULL || md5 == NULL ||
        (want_sha && sha == NULL)) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *path = PyList_GET_ITEM(paths, i), *name = NULL;
        if (!PyUnicode_Check(path)) {
            PyErr_SetString(PyExc_TypeError, "digest_files: paths must be str");
            goto done;
        }
        if (PySys_Audit("open", "OOi", path, Py_None, PLAIN_OPEN_FLAGS) < 0 ||
            !PyUnicode_FSConverter(path, &name)) {
            goto done;
        }
        PyList_SET_ITEM(names, i, name);
        int kept = PyObject_IsTrue(PyList_GET_ITEM(keep, i));
        if (kept < 0) {
            goto done;
        }
        jobs[i].path = PyBytes_AS_STRING(name);
        jobs[i].keep = kept;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        read_one(&jobs[i], md5, sha, scratch);
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(n);
    for (Py_ssize_t i = 0; result != NULL && i < n; i++) {
        PyObject *one = answer(&jobs[i], want_sha);
        if (one == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, one);
    }
done:
    if (jobs != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            PyMem_RawFree(jobs[i].data);
        }
    }
    PyMem_Free(jobs);
    PyMem_RawFree(scratch);
    EVP_MD_CTX_free(md5);
    EVP_MD_CTX_free(sha);
    Py_XDECREF(names);
    return result;
}
#endif /* HAVE_DIGEST_FILES */

static PyMethodDef digests_methods[] = {
#if defined(HAVE_DIGEST_FILES)
    {"digest_files", (PyCFunction)(void (*)(void))digest_files, METH_FASTCALL, digest_files_doc},
#endif
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot digests_slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(digests_doc, "Files read and hashed in C for the hash cache (see hashstatic.cache).");

static struct PyModuleDef digests_module = {
    PyModuleDef_HEAD_INIT,
    "hashstatic._digests", /* m_name */
    digests_doc,           /* m_doc */
    0,                     /* m_size */
    digests_methods,       /* m_methods */
    digests_slots,         /* m_slots */
    NULL,                  /* m_traverse */
    NULL,                  /* m_clear */
    NULL,                  /* m_free */
};

PyMODINIT_FUNC
PyInit__digests(void)
{
    return PyModuleDef_Init(&digests_module);
}
