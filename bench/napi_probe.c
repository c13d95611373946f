/*
 * The other binding bench/bench_node.py measures: a Node-API addon over TFLite's C API, the
 * same calls tflite-edge's koffi binding makes per round (setTensor: TfLiteTensorCopyFromBuffer;
 * invoke; getTensor: TfLiteTensorByteSize + TfLiteTensorCopyToBuffer into a new Float32Array),
 * with XNNPACK applied as tflite-edge applies it. A measuring probe, not a product: float32
 * only, minimal checks. bench_node.py compiles it with the host's cc against the Node-API
 * headers koffi's npm package vendors, linked to the wheel's libtensorflowlite_c.
 */
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct TfLiteModel TfLiteModel;
typedef struct TfLiteInterpreterOptions TfLiteInterpreterOptions;
typedef struct TfLiteInterpreter TfLiteInterpreter;
typedef struct TfLiteTensor TfLiteTensor;
typedef struct TfLiteDelegate TfLiteDelegate;
typedef struct {
  int32_t num_threads;
  uint32_t flags;
  void* weights_cache;
  _Bool handle_variable_ops;
} TfLiteXNNPackDelegateOptions;

TfLiteModel* TfLiteModelCreateFromFile(const char* path);
TfLiteInterpreterOptions* TfLiteInterpreterOptionsCreate(void);
void TfLiteInterpreterOptionsSetNumThreads(TfLiteInterpreterOptions* o, int32_t n);
TfLiteInterpreter* TfLiteInterpreterCreate(const TfLiteModel* m, const TfLiteInterpreterOptions* o);
int TfLiteInterpreterAllocateTensors(TfLiteInterpreter* i);
int TfLiteInterpreterInvoke(TfLiteInterpreter* i);
TfLiteTensor* TfLiteInterpreterGetTensor(const TfLiteInterpreter* i, int index);
size_t TfLiteTensorByteSize(const TfLiteTensor* t);
int TfLiteTensorCopyFromBuffer(TfLiteTensor* t, const void* data, size_t size);
int TfLiteTensorCopyToBuffer(const TfLiteTensor* t, void* data, size_t size);
int TfLiteInterpreterModifyGraphWithDelegate(TfLiteInterpreter* i, TfLiteDelegate* d);
TfLiteXNNPackDelegateOptions TfLiteXNNPackDelegateOptionsDefault(void);
TfLiteDelegate* TfLiteXNNPackDelegateCreate(const TfLiteXNNPackDelegateOptions* o);

#define CHECK(call)                                   \
  if ((call) != napi_ok) {                            \
    napi_throw_error(env, NULL, "napi call failed");  \
    return NULL;                                      \
  }

static TfLiteInterpreter* interpreter_of(napi_env env, napi_value v) {
  void* p = NULL;
  napi_get_value_external(env, v, &p);
  return (TfLiteInterpreter*)p;
}

/* create(path, threads) -> External */
static napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  char path[4096];
  int32_t threads = 1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, NULL));
  CHECK(napi_get_value_int32(env, argv[1], &threads));
  TfLiteModel* model = TfLiteModelCreateFromFile(path);
  TfLiteInterpreterOptions* options = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetNumThreads(options, threads);
  TfLiteInterpreter* interp = model ? TfLiteInterpreterCreate(model, options) : NULL;
  if (interp == NULL) {
    napi_throw_error(env, NULL, "cannot create the interpreter");
    return NULL;
  }
  TfLiteXNNPackDelegateOptions xo = TfLiteXNNPackDelegateOptionsDefault();
  xo.num_threads = threads;
  TfLiteInterpreterModifyGraphWithDelegate(interp, TfLiteXNNPackDelegateCreate(&xo));
  if (TfLiteInterpreterAllocateTensors(interp) != 0) {
    napi_throw_error(env, NULL, "AllocateTensors failed");
    return NULL;
  }
  CHECK(napi_create_external(env, interp, NULL, NULL, &out));
  return out;
}

/* setTensor(h, index, Float32Array) */
static napi_value set_tensor(napi_env env, napi_callback_info info) {
  size_t argc = 3, length = 0;
  napi_value argv[3];
  int32_t index = 0;
  void* data = NULL;
  napi_typedarray_type type;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[1], &index));
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL));
  TfLiteTensor* t = TfLiteInterpreterGetTensor(interpreter_of(env, argv[0]), index);
  if (TfLiteTensorCopyFromBuffer(t, data, length * 4) != 0) {
    napi_throw_error(env, NULL, "TfLiteTensorCopyFromBuffer failed");
  }
  return NULL;
}

static napi_value invoke(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (TfLiteInterpreterInvoke(interpreter_of(env, argv[0])) != 0) {
    napi_throw_error(env, NULL, "Invoke failed");
  }
  return NULL;
}

/* getTensor(h, index) -> Float32Array (a copy) */
static napi_value get_tensor(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], buffer, out;
  int32_t index = 0;
  void* data = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[1], &index));
  TfLiteTensor* t = TfLiteInterpreterGetTensor(interpreter_of(env, argv[0]), index);
  size_t bytes = TfLiteTensorByteSize(t);
  CHECK(napi_create_arraybuffer(env, bytes, &data, &buffer));
  TfLiteTensorCopyToBuffer(t, data, bytes);
  CHECK(napi_create_typedarray(env, napi_float32_array, bytes / 4, buffer, 0, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"create", NULL, create, NULL, NULL, NULL, napi_default, NULL},
      {"setTensor", NULL, set_tensor, NULL, NULL, NULL, napi_default, NULL},
      {"invoke", NULL, invoke, NULL, NULL, NULL, napi_default, NULL},
      {"getTensor", NULL, get_tensor, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
