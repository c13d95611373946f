"""A C application that uses tflite-edge-c through CMakeDeps and CMakeToolchain: it loads a
.tflite model, runs it once on a fixed input and prints its outputs as JSON. ``conan create``
runs it as the recipe's test_package; ``conan install`` + ``conan build`` build it alone."""

import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, cmake_layout


class TfliteEdgeCExample(ConanFile):
    name = "tflite-edge-c-example"
    version = "1.0"
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain"

    def requirements(self):
        self.requires(self.tested_reference_str or "tflite-edge-c/2.14.1")

    def configure(self):
        self.settings.rm_safe("compiler.libcxx")  # C only
        self.settings.rm_safe("compiler.cppstd")

    def layout(self):
        cmake_layout(self)

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            self.run(os.path.join(self.cpp.build.bindir, "tflite_edge_version"), env="conanrun")
