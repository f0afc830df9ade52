#!/usr/bin/env bash
# Java for the Spark engine: Debian's OpenJDK 17 (pyspark 4 runs on 17; Debian has no 21).
# Installs it with apt when `java` is missing and we are root; otherwise says what to do.
set -euo pipefail
if command -v java >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Java 17 for Spark: openjdk-17-jre-headless"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
else
  echo "Java is missing: install Java 17 (e.g. sudo apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
