/* run_model MODEL.tflite: load a float model, fill every input with a fixed pattern, run it
 * once through XNNPACK on one thread and print ONE JSON object: each output tensor's name,
 * shape and values. */
#include <stdio.h>
#include <stdlib.h>

#include "tensorflow/lite/c/c_api.h"
#include "tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h"

static void print_string(const char* s) {
  putchar('"');
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar(*s);
  }
  putchar('"');
}

static int fail(const char* what) {
  fprintf(stderr, "run_model: %s failed\n", what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.tflite\n", argv[0]);
    return 2;
  }
  TfLiteModel* model = TfLiteModelCreateFromFile(argv[1]);
  if (!model) return fail("TfLiteModelCreateFromFile");
  TfLiteXNNPackDelegateOptions xo = TfLiteXNNPackDelegateOptionsDefault();
  xo.num_threads = 1;
  TfLiteDelegate* xnnpack = TfLiteXNNPackDelegateCreate(&xo);
  if (!xnnpack) return fail("TfLiteXNNPackDelegateCreate");
  TfLiteInterpreterOptions* options = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetNumThreads(options, 1);
  TfLiteInterpreterOptionsAddDelegate(options, xnnpack);
  TfLiteInterpreter* interpreter = TfLiteInterpreterCreate(model, options);
  if (!interpreter) return fail("TfLiteInterpreterCreate");
  if (TfLiteInterpreterAllocateTensors(interpreter) != kTfLiteOk) return fail("AllocateTensors");
  for (int t = 0; t < TfLiteInterpreterGetInputTensorCount(interpreter); ++t) {
    TfLiteTensor* in = TfLiteInterpreterGetInputTensor(interpreter, t);
    if (TfLiteTensorType(in) != kTfLiteFloat32) return fail("a float32 input");
    float* data = (float*)TfLiteTensorData(in);
    size_t n = TfLiteTensorByteSize(in) / sizeof(float);
    for (size_t i = 0; i < n; ++i) data[i] = (float)((double)(i * 37 % 255) / 127.5 - 1.0);
  }
  if (TfLiteInterpreterInvoke(interpreter) != kTfLiteOk) return fail("Invoke");

  printf("{\"version\": ");
  print_string(TfLiteVersion());
  printf(", \"outputs\": {");
  for (int t = 0; t < TfLiteInterpreterGetOutputTensorCount(interpreter); ++t) {
    const TfLiteTensor* out = TfLiteInterpreterGetOutputTensor(interpreter, t);
    if (TfLiteTensorType(out) != kTfLiteFloat32) return fail("a float32 output");
    const float* data = (const float*)TfLiteTensorData(out);
    size_t n = TfLiteTensorByteSize(out) / sizeof(float);
    printf("%s", t ? ", " : "");
    print_string(TfLiteTensorName(out));
    printf(": {\"shape\": [");
    for (int d = 0; d < TfLiteTensorNumDims(out); ++d)
      printf("%s%d", d ? ", " : "", TfLiteTensorDim(out, d));
    printf("], \"values\": [");
    for (size_t i = 0; i < n; ++i) printf("%s%.9g", i ? ", " : "", (double)data[i]);
    printf("]}");
  }
  printf("}}\n");
  TfLiteInterpreterDelete(interpreter);
  TfLiteInterpreterOptionsDelete(options);
  TfLiteXNNPackDelegateDelete(xnnpack);
  TfLiteModelDelete(model);
  return 0;
}
