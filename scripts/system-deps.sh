#!/usr/bin/env bash
# Installs the system libraries a real napari window needs when no screen is
# attached (Xvfb and Mesa's OpenGL, and the xcb libraries Qt's platform plugin
# links to), where this machine lets us; otherwise says what to install.
# Nothing happens when a display or the libraries are present.
set -euo pipefail
packages=(xvfb xauth libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libxkbcommon-x11-0
          libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
          libxcb-shape0 libxcb-randr0 libxcb-xkb1 libxcb-xinerama0 libdbus-1-3)
if [ -n "${DISPLAY:-}" ] || [ "$(uname)" != Linux ]; then exit 0; fi

# What Qt's xcb plugin cannot load: each Qt release links a few more xcb
# libraries (6.11 added icccm and keysyms), so ask the plugin itself when the
# environment has it, and check the libraries we know of otherwise.
missing() {
  local plugins
  plugins=$(find "${VENV:-.venv}" -path '*Qt6/plugins/platforms/libqxcb.so' 2>/dev/null | head -n 1)
  if [ -n "$plugins" ]; then
    local needs
    needs=$(ldd "$plugins" "$(dirname "$plugins")/../../lib/libQt6XcbQpa.so.6" 2>/dev/null || true)
    [[ "$needs" == *"not found"* ]] && return 0
  fi
  command -v xvfb-run >/dev/null || return 0
  for soname in libxcb-cursor.so.0 libEGL.so.1 libGL.so.1; do
    [[ "$(ldconfig -p)" == *"$soname"* ]] || return 0
  done
  return 1
}

missing || exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
else
  echo "The GUI tests need a display. Install: ${packages[*]} (Debian names)," >&2
  echo "or run them on a desktop session." >&2
  exit 1
fi
