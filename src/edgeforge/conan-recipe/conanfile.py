"""Conan 2 recipe of tflite-edge-c: edgeforge's prebuilt TensorFlow Lite C library.

edgeforge writes this file, unchanged, next to a ``conandata.yml`` that lists every target it
knows (os, arch, libc and its floor) and runs ``conan export-pkg`` once per built target with
that target's staged files in ``stage/``: ``include/``, ``lib/`` and ``licenses/``. Nothing is
compiled here. The C API does not depend on the consumer's compiler, its version or build type:
a binary's package id is its os, arch and libc with the libc's floor (glibc 2.17, musl 1.2).
"""

import os

from conan import ConanFile
from conan.errors import ConanException, ConanInvalidConfiguration
from conan.tools.files import copy


class TfliteEdgeC(ConanFile):
    name = "tflite-edge-c"
    description = ("TensorFlow Lite's C library (libtensorflowlite_c, XNNPACK), "
                   "cross-built from pinned sources by edgeforge")
    license = "Apache-2.0"
    topics = ("tensorflow-lite", "tflite", "machine-learning", "edge")
    package_type = "shared-library"
    settings = "os", "arch"
    # Conan reads these class attributes as they are (its recipes' idiom).
    options = {"libc": ["glibc", "musl"]}  # noqa: RUF012
    default_options = {"libc": "glibc"}  # noqa: RUF012

    def _target(self, settings, options):
        """The conandata.yml entry for this os/arch/libc, or None."""
        for target in self.conan_data["targets"].values():
            if (target["os"], target["arch"], target["libc"]) == (
                    str(settings.os), str(settings.arch), str(options.libc)):
                return target
        return None

    def validate(self):
        if self._target(self.settings, self.options) is None:
            known = ", ".join(f"{name} (os={t['os']} arch={t['arch']} libc={t['libc']})"
                              for name, t in self.conan_data["targets"].items())
            raise ConanInvalidConfiguration(
                f"edgeforge builds {self.name} for no os={self.settings.os} "
                f"arch={self.settings.arch} libc={self.options.libc}; its targets: {known}")

    def package_id(self):
        # The binary needs this libc at least at its floor; the floor is part of its identity.
        target = self._target(self.info.settings, self.info.options)
        if target is not None:
            self.info.options.libc = f"{target['libc']}-{target['libc_version']}"

    def package(self):
        # export-pkg runs this with the source folder at the folder edgeforge filled
        stage = os.path.join(self.source_folder, "stage")
        if not os.path.isfile(os.path.join(stage, "lib", "libtensorflowlite_c.so")):
            raise ConanException(f"{stage} has no lib/libtensorflowlite_c.so: this recipe "
                                 "packages edgeforge's staged files (edgeforge conan export)")
        copy(self, "*.h", os.path.join(stage, "include"), os.path.join(self.package_folder,
                                                                        "include"))
        copy(self, "libtensorflowlite_c.so", os.path.join(stage, "lib"),
             os.path.join(self.package_folder, "lib"))
        copy(self, "*", os.path.join(stage, "licenses"), os.path.join(self.package_folder,
                                                                       "licenses"))

    def package_info(self):
        self.cpp_info.libs = ["tensorflowlite_c"]
        self.cpp_info.set_property("cmake_file_name", "tflite-edge-c")
        self.cpp_info.set_property("cmake_target_name", "tflite-edge-c::tflite-edge-c")
        self.cpp_info.set_property("cmake_target_aliases", ["tensorflowlite_c"])
        self.cpp_info.set_property("pkg_config_name", "tflite-edge-c")
        self.cpp_info.set_property("pkg_config_aliases", ["tensorflowlite_c"])
