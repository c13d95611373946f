/* Prints the TensorFlow Lite version the library reports. */
#include <stdio.h>

#include "tensorflow/lite/c/c_api.h"

int main(void) {
  printf("tflite-edge-c: TensorFlow Lite %s\n", TfLiteVersion());
  return 0;
}
