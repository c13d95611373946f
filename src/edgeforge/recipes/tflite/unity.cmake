# Unity build of TFLite's own library target (tensorflow-lite: the kernels, core, delegates):
# its ~220 sources are compiled as ~25 translation units of up to 16 files each, so the heavy
# headers every kernel includes (Eigen, optimized_ops.h, the flatbuffers schema) are parsed
# ~25 times instead of ~220. Measured in docs/benchmarks.md (build time, outputs, latency).
#
# Runs at the end of tensorflow/lite/c's top directory (cmake_language(DEFER)), when every
# target exists. The files below cannot share a translation unit with others, found by
# compiling (each an ODR clash between files that TFLite compiles separately):
#   kernels/conv.cc, eigen_support.cc, cpu_backend_gemm_eigen.cc: `#define Eigen EigenForTFLite`
#     (eigen_spatial_convolutions.h) renames Eigen for the rest of the unit
#   hashtable_import.cc, hashtable_size.cc: kInputResourceIdTensor, ... in the same namespace
#     as hashtable_find.cc's
#   hashtable_lookup.cc, skip_gram.cc, embedding_lookup_sparse.cc: Prepare/Eval in an
#     anonymous namespace directly in tflite::ops::builtin
#   internal/opaque_tensor_ctypes.cc: GetTensorShape overloads tensor_ctypes.cc's
#   internal/optimized/neon_tensor_utils.cc: RoundDownVectors, as sse_tensor_utils.cc's
#   simple_planner.cc, simple_memory_arena_debug_dump.cc: kNodeNotAssigned as arena_planner.cc;
#     the debug dump's DumpArenaInfo replaces simple_memory_arena.cc's weak one at link time
#   core/model_builder.cc: ValidateErrorReporter, as core/interpreter_builder.cc's
#   core/tools/verifier.cc: `using flatbuffers::Offset;` in namespace tflite hides tflite::Offset
#   kernels/internal/common.cc, kernels/gru_cell.cc: using-declarations of gemmlowp's and
#     optimized_ops' functions at namespace scope
#   kernels/internal/portable_tensor_utils.cc: wrapped in tensor_utils.h's include guard, so
#     after that header its whole body would vanish (recipes/tflite.toml links with
#     --no-undefined: a definition lost that way fails the build, not the user's import)
#   tensorflowlite_c's own sources (core/c/c_api.cc, common.cc, ...): that target compiles
#     them too; inside a unity object of the archive they would be linked twice
function(_tflite_edge_unity_build)
  get_target_property(_dir tensorflow-lite SOURCE_DIR)
  set(_alone conv.cc eigen_support.cc cpu_backend_gemm_eigen.cc hashtable_import.cc
      hashtable_size.cc hashtable_lookup.cc skip_gram.cc embedding_lookup_sparse.cc
      internal/opaque_tensor_ctypes.cc internal/optimized/neon_tensor_utils.cc
      internal/common.cc gru_cell.cc internal/portable_tensor_utils.cc)
  list(TRANSFORM _alone PREPEND "${_dir}/kernels/")
  list(APPEND _alone "${_dir}/simple_planner.cc" "${_dir}/simple_memory_arena_debug_dump.cc"
       "${_dir}/core/model_builder.cc" "${_dir}/core/tools/verifier.cc")
  get_target_property(_c_api tensorflowlite_c SOURCES)
  set_source_files_properties(${_alone} ${_c_api} TARGET_DIRECTORY tensorflow-lite
                              PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
  set_target_properties(tensorflow-lite PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 16)
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _tflite_edge_unity_build)
