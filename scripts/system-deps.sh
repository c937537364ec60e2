#!/usr/bin/env bash
# The Debian packages outside the venv that `make run`, `make test` and CI need, checked and,
# where this user may (root, or sudo without a password), installed.
#
#   scripts/system-deps.sh run    # WeasyPrint's libraries and fonts, python3-venv
#   scripts/system-deps.sh test   # run's, plus what the tests call: chromium, npm, poppler-utils, …
#   scripts/system-deps.sh ci     # test's, plus what .ci/run uses: pg_isready, redis-cli, and
#                                 # docker-compose, so CI also runs `docker-compose config`
#
# Without the right to install, it prints the exact command to run and exits 1; it never
# downloads anything but Debian packages (Playwright's own browser download fails offline).
# Only bash builtins and absolute paths are used, so a test can run it with a PATH of its own.
set -uo pipefail

profile="${1:-test}"
case "$profile" in
  run | test | ci) ;;
  *)
    echo "usage: $0 run|test|ci" >&2
    exit 2
    ;;
esac
script="${BASH_SOURCE[0]}"
[[ $script == */* ]] || script="./$script"
here="$(cd "${script%/*}/.." && pwd)"
python="${PYTHON:-python3}"
again="make $profile"
[[ $profile == ci ]] && again=".ci/run"

have() {
  local name
  for name in "$@"; do
    command -v "$name" >/dev/null 2>&1 || return 1
  done
}

have_library() {
  local ldconfig
  for ldconfig in /sbin/ldconfig /usr/sbin/ldconfig; do
    if [[ -x $ldconfig ]]; then
      [[ $("$ldconfig" -p 2>/dev/null) == *"$1"* ]]
      return
    fi
  done
  # No ldconfig to ask (not glibc): let WeasyPrint's import say what is missing.
  return 0
}

needs_venv_module() {
  # Debian's python3 lacks ensurepip until python3-venv is installed; an existing venv or
  # another Python (pyenv, python.org) does not need it.
  [[ -x $here/.venv/bin/python ]] && return 1
  have "$python" || return 0
  ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1
}

want() { # want PACKAGE CHECK...: PACKAGE is missing unless the check succeeds
  local package="$1"
  shift
  "$@" || missing+=("$package")
}

find_missing() {
  missing=()
  # Every profile: the app renders records (WeasyPrint: Pango, a font) and needs a venv.
  needs_venv_module && missing+=(python3-venv)
  want libpango-1.0-0 have_library libpango-1.0.so.0
  want libpangoft2-1.0-0 have_library libpangoft2-1.0.so.0
  want fonts-dejavu-core test -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
  if [[ $profile != run ]]; then
    # Browser tests (tests/e2e): Debian's chromium, never `playwright install`.
    want chromium have chromium
    # axe-core, which the browser tests inject into every page, comes from the npm registry.
    want npm have npm node
    # The record tests read rendered PDFs: text, pages, signatures, attachments, tags.
    want poppler-utils have pdftotext pdftoppm pdfsig pdfinfo pdfdetach
    # pdfsig trusts the test PKI through an NSS database made with certutil.
    want libnss3-tools have certutil
    # Broker fault tests start and kill a redis-server of their own.
    want redis-server have redis-server
    # The pipeline test drives the API with the real curl, as a CI job would.
    want curl have curl
  fi
  if [[ $profile == ci ]]; then
    want postgresql-client have pg_isready
    want redis-tools have redis-cli
    want docker-compose have docker-compose
  fi
}

find_missing
((${#missing[@]})) || exit 0

apt_command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if ! have apt-get; then
  echo "Missing system packages (Debian names): ${missing[*]}" >&2
  echo "This is not a Debian/Ubuntu machine: install their equivalents, then run $again again." >&2
  exit 1
fi

if [[ $EUID -eq 0 ]]; then
  sudo=()
elif have sudo && sudo -n true >/dev/null 2>&1; then
  sudo=(sudo -n)
else
  echo "$again needs Debian packages that are not installed: ${missing[*]}" >&2
  echo "Install them as root, then run $again again:" >&2
  echo "" >&2
  echo "    sudo sh -c '$apt_command'" >&2
  echo "" >&2
  exit 1
fi

echo "== installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq || exit 1
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || exit 1

# Trust the checks, not apt's exit code: a package that installed without what we look for
# would otherwise fail later as a confusing test error.
needed=("${missing[@]}")
find_missing
if ((${#missing[@]})); then
  echo "apt-get installed ${needed[*]} but these are still missing: ${missing[*]}" >&2
  exit 1
fi
