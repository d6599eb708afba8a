# Helpers shared by .ci/run and .ci/ecosystem (sourced, not run).

step() { printf '\n==> %s\n' "$*"; }

apt_install() {
  # Install Debian packages that provide the given commands, if missing:
  # apt_install COMMAND PACKAGE [COMMAND PACKAGE ...]
  local missing=()
  while [ $# -gt 0 ]; do
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
    shift 2
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
