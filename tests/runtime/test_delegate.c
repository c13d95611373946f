/* A minimal TFLite external delegate for tflite-edge's tests.
 *
 * It speaks the external-delegate ABI of
 * tensorflow/lite/delegates/external/external_delegate_interface.h
 * (tflite_plugin_create_delegate / tflite_plugin_destroy_delegate) and returns a
 * TfLiteDelegate (tensorflow/lite/core/c/common.h, TFLite 2.14) whose Prepare claims no
 * nodes, so the model runs on the CPU kernels as before.
 *
 * Options: "fail_create" makes creation fail through report_error; "fail_prepare" makes
 * Prepare return kTfLiteError. Counters and the options seen are exported for the tests.
 * Build: cc -shared -fPIC -O2 -o libtflite_edge_test_delegate.so test_delegate.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef int TfLiteBufferHandle;
struct TfLiteContext;
struct TfLiteTensor;

/* Layout of TfLiteDelegate in tensorflow/lite/core/c/common.h (2.14). */
typedef struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(struct TfLiteContext* context, struct TfLiteDelegate* delegate);
  TfLiteStatus (*CopyFromBufferHandle)(struct TfLiteContext* context,
                                       struct TfLiteDelegate* delegate,
                                       TfLiteBufferHandle buffer_handle,
                                       struct TfLiteTensor* tensor);
  TfLiteStatus (*CopyToBufferHandle)(struct TfLiteContext* context,
                                     struct TfLiteDelegate* delegate,
                                     TfLiteBufferHandle buffer_handle,
                                     struct TfLiteTensor* tensor);
  void (*FreeBufferHandle)(struct TfLiteContext* context, struct TfLiteDelegate* delegate,
                           TfLiteBufferHandle* handle);
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;

#define EXPORT __attribute__((visibility("default")))

typedef struct {
  int fail_prepare;
} DelegateData;

static int g_created, g_destroyed, g_prepared;
static char g_options[1024];

static TfLiteStatus Prepare(struct TfLiteContext* context, TfLiteDelegate* delegate) {
  (void)context;
  g_prepared++;
  return ((DelegateData*)delegate->data_)->fail_prepare ? kTfLiteError : kTfLiteOk;
}

EXPORT TfLiteDelegate* tflite_plugin_create_delegate(const char* const* keys,
                                                     const char* const* values,
                                                     size_t num_options,
                                                     void (*report_error)(const char*)) {
  DelegateData* data = calloc(1, sizeof(DelegateData));
  TfLiteDelegate* delegate = calloc(1, sizeof(TfLiteDelegate));
  g_options[0] = '\0';
  for (size_t i = 0; i < num_options; i++) {
    if (strcmp(keys[i], "fail_create") == 0) {
      if (report_error) report_error("test delegate: creation failed as asked (fail_create)");
      free(data);
      free(delegate);
      return NULL;
    }
    if (strcmp(keys[i], "fail_prepare") == 0) data->fail_prepare = 1;
    strncat(g_options, keys[i], sizeof(g_options) - strlen(g_options) - 1);
    strncat(g_options, "=", sizeof(g_options) - strlen(g_options) - 1);
    strncat(g_options, values[i], sizeof(g_options) - strlen(g_options) - 1);
    strncat(g_options, ";", sizeof(g_options) - strlen(g_options) - 1);
  }
  delegate->data_ = data;
  delegate->Prepare = Prepare;
  delegate->flags = 0; /* kTfLiteDelegateFlagsNone */
  g_created++;
  return delegate;
}

EXPORT void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) {
  if (!delegate) return;
  free(delegate->data_);
  free(delegate);
  g_destroyed++;
}

EXPORT int test_delegate_created(void) { return g_created; }
EXPORT int test_delegate_destroyed(void) { return g_destroyed; }
EXPORT int test_delegate_prepared(void) { return g_prepared; }
EXPORT const char* test_delegate_options(void) { return g_options; }
