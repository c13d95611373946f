"""npm packages from the same binaries as the wheels (esbuild's layout).

A binary wheel of a target (``tflite_edge_lib-*-<platform>.whl``) becomes the platform package
``@tflite-edge/<os>-<cpu>[-musl]`` (its ``os``/``cpu``/``libc`` fields let npm install only the
one that matches), and the main package (``tflite-edge``: plain JS over koffi, with TypeScript
types) lists every platform package as an optional dependency. Delegate plugin wheels (the
dummy delegate, libedgetpu) become plugin packages the same way.

``platforms``: edgeforge's targets -> npm platform names (from the toolchains and archs.toml).
``generate``: wheels -> package directories (and ``npm pack`` tarballs).
``registry``: a directory of tarballs served as an npm registry on 127.0.0.1.
The JS and TypeScript sources are package data under ``js/``; ``packages.toml`` says which
wheel becomes which package.
"""
