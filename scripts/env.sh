# Source this file: creates .venv when missing, installs the pinned requirements and
# nc_safety itself, and keeps DDS on loopback for this shell.
#   . scripts/env.sh
# Set NC_SAFETY_VENV to use another venv folder.

nc_safety_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nc_safety_venv="${NC_SAFETY_VENV:-$nc_safety_root/.venv}"

nc_safety_python() {
  for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "nc_safety: python3 >= 3.10 not found; install it (apt-get install python3) and retry" >&2
  return 1
}

nc_safety_make_venv() {
  local python
  python="$(nc_safety_python)" || return 1
  if "$python" -m venv "$nc_safety_venv" 2>/dev/null; then
    return 0
  fi
  rm -rf "$nc_safety_venv"
  # Debian and Ubuntu ship venv support in a separate package.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "nc_safety: python3 -m venv failed; installing python3-venv with apt-get" >&2
    local version
    version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt-get update -qq && (apt-get install -y -qq "python${version}-venv" || apt-get install -y -qq python3-venv) >&2 &&
      "$python" -m venv "$nc_safety_venv" && return 0
  fi
  echo "nc_safety: could not create $nc_safety_venv; install python3-venv (sudo apt-get install python3-venv) and retry" >&2
  return 1
}

nc_safety_pip() {
  # pip's and the build backend's chatter goes to a log; on failure its tail is shown.
  local log="$nc_safety_venv/pip-install.log"
  if ! "$nc_safety_venv/bin/python" -m pip --quiet --disable-pip-version-check "$@" >>"$log" 2>&1; then
    echo "nc_safety: pip $* failed; last lines of $log:" >&2
    grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -n 30 >&2
    return 1
  fi
}

# Print the C compiler and whether the Python headers exist. The C extension builds only
# with both, so a change in this output is worth another build attempt.
nc_safety_toolchain() {
  local compiler
  compiler="$(command -v "${CC:-cc}" 2>/dev/null || echo none)"
  echo "$compiler:$("$nc_safety_venv/bin/python" -c 'import os, sysconfig; print(int(os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))))')"
}

nc_safety_install() {
  if [ ! -x "$nc_safety_venv/bin/python" ]; then
    echo "nc_safety: creating $nc_safety_venv" >&2
    nc_safety_make_venv || return 1
  fi
  # The stamp contains the hash of what was installed, followed by "numpy TOOLCHAIN" when the
  # C extension did not build with that toolchain.
  local stamp="$nc_safety_venv/.nc_safety-installed"
  local wanted installed=""
  wanted="$(cat "$nc_safety_root/requirements.txt" "$nc_safety_root/requirements-dev.txt" "$nc_safety_root/setup.py" "$nc_safety_root/nc_safety/core/_clearance.c" | sha256sum | cut -d' ' -f1)"
  [ -f "$stamp" ] && installed="$(cat "$stamp")"
  if [ "$installed" = "$wanted" ]; then
    return 0
  fi
  if [ "${installed%% *}" = "$wanted" ]; then
    if [ "$installed" = "$wanted numpy $(nc_safety_toolchain)" ]; then
      return 0
    fi
    echo "nc_safety: the C compiler or Python headers changed since the last install; building the C extension again" >&2
    nc_safety_pip install --no-deps -e "$nc_safety_root" || return 1
  else
    echo "nc_safety: installing pinned requirements into $nc_safety_venv (first run takes a minute or two)" >&2
    nc_safety_pip install --upgrade pip || return 1
    nc_safety_pip install -r "$nc_safety_root/requirements-dev.txt" || return 1
    nc_safety_pip install --no-deps -e "$nc_safety_root" || return 1
  fi
  if "$nc_safety_venv/bin/python" -c 'import sys; from nc_safety.core.geometry import COMPILED_CLEARANCE_AVAILABLE as ok; sys.exit(0 if ok else 1)'; then
    echo "$wanted" > "$stamp"
    return 0
  fi
  echo "nc_safety: the obstacle check's C extension did not build, so the check runs in NumPy, about half as fast." \
    "It needs a C compiler and the Python headers (apt-get install gcc python3-dev); this script tries again" \
    "when they change. To see the compiler's error: $nc_safety_venv/bin/pip install -v --no-deps -e $nc_safety_root" >&2
  echo "$wanted numpy $(nc_safety_toolchain)" > "$stamp"
}

nc_safety_install || return 1 2>/dev/null || exit 1

export PATH="$nc_safety_venv/bin:$PATH"
export VIRTUAL_ENV="$nc_safety_venv"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# Loopback unless the caller already chose otherwise: a robot widens this in its own config.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$nc_safety_root/config/fastdds_loopback.xml}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-37}"
