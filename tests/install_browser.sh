#!/usr/bin/env bash
# Install Debian's chromium for the Playwright tests when it is missing.
# Never fails the build: without a browser the browser tests skip and say why.
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium: the browser tests will be skipped"
else
  echo "no /usr/bin/chromium and no root apt-get: the browser tests will be skipped"
fi
exit 0
