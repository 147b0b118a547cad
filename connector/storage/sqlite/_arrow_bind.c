/*
 * Rows between Arrow's buffers and SQLite, on the connection of Python's own
 * `sqlite3` module and through its library: `execute_batch` binds Arrow
 * columns into one prepared statement row by row; `query_columns` steps a
 * query and appends each result column to Arrow-layout buffers.
 *
 * Why: `executemany` needs a Python tuple per row and a Python object per cell
 * and takes the GIL back around every row's step; reading back, `fetchall`
 * makes a Python object per cell (and `json_object` lines parsed by pyarrow
 * cost a text per row built and parsed). Here cells are bound from Arrow's
 * buffers (the C data interface) as SQLITE_STATIC text, results are copied
 * into offset, data and validity buffers, and each loop runs with the GIL
 * released. The ADBC SQLite driver does the
 * same but links its own copy of SQLite; two copies in one process break each
 * other's POSIX locks. This module links the system library that `_sqlite3`
 * links, and `same_library()` checks that the process holds one copy: the
 * Python side uses it only then.
 *
 * Python's `sqlite3.Connection` has no public accessor for its `sqlite3 *`:
 * CPython 3.11-3.13 keep it as the first field after the object header. The
 * Python side checks the handle with `database_file()` against the path it
 * opened before it trusts it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

/* ---- the Arrow C data interface (https://arrow.apache.org/docs/format/CDataInterface.html) */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};
#endif

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
} ConnectionHead;

static PyObject *connection_type = NULL;  /* sqlite3.Connection */
static PyObject *integrity_error = NULL;  /* sqlite3.IntegrityError */
static PyObject *operational_error = NULL; /* sqlite3.OperationalError */

enum kind { TEXT32, TEXT64, INT64, FLOAT64 };

typedef struct {
    enum kind kind;
    const uint8_t *validity; /* NULL: no nulls */
    const void *offsets;     /* TEXT32 / TEXT64 */
    const char *data;        /* text bytes, or the fixed-width values */
    int64_t offset;
} Column;

static sqlite3 *handle_of(PyObject *connection) {
    int is_connection = PyObject_IsInstance(connection, connection_type);
    if (is_connection < 0) {
        return NULL;
    }
    if (!is_connection) {
        PyErr_SetString(PyExc_TypeError, "expected a sqlite3.Connection");
        return NULL;
    }
    sqlite3 *db = ((ConnectionHead *)connection)->db;
    if (db == NULL) {
        PyErr_SetString(PyExc_ValueError, "the connection is closed");
    }
    return db;
}

static int column_of(const struct ArrowSchema *schema, const struct ArrowArray *array,
                     Column *column) {
    const char *format = schema->format;
    if (array->n_children != 0 || array->dictionary != NULL) {
        PyErr_Format(PyExc_TypeError, "column %s: nested or dictionary arrays are not bound",
                     schema->name ? schema->name : "?");
        return -1;
    }
    if (strcmp(format, "u") == 0) {
        column->kind = TEXT32;
    } else if (strcmp(format, "U") == 0) {
        column->kind = TEXT64;
    } else if (strcmp(format, "l") == 0) {
        column->kind = INT64;
    } else if (strcmp(format, "g") == 0) {
        column->kind = FLOAT64;
    } else {
        PyErr_Format(PyExc_TypeError, "column %s: Arrow type %s is not bound",
                     schema->name ? schema->name : "?", format);
        return -1;
    }
    column->validity = array->null_count == 0 ? NULL : (const uint8_t *)array->buffers[0];
    column->offset = array->offset;
    if (column->kind == TEXT32 || column->kind == TEXT64) {
        column->offsets = array->buffers[1];
        column->data = (const char *)array->buffers[2];
    } else {
        column->offsets = NULL;
        column->data = (const char *)array->buffers[1];
    }
    return 0;
}

static int bind_cell(sqlite3_stmt *statement, int parameter, const Column *column, int64_t row) {
    int64_t at = row + column->offset;
    if (column->validity != NULL && !((column->validity[at >> 3] >> (at & 7)) & 1)) {
        return sqlite3_bind_null(statement, parameter);
    }
    switch (column->kind) {
    case TEXT32: {
        const int32_t *offsets = (const int32_t *)column->offsets;
        /* an empty string has a valid (possibly NULL) data pointer: bind "" */
        const char *text = column->data != NULL ? column->data + offsets[at] : "";
        return sqlite3_bind_text(statement, parameter, text, offsets[at + 1] - offsets[at],
                                 SQLITE_STATIC);
    }
    case TEXT64: {
        const int64_t *offsets = (const int64_t *)column->offsets;
        const char *text = column->data != NULL ? column->data + offsets[at] : "";
        return sqlite3_bind_text64(statement, parameter, text,
                                   (sqlite3_uint64)(offsets[at + 1] - offsets[at]), SQLITE_STATIC,
                                   SQLITE_UTF8);
    }
    case INT64:
        return sqlite3_bind_int64(statement, parameter,
                                  ((const int64_t *)column->data)[at]);
    case FLOAT64:
        return sqlite3_bind_double(statement, parameter, ((const double *)column->data)[at]);
    }
    return SQLITE_MISUSE;
}

/* SQLite's error as sqlite3's exception; `row` (from 0) names the row it failed at, if any */
static void raise_sqlite(int code, int64_t row, const char *message) {
    PyObject *kind = (code & 0xff) == SQLITE_CONSTRAINT ? integrity_error : operational_error;
    if (row < 0) {
        PyErr_SetString(kind, message);
    } else {
        PyErr_Format(kind, "%s (row %lld of the batch)", message, (long long)row);
    }
}

/* The connection's last error: its extended code, and a copy of its message in `*failure`
 * (for after the mutex is released; NULL when out of memory; sqlite3_free it) */
static int error_of(sqlite3 *db, char **failure) {
    *failure = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    return sqlite3_extended_errcode(db);
}

/* Hold the connection's own (recursive) mutex for a whole batch or page. In the
 * serialized mode Python's sqlite3 uses, every bind, step and column call enters
 * and leaves it: an atomic lock and unlock a cell, a quarter of a page read's CPU
 * (perf). Held here, those calls find it already theirs and only count. Taken and
 * given back with the GIL released, never while waiting for the GIL: a thread that
 * holds the GIL and calls into this connection waits for the batch, no deadlock
 * (the store registers no Python callback, function or handler on its connection,
 * so nothing inside a step asks for the GIL while the mutex is held).
 * Without a mutex (single-thread or multi-thread builds) both are no-ops. */
static void hold_connection(sqlite3 *db) { sqlite3_mutex_enter(sqlite3_db_mutex(db)); }

static void release_connection(sqlite3 *db) { sqlite3_mutex_leave(sqlite3_db_mutex(db)); }

/* The statement prepared, or NULL with sqlite3's exception set */
static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
    sqlite3_stmt *statement = NULL;
    int code = sqlite3_prepare_v3(db, sql, -1, 0, &statement, NULL);
    if (code != SQLITE_OK || statement == NULL) {
        raise_sqlite(code, -1, code == SQLITE_OK ? "not one statement" : sqlite3_errmsg(db));
        sqlite3_finalize(statement);
        return NULL;
    }
    return statement;
}

/* A record batch's columns, read through `__arrow_c_array__`: on success `*capsules` keeps
 * the buffers alive until the caller releases it and frees `*columns` (PyMem_Free) */
static int batch_columns(PyObject *batch, PyObject **capsules, Column **columns, int *width,
                         int64_t *length) {
    *capsules = PyObject_CallMethod(batch, "__arrow_c_array__", NULL);
    if (*capsules == NULL) {
        return -1;
    }
    PyObject *schema_capsule, *array_capsule;
    if (!PyArg_ParseTuple(*capsules, "OO", &schema_capsule, &array_capsule)) {
        Py_CLEAR(*capsules);
        return -1;
    }
    struct ArrowSchema *schema = PyCapsule_GetPointer(schema_capsule, "arrow_schema");
    struct ArrowArray *array =
        schema == NULL ? NULL : PyCapsule_GetPointer(array_capsule, "arrow_array");
    if (array == NULL) {
        Py_CLEAR(*capsules);
        return -1;
    }
    if (strcmp(schema->format, "+s") != 0 || array->offset != 0) {
        PyErr_SetString(PyExc_TypeError, "expected a record batch");
        Py_CLEAR(*capsules);
        return -1;
    }
    *width = (int)array->n_children;
    *length = array->length;
    *columns = PyMem_Calloc(*width > 0 ? *width : 1, sizeof(Column));
    if (*columns == NULL) {
        Py_CLEAR(*capsules);
        PyErr_NoMemory();
        return -1;
    }
    for (int index = 0; index < *width; index++) {
        if (column_of(schema->children[index], array->children[index], &(*columns)[index]) < 0) {
            PyMem_Free(*columns);
            Py_CLEAR(*capsules);
            return -1;
        }
    }
    return 0;
}

/* The arguments (connection, sql, batch) of execute_batch and execute_rows: `sql` prepared
 * on the connection's handle, or NULL with an exception set */
static sqlite3_stmt *statement_for(PyObject *args, sqlite3 **db, PyObject **batch) {
    PyObject *connection;
    const char *sql;
    if (!PyArg_ParseTuple(args, "OsO", &connection, &sql, batch)) {
        return NULL;
    }
    *db = handle_of(connection);
    if (*db == NULL) {
        return NULL;
    }
    return prepare(*db, sql);
}

/* execute_batch(connection, sql, batch) -> rows changed
 *
 * `batch` is anything with `__arrow_c_array__` (a pyarrow RecordBatch): column i
 * binds parameter i + 1 of `sql`, once per row.
 */
static PyObject *execute_batch(PyObject *module, PyObject *args) {
    sqlite3 *db;
    PyObject *batch;
    sqlite3_stmt *statement = statement_for(args, &db, &batch);
    if (statement == NULL) {
        return NULL;
    }
    PyObject *capsules;
    Column *columns;
    int width;
    int64_t rows;
    if (batch_columns(batch, &capsules, &columns, &width, &rows) < 0) {
        sqlite3_finalize(statement);
        return NULL;
    }
    if (sqlite3_bind_parameter_count(statement) != width) {
        PyErr_Format(PyExc_ValueError, "the statement takes %d parameters, the batch has %d columns",
                     sqlite3_bind_parameter_count(statement), width);
        sqlite3_finalize(statement);
        PyMem_Free(columns);
        Py_DECREF(capsules);
        return NULL;
    }
    int code = SQLITE_OK;
    int64_t row = 0, changed = 0;
    char *failure = NULL;
    Py_BEGIN_ALLOW_THREADS
    hold_connection(db);
    for (; row < rows; row++) {
        for (int index = 0; index < width && code == SQLITE_OK; index++) {
            code = bind_cell(statement, index + 1, &columns[index], row);
        }
        if (code == SQLITE_OK) {
            code = sqlite3_step(statement);
            if (code == SQLITE_DONE || code == SQLITE_ROW) {
                changed += sqlite3_changes(db);
                code = SQLITE_OK;
            }
        }
        if (code != SQLITE_OK) {
            /* the step's own error code and message; reset would repeat the code */
            code = error_of(db, &failure);
            break;
        }
        sqlite3_reset(statement);
    }
    sqlite3_finalize(statement);
    release_connection(db);
    Py_END_ALLOW_THREADS
    PyMem_Free(columns);
    Py_DECREF(capsules);
    if (row < rows) {
        raise_sqlite(code, row, failure != NULL ? failure : "out of memory");
        sqlite3_free(failure);
        return NULL;
    }
    return PyLong_FromLongLong(changed);
}

/* ---- arrow_rows: a record batch as a table, for one set-based statement over all its rows
 *
 * `execute_batch` runs its statement once per row, and each run of an INSERT or
 * UPDATE opens its table's and indexes' cursors again: SQLite's own
 * `INSERT ... SELECT` of the same rows took under half the time (perf, 1M rows).
 * `arrow_rows(?1)` is an eponymous table-valued function (as SQLite's `carray`):
 * columns c0 .. c255 are the batch's columns (NULL past its width), read straight
 * from Arrow's buffers; ?1 is the batch, passed by `execute_rows` with
 * `sqlite3_bind_pointer`, so no SQL text or other caller can hand it a pointer. */

#define ROWS_WIDTH 256
#define ROWS_POINTER "connector.arrow_rows"

typedef struct {
    int width;
    int64_t length;
    const Column *columns;
} Rows;

typedef struct {
    sqlite3_vtab_cursor base;
    const Rows *rows;
    int64_t row;
} RowsCursor;

static int rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **table, char **error) {
    char declaration[ROWS_WIDTH * 5 + 64] = "CREATE TABLE x(";
    size_t used = strlen(declaration);
    for (int index = 0; index < ROWS_WIDTH; index++) {
        used += (size_t)snprintf(declaration + used, sizeof declaration - used, "c%d,", index);
    }
    snprintf(declaration + used, sizeof declaration - used, "batch HIDDEN)");
    int code = sqlite3_declare_vtab(db, declaration);
    if (code != SQLITE_OK) {
        return code;
    }
    *table = sqlite3_malloc(sizeof **table);
    if (*table == NULL) {
        return SQLITE_NOMEM;
    }
    memset(*table, 0, sizeof **table);
    return SQLITE_OK;
}

static int rows_disconnect(sqlite3_vtab *table) {
    sqlite3_free(table);
    return SQLITE_OK;
}

/* The only plan: the batch given as the hidden argument, every row in order */
static int rows_best_index(sqlite3_vtab *table, sqlite3_index_info *info) {
    for (int index = 0; index < info->nConstraint; index++) {
        const struct sqlite3_index_constraint *constraint = &info->aConstraint[index];
        if (constraint->iColumn == ROWS_WIDTH && constraint->op == SQLITE_INDEX_CONSTRAINT_EQ) {
            if (!constraint->usable) {
                return SQLITE_CONSTRAINT;
            }
            info->aConstraintUsage[index].argvIndex = 1;
            info->aConstraintUsage[index].omit = 1;
            info->estimatedCost = 1000.0;
            info->estimatedRows = 1000;
            return SQLITE_OK;
        }
    }
    table->zErrMsg = sqlite3_mprintf("arrow_rows needs its batch: arrow_rows(?1)");
    return SQLITE_ERROR;
}

static int rows_open(sqlite3_vtab *table, sqlite3_vtab_cursor **cursor) {
    RowsCursor *opened = sqlite3_malloc(sizeof *opened);
    if (opened == NULL) {
        return SQLITE_NOMEM;
    }
    memset(opened, 0, sizeof *opened);
    *cursor = &opened->base;
    return SQLITE_OK;
}

static int rows_close(sqlite3_vtab_cursor *cursor) {
    sqlite3_free(cursor);
    return SQLITE_OK;
}

static int rows_filter(sqlite3_vtab_cursor *cursor, int plan, const char *plan_text, int argc,
                       sqlite3_value **argv) {
    RowsCursor *at = (RowsCursor *)cursor;
    at->rows = argc > 0 ? sqlite3_value_pointer(argv[0], ROWS_POINTER) : NULL;
    at->row = 0;
    return SQLITE_OK;
}

static int rows_next(sqlite3_vtab_cursor *cursor) {
    ((RowsCursor *)cursor)->row++;
    return SQLITE_OK;
}

static int rows_eof(sqlite3_vtab_cursor *cursor) {
    const RowsCursor *at = (const RowsCursor *)cursor;
    return at->rows == NULL || at->row >= at->rows->length;
}

static int rows_column(sqlite3_vtab_cursor *cursor, sqlite3_context *context, int index) {
    const RowsCursor *at = (const RowsCursor *)cursor;
    if (index >= at->rows->width) {
        sqlite3_result_null(context);
        return SQLITE_OK;
    }
    const Column *column = &at->rows->columns[index];
    int64_t cell = at->row + column->offset;
    if (column->validity != NULL && !((column->validity[cell >> 3] >> (cell & 7)) & 1)) {
        sqlite3_result_null(context);
        return SQLITE_OK;
    }
    switch (column->kind) {
    case TEXT32: {
        const int32_t *offsets = (const int32_t *)column->offsets;
        const char *text = column->data != NULL ? column->data + offsets[cell] : "";
        /* static: the batch outlives the statement, and SQLite copies what it stores */
        sqlite3_result_text(context, text, offsets[cell + 1] - offsets[cell], SQLITE_STATIC);
        break;
    }
    case TEXT64: {
        const int64_t *offsets = (const int64_t *)column->offsets;
        const char *text = column->data != NULL ? column->data + offsets[cell] : "";
        sqlite3_result_text64(context, text, (sqlite3_uint64)(offsets[cell + 1] - offsets[cell]),
                              SQLITE_STATIC, SQLITE_UTF8);
        break;
    }
    case INT64:
        sqlite3_result_int64(context, ((const int64_t *)column->data)[cell]);
        break;
    case FLOAT64:
        sqlite3_result_double(context, ((const double *)column->data)[cell]);
        break;
    }
    return SQLITE_OK;
}

static int rows_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
    *rowid = ((const RowsCursor *)cursor)->row;
    return SQLITE_OK;
}

static sqlite3_module rows_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: no CREATE VIRTUAL TABLE, nothing in the schema */
    .xConnect = rows_connect,
    .xBestIndex = rows_best_index,
    .xDisconnect = rows_disconnect,
    .xDestroy = rows_disconnect,
    .xOpen = rows_open,
    .xClose = rows_close,
    .xFilter = rows_filter,
    .xNext = rows_next,
    .xEof = rows_eof,
    .xColumn = rows_column,
    .xRowid = rows_rowid,
};

/* A record batch given as a query's parameter, for `arrow_rows(?N)`: alive until released */
typedef struct {
    PyObject *capsules;
    Column *columns;
    Rows rows;
} HeldRows;

static void release_rows(HeldRows *held) {
    PyMem_Free(held->columns);
    Py_CLEAR(held->capsules);
    held->columns = NULL;
}

static int bind_rows(sqlite3_stmt *statement, int parameter, PyObject *batch, HeldRows *held) {
    if (held->capsules != NULL) {
        PyErr_SetString(PyExc_ValueError, "a query takes at most one record batch");
        return -1;
    }
    Column *columns;
    if (batch_columns(batch, &held->capsules, &columns, &held->rows.width, &held->rows.length) <
        0) {
        return -1;
    }
    held->columns = columns;
    held->rows.columns = columns;
    if (held->rows.width > ROWS_WIDTH) {
        PyErr_Format(PyExc_ValueError, "arrow_rows takes at most %d columns, the batch has %d",
                     ROWS_WIDTH, held->rows.width);
        return -1;
    }
    return sqlite3_bind_pointer(statement, parameter, &held->rows, ROWS_POINTER, NULL);
}

/* register_rows(connection): make `arrow_rows` known to this connection (once, at open) */
static PyObject *register_rows(PyObject *module, PyObject *connection) {
    sqlite3 *db = handle_of(connection);
    if (db == NULL) {
        return NULL;
    }
    int code = sqlite3_create_module_v2(db, "arrow_rows", &rows_module, NULL, NULL);
    if (code != SQLITE_OK) {
        raise_sqlite(code, -1, sqlite3_errmsg(db));
        return NULL;
    }
    Py_RETURN_NONE;
}

/* execute_rows(connection, sql, batch) -> rows changed
 *
 * Runs `sql` once, its ?1 bound to `batch` for `arrow_rows(?1)`:
 * `INSERT INTO t (a, b) SELECT c0, c1 FROM arrow_rows(?1)`.
 */
static PyObject *execute_rows(PyObject *module, PyObject *args) {
    sqlite3 *db;
    PyObject *batch;
    sqlite3_stmt *statement = statement_for(args, &db, &batch);
    if (statement == NULL) {
        return NULL;
    }
    if (sqlite3_bind_parameter_count(statement) != 1) {
        PyErr_Format(PyExc_ValueError, "the statement takes %d parameters, not just the batch",
                     sqlite3_bind_parameter_count(statement));
        sqlite3_finalize(statement);
        return NULL;
    }
    HeldRows held = {NULL, NULL, {0, 0, NULL}};
    int code = bind_rows(statement, 1, batch, &held);
    if (code < 0) {
        sqlite3_finalize(statement);
        release_rows(&held);
        return NULL;
    }
    int64_t changed = 0;
    char *failure = NULL;
    Py_BEGIN_ALLOW_THREADS
    hold_connection(db);
    if (code == SQLITE_OK) {
        while ((code = sqlite3_step(statement)) == SQLITE_ROW) {
        }
    }
    if (code == SQLITE_DONE) {
        changed = sqlite3_changes64(db);
    } else {
        code = error_of(db, &failure);
    }
    sqlite3_finalize(statement);
    release_connection(db);
    Py_END_ALLOW_THREADS
    release_rows(&held);
    if (code != SQLITE_DONE) {
        raise_sqlite(code, -1, failure != NULL ? failure : "out of memory");
        sqlite3_free(failure);
        return NULL;
    }
    return PyLong_FromLongLong(changed);
}

/* ---- query_columns: a statement's result rows, column by column, into Arrow's buffers */

typedef struct {
    char *bytes;
    size_t size, capacity;
} Buffer;

static int buffer_reserve(Buffer *buffer, size_t more) {
    if (buffer->size + more <= buffer->capacity) {
        return 0;
    }
    size_t capacity = buffer->capacity ? buffer->capacity : 4096;
    while (capacity < buffer->size + more) {
        capacity *= 2;
    }
    char *bytes = PyMem_RawRealloc(buffer->bytes, capacity);
    if (bytes == NULL) {
        return -1;
    }
    buffer->bytes = bytes;
    buffer->capacity = capacity;
    return 0;
}

static int buffer_append(Buffer *buffer, const void *bytes, size_t size) {
    if (buffer_reserve(buffer, size) < 0) {
        return -1;
    }
    if (size) {
        memcpy(buffer->bytes + buffer->size, bytes, size);
    }
    buffer->size += size;
    return 0;
}

typedef struct {
    char kind; /* 't': text (int32 offsets + UTF-8 bytes), 'i': int64 */
    Buffer validity, offsets, data;
    int64_t nulls;
} Output;

static void mark_valid(Output *output, int64_t row, int is_null) {
    if (is_null) {
        output->nulls++;
    } else {
        ((uint8_t *)output->validity.bytes)[row >> 3] |= (uint8_t)(1u << (row & 7));
    }
}

static int output_append(Output *output, sqlite3_stmt *statement, int index, int64_t row) {
    if ((row & 7) == 0) {
        uint8_t zero = 0;
        if (buffer_append(&output->validity, &zero, 1) < 0) {
            return -1;
        }
    }
    if (output->kind == 'i') {
        int64_t value = sqlite3_column_int64(statement, index);
        /* 0 is also what NULL reads as: only then ask for the type */
        int is_null = value == 0 && sqlite3_column_type(statement, index) == SQLITE_NULL;
        mark_valid(output, row, is_null);
        return buffer_append(&output->data, &value, sizeof value);
    }
    /* text first: NULL comes back as a NULL pointer, so a cell costs two calls, not three */
    const unsigned char *text = sqlite3_column_text(statement, index);
    int is_null = text == NULL && sqlite3_column_type(statement, index) == SQLITE_NULL;
    mark_valid(output, row, is_null);
    if (!is_null) {
        int size = sqlite3_column_bytes(statement, index);
        if (text == NULL && size > 0) {
            return -1; /* out of memory converting the value to text */
        }
        if (output->data.size + (size_t)size > INT32_MAX) {
            return -2;
        }
        if (buffer_append(&output->data, text, (size_t)size) < 0) {
            return -1;
        }
    }
    int32_t end = (int32_t)output->data.size;
    return buffer_append(&output->offsets, &end, sizeof end);
}

static int bind_parameters(sqlite3_stmt *statement, PyObject *parameters, HeldRows *held) {
    Py_ssize_t count = PyTuple_GET_SIZE(parameters);
    if (count != sqlite3_bind_parameter_count(statement)) {
        PyErr_Format(PyExc_ValueError, "the statement takes %d parameters, %zd were given",
                     sqlite3_bind_parameter_count(statement), count);
        return -1;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *value = PyTuple_GET_ITEM(parameters, index);
        int code;
        if (PyObject_HasAttrString(value, "__arrow_c_array__")) {
            code = bind_rows(statement, (int)index + 1, value, held);
            if (code < 0) {
                return -1;
            }
        } else if (value == Py_None) {
            code = sqlite3_bind_null(statement, (int)index + 1);
        } else if (PyLong_Check(value)) {
            long long number = PyLong_AsLongLong(value);
            if (number == -1 && PyErr_Occurred()) {
                return -1;
            }
            code = sqlite3_bind_int64(statement, (int)index + 1, number);
        } else if (PyUnicode_Check(value)) {
            Py_ssize_t size;
            const char *text = PyUnicode_AsUTF8AndSize(value, &size);
            if (text == NULL) {
                return -1;
            }
            /* the tuple keeps the str, and so its UTF-8, alive for the whole call */
            code = sqlite3_bind_text64(statement, (int)index + 1, text, (sqlite3_uint64)size,
                                       SQLITE_STATIC, SQLITE_UTF8);
        } else {
            PyErr_Format(PyExc_TypeError,
                         "parameter %zd: %s is not bound (str, int, None, a record batch)",
                         index + 1, Py_TYPE(value)->tp_name);
            return -1;
        }
        if (code != SQLITE_OK) {
            raise_sqlite(code, -1, "cannot bind a parameter");
            return -1;
        }
    }
    return 0;
}

static PyObject *bytes_of(Buffer *buffer) {
    return PyBytes_FromStringAndSize(buffer->bytes ? buffer->bytes : "", (Py_ssize_t)buffer->size);
}

/* query_columns(connection, sql, parameters, kinds) -> (rows, [(nulls, validity, offsets, data)])
 *
 * `kinds` has a letter per result column: 't' text, 'i' int64. Offsets is None for 'i'.
 * A parameter may be one record batch, for `arrow_rows(?N)` in `sql`.
 */
static PyObject *query_columns(PyObject *module, PyObject *args) {
    PyObject *connection, *parameters;
    const char *sql, *kinds;
    if (!PyArg_ParseTuple(args, "OsO!s", &connection, &sql, &PyTuple_Type, &parameters, &kinds)) {
        return NULL;
    }
    sqlite3 *db = handle_of(connection);
    if (db == NULL) {
        return NULL;
    }
    sqlite3_stmt *statement = prepare(db, sql);
    if (statement == NULL) {
        return NULL;
    }
    int width = sqlite3_column_count(statement);
    if ((size_t)width != strlen(kinds) || strspn(kinds, "ti") != strlen(kinds)) {
        PyErr_Format(PyExc_ValueError, "the statement returns %d columns; kinds %R do not match",
                     width, PyTuple_GET_ITEM(args, 3));
        sqlite3_finalize(statement);
        return NULL;
    }
    HeldRows held = {NULL, NULL, {0, 0, NULL}};
    if (bind_parameters(statement, parameters, &held) < 0) {
        sqlite3_finalize(statement);
        release_rows(&held);
        return NULL;
    }
    Output *outputs = PyMem_RawCalloc(width > 0 ? width : 1, sizeof(Output));
    if (outputs == NULL) {
        sqlite3_finalize(statement);
        release_rows(&held);
        return PyErr_NoMemory();
    }
    int code = SQLITE_DONE;
    int failed = 0; /* -1: out of memory, -2: a text column over 2 GiB, 1: SQLite */
    int64_t rows = 0;
    char *failure = NULL;
    Py_BEGIN_ALLOW_THREADS
    hold_connection(db);
    for (int index = 0; index < width; index++) {
        outputs[index].kind = kinds[index];
        if (kinds[index] == 't') {
            int32_t start = 0;
            if (buffer_append(&outputs[index].offsets, &start, sizeof start) < 0) {
                failed = -1;
            }
        }
    }
    while (!failed && (code = sqlite3_step(statement)) == SQLITE_ROW) {
        for (int index = 0; index < width && !failed; index++) {
            failed = output_append(&outputs[index], statement, index, rows);
        }
        rows++;
    }
    if (!failed && code != SQLITE_DONE) {
        failed = 1;
        code = error_of(db, &failure);
    }
    sqlite3_finalize(statement);
    release_connection(db);
    Py_END_ALLOW_THREADS
    release_rows(&held);
    PyObject *result = NULL;
    if (failed == -1) {
        PyErr_NoMemory();
    } else if (failed == -2) {
        PyErr_SetString(PyExc_OverflowError, "a text column of the result passed 2 GiB");
    } else if (failed == 1) {
        raise_sqlite(code, -1, failure != NULL ? failure : "out of memory");
    } else {
        PyObject *columns = PyList_New(width);
        for (int index = 0; columns != NULL && index < width; index++) {
            Output *output = &outputs[index];
            PyObject *offsets = output->kind == 't' ? bytes_of(&output->offsets) : Py_NewRef(Py_None);
            PyObject *column = Py_BuildValue("(LNNN)", (long long)output->nulls,
                                             bytes_of(&output->validity), offsets,
                                             bytes_of(&output->data));
            if (column == NULL) {
                Py_CLEAR(columns);
                break;
            }
            PyList_SET_ITEM(columns, index, column);
        }
        if (columns != NULL) {
            result = Py_BuildValue("(LN)", (long long)rows, columns);
        }
    }
    sqlite3_free(failure);
    for (int index = 0; index < width; index++) {
        PyMem_RawFree(outputs[index].validity.bytes);
        PyMem_RawFree(outputs[index].offsets.bytes);
        PyMem_RawFree(outputs[index].data.bytes);
    }
    PyMem_RawFree(outputs);
    return result;
}

/* database_file(connection) -> the path SQLite opened as "main", as SQLite reports it */
static PyObject *database_file(PyObject *module, PyObject *connection) {
    sqlite3 *db = handle_of(connection);
    if (db == NULL) {
        return NULL;
    }
    const char *path = sqlite3_db_filename(db, "main");
    return PyUnicode_DecodeFSDefault(path != NULL ? path : "");
}

/* same_library(path_of__sqlite3) -> does `_sqlite3` resolve SQLite to this module's copy? */
static PyObject *same_library(PyObject *module, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) {
        return NULL;
    }
    void *loaded = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
    if (loaded == NULL) {
        Py_RETURN_FALSE;
    }
    /* dlsym on a handle searches that object and its dependencies */
    void *theirs = dlsym(loaded, "sqlite3_libversion_number");
    dlclose(loaded);
    return PyBool_FromLong(theirs != NULL && theirs == (void *)&sqlite3_libversion_number);
}

static PyMethodDef methods[] = {
    {"execute_batch", execute_batch, METH_VARARGS,
     "Run one statement per row of an Arrow record batch; column i binds parameter i + 1."},
    {"register_rows", register_rows, METH_O,
     "Make the table-valued function arrow_rows(?1) known to this connection."},
    {"execute_rows", execute_rows, METH_VARARGS,
     "Run one statement once over an Arrow record batch read as arrow_rows(?1)."},
    {"query_columns", query_columns, METH_VARARGS,
     "A statement's result rows as Arrow buffers, column by column ('t' text, 'i' int64)."},
    {"database_file", database_file, METH_O,
     "The file SQLite opened as 'main' for this connection."},
    {"same_library", same_library, METH_VARARGS,
     "Whether the given extension module resolves SQLite to this module's library."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_arrow_bind",
    .m_doc = "Arrow record batches bound into SQLite statements, GIL released.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__arrow_bind(void) {
    PyObject *sqlite = PyImport_ImportModule("sqlite3");
    if (sqlite == NULL) {
        return NULL;
    }
    connection_type = PyObject_GetAttrString(sqlite, "Connection");
    integrity_error = PyObject_GetAttrString(sqlite, "IntegrityError");
    operational_error = PyObject_GetAttrString(sqlite, "OperationalError");
    Py_DECREF(sqlite);
    if (connection_type == NULL || integrity_error == NULL || operational_error == NULL) {
        return NULL;
    }
    return PyModule_Create(&definition);
}
