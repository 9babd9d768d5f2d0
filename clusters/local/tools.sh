# shellcheck shell=bash
# Sourced by the scripts of clusters/local: the one rule for finding a tool, as the Python
# tooling has it (gpu_analytics_tools/tools.py). Needs $root, the checkout.
#
#   tool VARIABLE NAME [FOLDER]   $VARIABLE when set, else <checkout>/FOLDER/NAME (FOLDER
#                                 default .tools/bin, where make setup installs) when
#                                 executable, else NAME's path on PATH, else NAME itself (the
#                                 caller's `command -v` check then says it is missing)
tool() {
  # shellcheck disable=SC2154 # root: set by the script that sources this one
  local var=$1 name=$2 dir=$root/${3:-.tools/bin}
  if [ -n "${!var:-}" ]; then
    printf '%s\n' "${!var}"
  elif [ -x "$dir/$name" ]; then
    printf '%s\n' "$dir/$name"
  else
    command -v "$name" || printf '%s\n' "$name"
  fi
}
