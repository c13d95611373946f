// Wheel size: libc++abi's __cxa_demangle, replaced by one that demangles nothing.
//
// zig's static libc++abi pulls in its Itanium demangler (116 KB of code on armv7l, most of
// libtflite_edge_shim.so) for one caller that matters here: the default terminate handler,
// which prints the type of an uncaught exception before abort(). Linked into a library before
// libc++abi's archive, this definition keeps the demangler's archive member out; the terminate
// message then names the type mangled (`N6tflite...E`), the same as libc++abi built with its
// own LIBCXXABI_NON_DEMANGLING_TERMINATE. Callers that check the status (absl's
// DemangleString) fall back to the mangled name. Hidden: no library exports it.
#include <cstddef>

namespace __cxxabiv1 {
extern "C" __attribute__((visibility("hidden"))) char* __cxa_demangle(
    const char* /*mangled*/, char* /*buffer*/, std::size_t* /*length*/, int* status) {
  if (status != nullptr) *status = -2;  // "not a valid name under the C++ ABI mangling rules"
  return nullptr;
}
}  // namespace __cxxabiv1
