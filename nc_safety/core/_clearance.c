/*
 * Compiled form of nc_safety.core.geometry.summarize_path_clearance_numpy.
 *
 * The obstacle check measures every nearby laser point against the rectangular footprint
 * at every sampled pose of the braking path. In NumPy that takes about ten array
 * operations with roughly a microsecond of call overhead each, which dominated the
 * decision time. This module does the same arithmetic in one pass over the points and
 * returns only the three numbers the check needs. It keeps no state between calls and
 * touches no Python object while it loops.
 *
 * The NumPy function is the reference. setup.py marks this extension optional, and
 * geometry.py falls back to NumPy when it is missing or its ABI_VERSION differs. This
 * file is compiled with -ffp-contract=off, but NumPy's matrix product (BLAS) may sum in
 * another order or fuse multiply-adds, so the two can differ in the last bit of a
 * clearance (about 1e-16 m). The tests compare them.
 *
 * Units: metres throughout. Inputs (all C-contiguous float64 buffers):
 *   transform  (2 * P, 3): row i maps a homogeneous point (x, y, 1) to its x offset from
 *              the footprint centre at pose i, row P + i to its y offset.
 *   points     (N, 3): homogeneous points (x, y, 1) in the base frame at rest.
 *   thresholds (N,): a point counts as approached when its smallest clearance along the
 *              path is below its threshold.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* Bumped whenever the arguments or results change, so a stale build is not used. */
#define ABI_VERSION 1

/* Acquire a C-contiguous float64 buffer of `ndim` dimensions, or set an error naming `name`. */
static int
get_float64_buffer(PyObject *object, Py_buffer *view, int ndim, const char *name)
{
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous float64 array", name);
        return -1;
    }
    const char *format = view->format == NULL ? "B" : view->format;
    /* NumPy reports native float64 as "d"; a prefix naming the native byte order is allowed. */
    if (format[0] == '=' || format[0] == '@' || format[0] == (PY_LITTLE_ENDIAN ? '<' : '>')) {
        format++;
    }
    if (view->itemsize != (Py_ssize_t)sizeof(double) || strcmp(format, "d") != 0 || view->ndim != ndim) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-dimensional float64 array (got format %s, %d dimensions)",
                     name, ndim, view->format == NULL ? "B" : view->format, view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/*
 * Measure `count` points against the footprint at one pose and fold the result into the
 * running minima. The arrays must not overlap (restrict), which lets the compiler
 * vectorise the loop.
 */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
/* A second copy for AVX2 processors, chosen when the module loads: twice the vector width
 * of the SSE2 baseline that x86-64 builds target. */
__attribute__((target_clones("avx2", "default")))
#endif
#endif
static void
sweep_pose(Py_ssize_t count, const double *restrict row_x, const double *restrict row_y, double half_length,
           double half_width, double hit_squared, double pose, const double *restrict xs,
           const double *restrict ys, const double *restrict ws, double *restrict smallest,
           double *restrict deepest, double *restrict hit)
{
    const double ax = row_x[0], bx = row_x[1], cx = row_x[2];
    const double ay = row_y[0], by = row_y[1], cy = row_y[2];
    for (Py_ssize_t j = 0; j < count; j++) {
        /* Distance beyond each half side of the rectangle, negative inside that side. */
        const double gap_x = fabs(ax * xs[j] + bx * ys[j] + cx * ws[j]) - half_length;
        const double gap_y = fabs(ay * xs[j] + by * ys[j] + cy * ws[j]) - half_width;
        const double out_x = gap_x > 0.0 ? gap_x : 0.0;
        const double out_y = gap_y > 0.0 ? gap_y : 0.0;
        const double outside_squared = out_x * out_x + out_y * out_y;
        const double depth = gap_x > gap_y ? gap_x : gap_y;
        smallest[j] = outside_squared < smallest[j] ? outside_squared : smallest[j];
        deepest[j] = depth < deepest[j] ? depth : deepest[j];
        /* Poses are swept in ascending order, so the smallest index within hit_distance is the first. */
        const double reached = outside_squared <= hit_squared ? pose : INFINITY;
        hit[j] = reached < hit[j] ? reached : hit[j];
    }
}

PyDoc_STRVAR(summarize_doc,
"summarize(transform, half_length, half_width, points, thresholds, hit_distance)\n"
"--\n\n"
"Return (first_approached, path_min, first_hit) for the points against the footprint\n"
"at every pose; see nc_safety.core.geometry.summarize_path_clearance.");

static PyObject *
summarize(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *transform_object, *points_object, *thresholds_object;
    double half_length, half_width, hit_distance;
    if (!PyArg_ParseTuple(args, "OddOOd:summarize", &transform_object, &half_length, &half_width, &points_object,
                          &thresholds_object, &hit_distance)) {
        return NULL;
    }
    Py_buffer transform_view, points_view, thresholds_view;
    if (get_float64_buffer(transform_object, &transform_view, 2, "transform") != 0) {
        return NULL;
    }
    if (get_float64_buffer(points_object, &points_view, 2, "points") != 0) {
        PyBuffer_Release(&transform_view);
        return NULL;
    }
    if (get_float64_buffer(thresholds_object, &thresholds_view, 1, "thresholds") != 0) {
        PyBuffer_Release(&transform_view);
        PyBuffer_Release(&points_view);
        return NULL;
    }

    PyObject *result = NULL;
    const Py_ssize_t rows = transform_view.shape[0];
    const Py_ssize_t count = points_view.shape[0];
    if (transform_view.shape[1] != 3 || rows % 2 != 0 || points_view.shape[1] != 3 ||
        thresholds_view.shape[0] != count) {
        PyErr_Format(PyExc_ValueError,
                     "shapes do not fit: transform (%zd, %zd) needs an even row count and 3 columns, points "
                     "(%zd, %zd) need 3 columns, thresholds (%zd,) need one value per point",
                     rows, transform_view.shape[1], count, points_view.shape[1], thresholds_view.shape[0]);
        goto done;
    }

    const double *transform = (const double *)transform_view.buf;
    const double *points = (const double *)points_view.buf;
    const double *thresholds = (const double *)thresholds_view.buf;
    const Py_ssize_t poses = rows / 2;
    const double hit_squared = hit_distance * hit_distance;

    /* Six arrays of one value per point: x, y and w, then over the poses the smallest
     * outside distance squared, the smallest max(gap_x, gap_y) (the inside depth) and the
     * first pose within hit_distance. The pose index is kept as a double, so the pose
     * loop has only float64 lanes and the compiler can vectorise it. */
    double *scratch = PyMem_Malloc((size_t)(count > 0 ? count : 1) * 6 * sizeof(double));
    if (scratch == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *xs = scratch, *ys = scratch + count, *ws = scratch + 2 * count;
    double *smallest = scratch + 3 * count, *deepest = scratch + 4 * count, *hit = scratch + 5 * count;
    for (Py_ssize_t j = 0; j < count; j++) {
        xs[j] = points[3 * j];
        ys[j] = points[3 * j + 1];
        ws[j] = points[3 * j + 2];
        smallest[j] = INFINITY;
        deepest[j] = INFINITY;
        hit[j] = INFINITY;
    }
    for (Py_ssize_t i = 0; i < poses; i++) {
        sweep_pose(count, transform + 3 * i, transform + 3 * (poses + i), half_length, half_width, hit_squared,
                   (double)i, xs, ys, ws, smallest, deepest, hit);
    }

    Py_ssize_t first_approached = -1;
    Py_ssize_t first_hit = -1;
    double path_min = INFINITY;
    double first_hit_pose = INFINITY;
    for (Py_ssize_t j = 0; j < count; j++) {
        /* Zero outside distance means on or inside the footprint at some pose. The
         * clearance is then the depth at its deepest, which is zero or negative. */
        double moving_min = sqrt(smallest[j]);
        if (smallest[j] == 0.0) {
            moving_min = deepest[j] < 0.0 ? deepest[j] : 0.0;
        }
        if (!(moving_min < thresholds[j])) {
            continue;
        }
        if (first_approached < 0) {
            first_approached = j;
        }
        if (moving_min < path_min) {
            path_min = moving_min;
        }
        if (hit[j] < first_hit_pose) {
            first_hit_pose = hit[j];
        }
    }
    PyMem_Free(scratch);
    /* The hit pose is defined only where an approached point comes within hit_distance. */
    if (path_min <= hit_distance && first_hit_pose < INFINITY) {
        first_hit = (Py_ssize_t)first_hit_pose;
    }
    result = Py_BuildValue("(ndn)", first_approached, path_min, first_hit);

done:
    PyBuffer_Release(&transform_view);
    PyBuffer_Release(&points_view);
    PyBuffer_Release(&thresholds_view);
    return result;
}

static PyMethodDef methods[] = {
    {"summarize", summarize, METH_VARARGS, summarize_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    "nc_safety.core._clearance",
    "Compiled clearance of laser points along a sampled footprint path.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__clearance(void)
{
    PyObject *module = PyModule_Create(&module_definition);
    if (module != NULL && PyModule_AddIntConstant(module, "ABI_VERSION", ABI_VERSION) != 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
