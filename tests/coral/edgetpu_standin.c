/*
 * A small, real shared library with libedgetpu's exported C surface, for tests on machines
 * that have no Edge TPU (and cannot download Google's runtime release).
 *
 * It implements the two ABIs tflite-edge-coral uses:
 *   - TFLite's external-delegate plugin ABI (external_delegate_interface.h):
 *       tflite_plugin_create_delegate / tflite_plugin_destroy_delegate
 *   - libedgetpu's C API (tflite/public/edgetpu_c.h):
 *       edgetpu_list_devices / edgetpu_free_devices / edgetpu_create_delegate /
 *       edgetpu_free_delegate / edgetpu_verbosity / edgetpu_version
 *
 * Like the real library on a machine with nothing attached, it enumerates zero devices and
 * creating a delegate fails. For tests of device selection, EDGEFORGE_TEST_EDGETPU_DEVICES may
 * list fake devices ("usb:/sys/bus/usb/devices/2-1,pci:/dev/apex_0"); opening one still fails
 * (nothing is there), reported through the error callback like a failed open.
 *
 * Built by tests/coral with `python -m ziglang cc -shared -target <zig target>` for each
 * architecture; the test zips it into an archive with upstream's release layout.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef struct TfLiteDelegate TfLiteDelegate;

enum edgetpu_device_type {
  EDGETPU_APEX_PCI = 0,
  EDGETPU_APEX_USB = 1,
};

struct edgetpu_device {
  enum edgetpu_device_type type;
  const char* path;
};

struct edgetpu_option {
  const char* name;
  const char* value;
};

#ifndef STANDIN_VARIANT
#define STANDIN_VARIANT "throttled"
#endif

static int g_verbosity = 0;

/* Fake devices from the environment: "usb:PATH,pci:PATH". Zero when unset. */
static size_t parse_devices(struct edgetpu_device** out) {
  const char* spec = getenv("EDGEFORGE_TEST_EDGETPU_DEVICES");
  *out = NULL;
  if (spec == NULL || *spec == '\0') return 0;
  size_t count = 1;
  for (const char* p = spec; *p; ++p) count += (*p == ',');
  /* One block: the array, then the path strings (freed with one free()). */
  size_t bytes = count * sizeof(struct edgetpu_device) + strlen(spec) + 1;
  char* memory = malloc(bytes);
  if (memory == NULL) return 0;
  struct edgetpu_device* devs = (struct edgetpu_device*)memory;
  char* strings = memory + count * sizeof(struct edgetpu_device);
  strcpy(strings, spec);
  size_t n = 0;
  char* save = NULL;
  for (char* item = strtok_r(strings, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    if (strncmp(item, "usb:", 4) == 0) {
      devs[n].type = EDGETPU_APEX_USB;
      devs[n].path = item + 4;
    } else if (strncmp(item, "pci:", 4) == 0) {
      devs[n].type = EDGETPU_APEX_PCI;
      devs[n].path = item + 4;
    } else {
      continue;
    }
    ++n;
  }
  if (n == 0) {
    free(memory);
    return 0;
  }
  *out = devs;
  return n;
}

EXPORT struct edgetpu_device* edgetpu_list_devices(size_t* num_devices) {
  struct edgetpu_device* devs = NULL;
  size_t n = parse_devices(&devs);
  if (num_devices != NULL) *num_devices = n;
  return devs;
}

EXPORT void edgetpu_free_devices(struct edgetpu_device* dev) { free(dev); }

EXPORT TfLiteDelegate* edgetpu_create_delegate(enum edgetpu_device_type type, const char* name,
                                               const struct edgetpu_option* options,
                                               size_t num_options) {
  (void)type;
  (void)name;
  (void)options;
  (void)num_options;
  return NULL; /* no Edge TPU can be opened here */
}

EXPORT void edgetpu_free_delegate(TfLiteDelegate* delegate) { (void)delegate; }

EXPORT void edgetpu_verbosity(int verbosity) { g_verbosity = verbosity; }

EXPORT const char* edgetpu_version(void) {
  return "BuildLabel(edgeforge test stand-in, " STANDIN_VARIANT "), RuntimeVersion(14)";
}

EXPORT TfLiteDelegate* tflite_plugin_create_delegate(char** options_keys, char** options_values,
                                                     size_t num_options,
                                                     void (*report_error)(const char*)) {
  const char* device = "";
  for (size_t i = 0; i < num_options; ++i) {
    if (options_keys[i] != NULL && strcmp(options_keys[i], "device") == 0 &&
        options_values[i] != NULL) {
      device = options_values[i];
    }
  }
  if (report_error != NULL) {
    char message[256];
    snprintf(message, sizeof message, "Failed to open device '%s': no Edge TPU is attached",
             device);
    report_error(message);
  }
  return NULL;
}

EXPORT void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) { (void)delegate; }
