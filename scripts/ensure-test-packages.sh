#!/usr/bin/env bash
# Installs what the tests need from Debian's packages when it is missing: the database
# servers the login tests start on loopback (PostgreSQL, MariaDB, Redis; tests start their
# own instances in temp dirs, and the packages' own services are not started), the real
# clients that vouch for the login tests' scripted servers (tsql for TDS, PyMongo for
# MongoDB, curl for Elasticsearch; the MariaDB client for MySQL 8), and the shells whose
# completion scripts are tested (zsh, fish; bash is there already).
set -euo pipefail
need=()
command -v psql >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-client)
command -v mariadbd >/dev/null 2>&1 && command -v mariadb >/dev/null 2>&1 || need+=(mariadb-server mariadb-client)
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || need+=(redis-server redis-tools)
command -v tsql >/dev/null 2>&1 || need+=(freetds-bin)
# NB: Debian's python3 (/usr/bin/python3), which may not be the python3 on PATH.
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pymongo' >/dev/null 2>&1 || need+=(python3 python3-pymongo)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v fish >/dev/null 2>&1 || need+=(fish)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
# NB: keep the packages' services from starting: tests run their own servers.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
