# Included right after the project() call of tensorflow/lite/c/CMakeLists.txt
# (CMAKE_PROJECT_tensorflow-lite-c_INCLUDE, recipes/tflite.toml): tflite-edge's additions to
# TFLite's own build, one file each.
include("${CMAKE_CURRENT_LIST_DIR}/shim/shim.cmake")   # the exception-safe shim library
include("${CMAKE_CURRENT_LIST_DIR}/unity.cmake")       # build time: a unity build of the kernels
include("${CMAKE_CURRENT_LIST_DIR}/size.cmake")        # wheel size: TFLite's own code at -Os
include("${CMAKE_CURRENT_LIST_DIR}/exports.cmake")      # Windows, macOS: export the C API only
include("${CMAKE_CURRENT_LIST_DIR}/xnnpack.cmake")     # XNNPACK's kernels: no SLP vectorizer on x86
