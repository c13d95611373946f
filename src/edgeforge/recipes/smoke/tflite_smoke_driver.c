/* tflite_smoke.py's checks in C, for targets without a Debian Python (musl): run the same
 * real model with the same input pattern, once through XNNPACK and once on TFLite's own
 * kernels, and print ONE JSON object with the same keys, for edgeforge to compare with what
 * the host's Python printed. The model comes from $EDGEFORGE_SOURCE_MEDIAPIPE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/utsname.h>
#endif

#include "tensorflow/lite/c/c_api.h"
#include "tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h"

#define MODEL "face_detection_short_range.tflite"
#define HEAD 8

static void print_string(const char* s) {
  putchar('"');
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar(*s);
  }
  putchar('"');
}

static int fail(const char* what) {
  fprintf(stderr, "tflite_smoke_driver: %s failed\n", what);
  return 0;
}

/* Prints `"<name>": {outputs}` for one run; returns 0 on failure (after saying why). */
static int run(const char* key, const char* path, int xnnpack) {
  TfLiteModel* model = TfLiteModelCreateFromFile(path);
  if (!model) return fail("TfLiteModelCreateFromFile");
  TfLiteInterpreterOptions* options = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetNumThreads(options, 1);
  TfLiteDelegate* delegate = NULL;
  if (xnnpack) {
    TfLiteXNNPackDelegateOptions xo = TfLiteXNNPackDelegateOptionsDefault();
    xo.num_threads = 1;
    delegate = TfLiteXNNPackDelegateCreate(&xo);
    if (!delegate) return fail("TfLiteXNNPackDelegateCreate");
    TfLiteInterpreterOptionsAddDelegate(options, delegate);
  }
  TfLiteInterpreter* interpreter = TfLiteInterpreterCreate(model, options);
  if (!interpreter) return fail("TfLiteInterpreterCreate");
  if (TfLiteInterpreterAllocateTensors(interpreter) != kTfLiteOk) return fail("AllocateTensors");
  for (int t = 0; t < TfLiteInterpreterGetInputTensorCount(interpreter); ++t) {
    TfLiteTensor* in = TfLiteInterpreterGetInputTensor(interpreter, t);
    if (TfLiteTensorType(in) != kTfLiteFloat32) return fail("a float32 input");
    size_t n = TfLiteTensorByteSize(in) / sizeof(float);
    float* data = (float*)TfLiteTensorData(in);
    for (size_t i = 0; i < n; ++i) data[i] = (float)((double)(i * 37 % 255) / 127.5 - 1.0);
  }
  if (TfLiteInterpreterInvoke(interpreter) != kTfLiteOk) return fail("Invoke");

  printf("\"%s\": {", key);
  for (int t = 0; t < TfLiteInterpreterGetOutputTensorCount(interpreter); ++t) {
    const TfLiteTensor* out = TfLiteInterpreterGetOutputTensor(interpreter, t);
    if (TfLiteTensorType(out) != kTfLiteFloat32) return fail("a float32 output");
    const float* data = (const float*)TfLiteTensorData(out);
    size_t n = TfLiteTensorByteSize(out) / sizeof(float);
    double sum = 0.0, max = n ? data[0] : 0.0;
    for (size_t i = 0; i < n; ++i) {
      sum += data[i];
      if (data[i] > max) max = data[i];
    }
    printf("%s", t ? ", " : "");
    print_string(TfLiteTensorName(out));
    printf(": {\"shape\": [");
    for (int d = 0; d < TfLiteTensorNumDims(out); ++d)
      printf("%s%d", d ? ", " : "", TfLiteTensorDim(out, d));
    printf("], \"head\": [");
    for (size_t i = 0; i < n && i < HEAD; ++i) printf("%s%.9g", i ? ", " : "", (double)data[i]);
    printf("], \"sum\": %.17g, \"max\": %.9g}", sum, max);
  }
  printf("}");
  TfLiteInterpreterDelete(interpreter);
  if (delegate) TfLiteXNNPackDelegateDelete(delegate);
  TfLiteInterpreterOptionsDelete(options);
  TfLiteModelDelete(model);
  return 1;
}

int main(void) {
  const char* dir = getenv("EDGEFORGE_SOURCE_MEDIAPIPE");
  char path[4096];
#ifdef _WIN32
  const char* machine = "windows"; /* no uname(); the key is not compared */
#else
  struct utsname uts;
#endif
  if (!dir) {
    fprintf(stderr, "tflite_smoke_driver: EDGEFORGE_SOURCE_MEDIAPIPE is not set\n");
    return 2;
  }
  snprintf(path, sizeof path, "%s/%s", dir, MODEL);
#ifndef _WIN32
  uname(&uts);
  const char* machine = uts.machine;
#endif
  printf("{\"library\": \"libtensorflowlite_c.so\", \"machine\": ");
  print_string(machine);
  printf(", ");
  if (!run("xnnpack", path, 1)) return 1;
  printf(", ");
  if (!run("reference_kernels", path, 0)) return 1;
  printf("}\n");
  return 0;
}
