#!/usr/bin/env bash
# Installs the system libraries a real napari window needs when no screen is
# attached (Xvfb and Mesa's OpenGL), where this machine lets us; otherwise says
# what to install. Nothing happens when a display or the libraries are present.
set -euo pipefail
packages=(xvfb xauth libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libxkbcommon-x11-0
          libxcb-cursor0 libdbus-1-3)
if [ -n "${DISPLAY:-}" ] || [ "$(uname)" != Linux ]; then exit 0; fi
if command -v xvfb-run >/dev/null && ldconfig -p | grep -q libxcb-cursor.so.0 \
   && ldconfig -p | grep -q libEGL.so.1; then exit 0; fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
else
  echo "The GUI tests need a display. Install: ${packages[*]} (Debian names)," >&2
  echo "or run them on a desktop session." >&2
  exit 1
fi
