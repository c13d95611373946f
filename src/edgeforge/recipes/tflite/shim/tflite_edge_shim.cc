// tflite-edge's exception-safe shim over TensorFlow Lite's C API: see tflite_edge_shim.h.
//
// The C++ runtime is linked statically into libtensorflowlite_c and hidden by its version
// script, and into this library again: two copies. An exception thrown in TFLite unwinds
// through the C API into the catch (...) here (both copies speak the Itanium ABI and its
// unwinder), but a typed catch would compare type_info objects of different copies, which
// libc++ does by address. So the thrown type is classified by name through the Itanium
// ABI's type_info layout, and what() is called through the object's own vtable.

#include "tflite_edge_shim.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <typeinfo>

#include <cxxabi.h>

namespace {

using Reporter = tflite_edge_shim_reporter;

struct Api {
  void* (*model_create)(const void*, size_t, Reporter, void*) = nullptr;
  void* (*interpreter_create)(const void*, const void*) = nullptr;
  int (*allocate_tensors)(void*) = nullptr;
  int (*invoke)(void*) = nullptr;
  int (*resize_input_tensor)(void*, int32_t, const int*, int32_t) = nullptr;
  int (*modify_graph_with_delegate)(void*, void*) = nullptr;
  int (*reset_variable_tensors)(void*) = nullptr;
  void* (*xnnpack_delegate_create)(const void*) = nullptr;
  void* (*get_signature_runner)(const void*, const char*) = nullptr;
  int (*runner_resize_input_tensor)(void*, const char*, const int*, int32_t) = nullptr;
  int (*runner_allocate_tensors)(void*) = nullptr;
  int (*runner_invoke)(void*) = nullptr;
  int (*tensor_type)(const void*) = nullptr;
  int32_t (*tensor_num_dims)(const void*) = nullptr;
  int32_t (*tensor_dim)(const void*, int32_t) = nullptr;
  size_t (*tensor_byte_size)(const void*) = nullptr;
  void* (*tensor_data)(const void*) = nullptr;
};

Api api;

template <typename F>
void assign(F& slot, void* function) {
  slot = reinterpret_cast<F>(function);
}

thread_local char message[1024];

// --- what was thrown (Itanium C++ ABI, section 2.9.5) ----------------------------------

struct SiClassTypeInfo {  // abi::__si_class_type_info
  const void* vtable;
  const char* name;
  const std::type_info* base;
};

struct BaseClassInfo {  // abi::__base_class_type_info
  const std::type_info* base;
  long offset_flags;  // offset << 8 | flags (1: virtual, 2: public)
};

struct VmiClassTypeInfo {  // abi::__vmi_class_type_info
  const void* vtable;
  const char* name;
  unsigned int flags;
  unsigned int base_count;
  BaseClassInfo base_info[1];
};

const char* type_name(const std::type_info* t) {
  const char* name = t->name();
  return name[0] == '*' ? name + 1 : name;  // libstdc++ marks local names with '*'
}

// The offset of base class `name` inside an object of type `t`, or -1 when `t` does not
// derive from it through public non-virtual inheritance.
long base_offset(const std::type_info* t, const char* name, int depth = 0) {
  if (t == nullptr || depth > 64) return -1;
  if (std::strcmp(type_name(t), name) == 0) return 0;
  const char* kind = typeid(*t).name();  // the type_info object's own class, by name
  if (std::strcmp(kind, "N10__cxxabiv120__si_class_type_infoE") == 0) {
    return base_offset(reinterpret_cast<const SiClassTypeInfo*>(t)->base, name, depth + 1);
  }
  if (std::strcmp(kind, "N10__cxxabiv121__vmi_class_type_infoE") == 0) {
    const auto* vmi = reinterpret_cast<const VmiClassTypeInfo*>(t);
    for (unsigned int i = 0; i < vmi->base_count; ++i) {
      const BaseClassInfo& b = vmi->base_info[i];
      if ((b.offset_flags & 1) || !(b.offset_flags & 2)) continue;
      long inner = base_offset(b.base, name, depth + 1);
      if (inner >= 0) return (b.offset_flags >> 8) + inner;
    }
  }
  return -1;
}

struct Classified {
  int kind;
  const char* label;
};

Classified classify(const std::type_info* t) {
  struct Rule {
    const char* mangled;
    Classified what;
  };
  static const Rule rules[] = {
      {"St9bad_alloc", {TFLITE_EDGE_SHIM_MEMORY_ERROR, "std::bad_alloc"}},
      {"St12domain_error", {TFLITE_EDGE_SHIM_VALUE_ERROR, "std::domain_error"}},
      {"St16invalid_argument", {TFLITE_EDGE_SHIM_VALUE_ERROR, "std::invalid_argument"}},
      {"St12length_error", {TFLITE_EDGE_SHIM_VALUE_ERROR, "std::length_error"}},
      {"St12out_of_range", {TFLITE_EDGE_SHIM_INDEX_ERROR, "std::out_of_range"}},
      {"St11range_error", {TFLITE_EDGE_SHIM_VALUE_ERROR, "std::range_error"}},
      {"St14overflow_error", {TFLITE_EDGE_SHIM_OVERFLOW_ERROR, "std::overflow_error"}},
  };
  for (const Rule& rule : rules) {
    if (base_offset(t, rule.mangled) >= 0) return rule.what;
  }
  return {TFLITE_EDGE_SHIM_RUNTIME_ERROR, nullptr};
}

// In a catch (...): record what is in flight, return the result code.
int caught() noexcept {
  const std::type_info* t = abi::__cxa_current_exception_type();
  if (t == nullptr) {
    std::snprintf(message, sizeof message, "unknown C++ exception");
    return TFLITE_EDGE_SHIM_EXCEPTION + TFLITE_EDGE_SHIM_RUNTIME_ERROR;
  }
  Classified c = classify(t);
  long offset = base_offset(t, "St9exception");
  const char* what = nullptr;
  if (offset >= 0) {
    // Both C++ runtimes keep the thrown object's address as an exception_ptr's only member.
    std::exception_ptr current = std::current_exception();
    void* object = nullptr;
    static_assert(sizeof current == sizeof object, "exception_ptr is one pointer");
    std::memcpy(&object, &current, sizeof object);
    if (object != nullptr) {
      what = static_cast<const std::exception*>(
                 static_cast<const void*>(static_cast<char*>(object) + offset))
                 ->what();
    }
  }
  if (what != nullptr) {
    std::snprintf(message, sizeof message, "%s", what);
  } else if (c.label != nullptr) {
    std::snprintf(message, sizeof message, "%s", c.label);
  } else {  // the mangled name: __cxa_demangle would double the library's size
    std::snprintf(message, sizeof message, "C++ exception of type %s", type_name(t));
  }
  return TFLITE_EDGE_SHIM_EXCEPTION + c.kind;
}

int missing(const char* name) noexcept {
  std::snprintf(message, sizeof message,
                "%s was not handed to tflite-edge's shim (tflite_edge_shim_set_function)", name);
  return TFLITE_EDGE_SHIM_EXCEPTION + TFLITE_EDGE_SHIM_MISSING;
}

// One C API call that returns a status.
template <typename F, typename... Args>
int status_call(F fn, const char* name, Args... args) noexcept {
  if (fn == nullptr) return missing(name);
  try {
    return fn(args...);
  } catch (...) {
    return caught();
  }
}

// One C API call that returns an object (nullptr: TFLite's own failure, status 1).
template <typename F, typename... Args>
int object_call(F fn, const char* name, void** out, Args... args) noexcept {
  *out = nullptr;
  if (fn == nullptr) return missing(name);
  try {
    *out = fn(args...);
    return *out != nullptr ? 0 : 1;
  } catch (...) {
    return caught();
  }
}

bool matches(const tflite_edge_shim_binding& b) {
  const void* t = b.tensor;
  if (api.tensor_data(t) != b.data || api.tensor_byte_size(t) != b.bytes ||
      api.tensor_type(t) != b.type || api.tensor_num_dims(t) != b.ndims) {
    return false;
  }
  for (int32_t i = 0; i < b.ndims; ++i) {
    if (api.tensor_dim(t, i) != b.dims[i]) return false;
  }
  return true;
}

}  // namespace

extern "C" {

int tflite_edge_shim_abi_version(void) { return TFLITE_EDGE_SHIM_ABI_VERSION; }

int tflite_edge_shim_set_function(const char* name, void* function) {
  struct Slot {
    const char* name;
    void (*set)(void*);
  };
  static const Slot slots[] = {
      {"TfLiteModelCreateWithErrorReporter", [](void* f) { assign(api.model_create, f); }},
      {"TfLiteInterpreterCreate", [](void* f) { assign(api.interpreter_create, f); }},
      {"TfLiteInterpreterAllocateTensors", [](void* f) { assign(api.allocate_tensors, f); }},
      {"TfLiteInterpreterInvoke", [](void* f) { assign(api.invoke, f); }},
      {"TfLiteInterpreterResizeInputTensor",
       [](void* f) { assign(api.resize_input_tensor, f); }},
      {"TfLiteInterpreterModifyGraphWithDelegate",
       [](void* f) { assign(api.modify_graph_with_delegate, f); }},
      {"TfLiteInterpreterResetVariableTensors",
       [](void* f) { assign(api.reset_variable_tensors, f); }},
      {"TfLiteXNNPackDelegateCreate", [](void* f) { assign(api.xnnpack_delegate_create, f); }},
      {"TfLiteInterpreterGetSignatureRunner",
       [](void* f) { assign(api.get_signature_runner, f); }},
      {"TfLiteSignatureRunnerResizeInputTensor",
       [](void* f) { assign(api.runner_resize_input_tensor, f); }},
      {"TfLiteSignatureRunnerAllocateTensors",
       [](void* f) { assign(api.runner_allocate_tensors, f); }},
      {"TfLiteSignatureRunnerInvoke", [](void* f) { assign(api.runner_invoke, f); }},
      {"TfLiteTensorType", [](void* f) { assign(api.tensor_type, f); }},
      {"TfLiteTensorNumDims", [](void* f) { assign(api.tensor_num_dims, f); }},
      {"TfLiteTensorDim", [](void* f) { assign(api.tensor_dim, f); }},
      {"TfLiteTensorByteSize", [](void* f) { assign(api.tensor_byte_size, f); }},
      {"TfLiteTensorData", [](void* f) { assign(api.tensor_data, f); }},
  };
  if (name == nullptr) return -1;
  for (const Slot& slot : slots) {
    if (std::strcmp(slot.name, name) == 0) {
      slot.set(function);
      return 0;
    }
  }
  return -1;
}

const char* tflite_edge_shim_message(void) { return message; }

int tflite_edge_shim_model_create(const void* data, size_t size, Reporter reporter,
                                  void* user_data, void** model) {
  return object_call(api.model_create, "TfLiteModelCreateWithErrorReporter", model, data,
                     size, reporter, user_data);
}

int tflite_edge_shim_interpreter_create(const void* model, const void* options,
                                        void** interpreter) {
  return object_call(api.interpreter_create, "TfLiteInterpreterCreate", interpreter, model,
                     options);
}

int tflite_edge_shim_allocate_tensors(void* interpreter) {
  return status_call(api.allocate_tensors, "TfLiteInterpreterAllocateTensors", interpreter);
}

int tflite_edge_shim_invoke(void* interpreter) {
  return status_call(api.invoke, "TfLiteInterpreterInvoke", interpreter);
}

int tflite_edge_shim_resize_input_tensor(void* interpreter, int32_t input_index,
                                         const int* dims, int32_t dims_size) {
  return status_call(api.resize_input_tensor, "TfLiteInterpreterResizeInputTensor",
                     interpreter, input_index, dims, dims_size);
}

int tflite_edge_shim_modify_graph_with_delegate(void* interpreter, void* delegate) {
  return status_call(api.modify_graph_with_delegate,
                     "TfLiteInterpreterModifyGraphWithDelegate", interpreter, delegate);
}

int tflite_edge_shim_reset_variable_tensors(void* interpreter) {
  return status_call(api.reset_variable_tensors, "TfLiteInterpreterResetVariableTensors",
                     interpreter);
}

int tflite_edge_shim_xnnpack_delegate_create(const void* options, void** delegate) {
  return object_call(api.xnnpack_delegate_create, "TfLiteXNNPackDelegateCreate", delegate,
                     options);
}

int tflite_edge_shim_get_signature_runner(const void* interpreter, const char* key,
                                          void** runner) {
  return object_call(api.get_signature_runner, "TfLiteInterpreterGetSignatureRunner", runner,
                     interpreter, key);
}

int tflite_edge_shim_signature_runner_resize_input_tensor(void* runner, const char* name,
                                                          const int* dims, int32_t dims_size) {
  return status_call(api.runner_resize_input_tensor, "TfLiteSignatureRunnerResizeInputTensor",
                     runner, name, dims, dims_size);
}

int tflite_edge_shim_signature_runner_allocate_tensors(void* runner) {
  return status_call(api.runner_allocate_tensors, "TfLiteSignatureRunnerAllocateTensors",
                     runner);
}

int tflite_edge_shim_signature_runner_invoke(void* runner) {
  return status_call(api.runner_invoke, "TfLiteSignatureRunnerInvoke", runner);
}

int tflite_edge_shim_bind(const void* tensor, tflite_edge_shim_binding* out) {
  if (api.tensor_data == nullptr || api.tensor_byte_size == nullptr ||
      api.tensor_type == nullptr || api.tensor_num_dims == nullptr || api.tensor_dim == nullptr) {
    return 1;
  }
  std::memset(out, 0, sizeof *out);
  int32_t ndims = api.tensor_num_dims(tensor);
  void* data = api.tensor_data(tensor);
  if (ndims < 0 || ndims > TFLITE_EDGE_SHIM_MAX_DIMS || data == nullptr) return 1;
  out->tensor = tensor;
  out->data = data;
  out->bytes = api.tensor_byte_size(tensor);
  out->type = api.tensor_type(tensor);
  out->ndims = ndims;
  for (int32_t i = 0; i < ndims; ++i) out->dims[i] = api.tensor_dim(tensor, i);
  return 0;
}

int tflite_edge_shim_run(const tflite_edge_shim_session* session) {
  int result = status_call(api.invoke, "TfLiteInterpreterInvoke", session->interpreter);
  if (api.tensor_data != nullptr) {
    for (int32_t i = 0; i < session->count; ++i) {
      if (!matches(session->bindings[i])) return result | TFLITE_EDGE_SHIM_STALE;
    }
  }
  return result;
}

}  // extern "C"
