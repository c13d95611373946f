/* tflite-edge's exception-safe shim over TensorFlow Lite's C API (libtflite_edge_shim.so).
 *
 * TFLite's C API is C++ inside: std::bad_alloc and other exceptions thrown by the runtime
 * (arena allocation, shape checks, flatbuffer handling) leave its extern "C" functions. A
 * caller that cannot catch them (ctypes, any C program) loses its process to
 * std::terminate. Every call here runs one C API function and catches whatever it throws.
 *
 * The shim does not link libtensorflowlite_c: the caller hands it the C API's functions by
 * name (tflite_edge_shim_set_function), taken from the library it already loaded, so it
 * can never bind to a second copy of TFLite. It is built by edgeforge's pipeline with the
 * same toolchain as libtensorflowlite_c and ships beside it in the tflite-edge-lib wheel.
 *
 * Results: a call returns the C API's TfLiteStatus (0..255), or TFLITE_EDGE_SHIM_EXCEPTION
 * + a kind when the C++ code threw; tflite_edge_shim_message() then says what was thrown
 * (per thread, until the next call that fails). TFLITE_EDGE_SHIM_STALE is or-ed in when a
 * binding no longer describes its tensor (tflite_edge_shim_run).
 */
#ifndef TFLITE_EDGE_SHIM_H_
#define TFLITE_EDGE_SHIM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The exports: on Windows the DLL exports only what is marked dllexport (shim.cmake defines
 * TFLITE_EDGE_SHIM_BUILDING), elsewhere what has default visibility (the rest is hidden). */
#if defined(_WIN32) && defined(TFLITE_EDGE_SHIM_BUILDING)
#define TFLITE_EDGE_SHIM_API __declspec(dllexport)
#elif defined(_WIN32)
#define TFLITE_EDGE_SHIM_API __declspec(dllimport)
#elif defined(__GNUC__)
#define TFLITE_EDGE_SHIM_API __attribute__((visibility("default")))
#else
#define TFLITE_EDGE_SHIM_API
#endif

#define TFLITE_EDGE_SHIM_ABI_VERSION 1

#define TFLITE_EDGE_SHIM_EXCEPTION 256
/* Kinds, as pybind11 (and so tflite_runtime) translates C++ exceptions to Python ones. */
#define TFLITE_EDGE_SHIM_RUNTIME_ERROR 1  /* std::exception, or anything else thrown */
#define TFLITE_EDGE_SHIM_MEMORY_ERROR 2   /* std::bad_alloc */
#define TFLITE_EDGE_SHIM_VALUE_ERROR 3    /* domain_error, invalid_argument, length_error, range_error */
#define TFLITE_EDGE_SHIM_INDEX_ERROR 4    /* std::out_of_range */
#define TFLITE_EDGE_SHIM_OVERFLOW_ERROR 5 /* std::overflow_error */
#define TFLITE_EDGE_SHIM_MISSING 6        /* the C API function was never handed over */
#define TFLITE_EDGE_SHIM_STALE 0x10000

#define TFLITE_EDGE_SHIM_MAX_DIMS 8

/* What one tensor looked like when it was bound: its data may be used directly while the
 * tensor still matches (type, data, byte size, dims). */
typedef struct tflite_edge_shim_binding {
  const void* tensor; /* TfLiteTensor* */
  void* data;
  size_t bytes;
  int32_t type;
  int32_t ndims;
  int32_t dims[TFLITE_EDGE_SHIM_MAX_DIMS];
} tflite_edge_shim_binding;

/* What tflite_edge_shim_run runs: an interpreter and the bindings it checks afterwards. */
typedef struct tflite_edge_shim_session {
  void* interpreter; /* TfLiteInterpreter* */
  const tflite_edge_shim_binding* bindings;
  int32_t count;
} tflite_edge_shim_session;

typedef void (*tflite_edge_shim_reporter)(void* user_data, const char* format, void* args);

#define SHIM TFLITE_EDGE_SHIM_API

SHIM int tflite_edge_shim_abi_version(void);
/* Hand over one C API function (by its C name); 0 when the shim uses it, -1 otherwise. */
SHIM int tflite_edge_shim_set_function(const char* name, void* function);
/* Why the last failing call on this thread failed (an exception's what(), or its type). */
SHIM const char* tflite_edge_shim_message(void);

/* The C API's functions of the same names; objects come back through the last argument
 * (NULL, with result 1, when TFLite itself failed). */
SHIM int tflite_edge_shim_model_create(const void* data, size_t size,
                                       tflite_edge_shim_reporter reporter, void* user_data,
                                       void** model);
SHIM int tflite_edge_shim_interpreter_create(const void* model, const void* options,
                                             void** interpreter);
SHIM int tflite_edge_shim_allocate_tensors(void* interpreter);
SHIM int tflite_edge_shim_invoke(void* interpreter);
SHIM int tflite_edge_shim_resize_input_tensor(void* interpreter, int32_t input_index,
                                              const int* dims, int32_t dims_size);
SHIM int tflite_edge_shim_modify_graph_with_delegate(void* interpreter, void* delegate);
SHIM int tflite_edge_shim_reset_variable_tensors(void* interpreter);
SHIM int tflite_edge_shim_xnnpack_delegate_create(const void* options, void** delegate);
SHIM int tflite_edge_shim_get_signature_runner(const void* interpreter, const char* key,
                                               void** runner);
SHIM int tflite_edge_shim_signature_runner_resize_input_tensor(void* runner, const char* name,
                                                               const int* dims,
                                                               int32_t dims_size);
SHIM int tflite_edge_shim_signature_runner_allocate_tensors(void* runner);
SHIM int tflite_edge_shim_signature_runner_invoke(void* runner);

/* Fast path. bind: 0 and *out filled when the tensor has data and at most
 * TFLITE_EDGE_SHIM_MAX_DIMS dims, 1 otherwise. run: TfLiteInterpreterInvoke, caught, then
 * every binding checked against its tensor (TFLITE_EDGE_SHIM_STALE or-ed in when one moved,
 * was resized or reshaped: dynamic tensors change during invoke). One argument, so the
 * per-invoke cost of a foreign-function call stays as small as it gets. */
SHIM int tflite_edge_shim_bind(const void* tensor, tflite_edge_shim_binding* out);
SHIM int tflite_edge_shim_run(const tflite_edge_shim_session* session);

#undef SHIM

#ifdef __cplusplus
}
#endif

#endif /* TFLITE_EDGE_SHIM_H_ */
