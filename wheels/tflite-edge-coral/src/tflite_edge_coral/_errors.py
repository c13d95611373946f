"""The plugin's errors and the texts that explain them.

Every error is a ``ValueError``: tflite-edge's ``load_delegate`` turns a plugin's
``ValueError`` into its ``Failed to load delegate from edgetpu ...`` error with the plugin's
message underneath, the exception tflite_runtime users already handle.
"""

from __future__ import annotations

UDEV_RULES_NAME = "99-edgetpu-accelerator.rules"


class CoralError(ValueError):
    """Base of every error tflite-edge-coral raises."""


class NoEdgeTpuError(CoralError):
    """No Edge TPU matches the requested device (or none is attached at all)."""


class TFVersionMismatchError(CoralError):
    """libedgetpu was built for another TensorFlow version than the runtime's."""

    def __init__(self, message: str, libedgetpu_tf: str, runtime_tf: str) -> None:
        super().__init__(message)
        self.libedgetpu_tf = libedgetpu_tf
        self.runtime_tf = runtime_tf


class LibEdgeTpuError(CoralError):
    """libedgetpu is missing, cannot be loaded, or lacks its C API."""


class RuntimeUnavailableError(CoralError):
    """The TensorFlow Lite runtime (tflite-edge) cannot be loaded to check its version."""


def udev_commands(rules_path: str) -> str:
    """The shell commands that install the udev rules and give the user access."""
    return (
        f"  sudo cp {rules_path} /etc/udev/rules.d/{UDEV_RULES_NAME}\n"
        "  sudo udevadm control --reload-rules && sudo udevadm trigger\n"
        "  sudo usermod -aG plugdev \"$USER\"   # then log out and back in"
    )


def no_device_help(rules_path: str) -> str:
    """What to check when no Edge TPU is found (the message users read most)."""
    return (
        "Check:\n"
        "  - USB Accelerator: the USB cable and port (plug it in directly, preferably a USB 3 "
        "port, with the cable that came with it); `lsusb` should list 1a6e:089a or 18d1:9302.\n"
        "  - udev rules: without them only root may open the device. Install the rules this "
        "package ships:\n"
        f"{udev_commands(rules_path)}\n"
        "  - the plugdev group: your user must be in it (`id -nG` lists your groups); log out "
        "and back in after adding it.\n"
        "  - M.2 / Mini PCIe card: the gasket/apex kernel driver must be loaded "
        "(`ls /dev/apex_0`).\n"
        "`python -m tflite_edge_coral` lists the Edge TPUs libedgetpu sees."
    )
